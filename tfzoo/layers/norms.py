"""The one factory of the blocks' and stacks' normalization layers: layer norm or RMS norm.

"layer" is `LayerNorm` (mean and variance; a bias unless `use_bias=False`): the
arithmetic of `keras.layers.LayerNormalization` with the same weights (`gamma`,
`beta`), written in plain ops so that it converts to 9 TFLite ops (MEAN, SUB,
MUL, MEAN, ADD, RSQRT, MUL, MUL, ADD) instead of Keras's 13 (two of them
REDUCE_PROD over the input's shape). "rms" is `keras.layers.RMSNormalization`: no mean
subtraction and no bias, `x * rsqrt(mean(x**2) + epsilon) * scale` (Zhang &
Sennrich, 2019), the norm of T5, LLaMA and Gemma. Both compute in float32 and
convert with the TFLite builtins and tf2onnx.
"""

from __future__ import annotations

import keras
from keras import ops

NORMS = ("layer", "rms")


def check_norm(norm: str) -> None:
    """Raises ValueError unless `norm` is one of `NORMS`.

    Example:
    >>> check_norm("rms")
    """
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; choose one of {', '.join(NORMS)}.")


@keras.saving.register_keras_serializable(package="tfzoo")
class LayerNorm(keras.layers.Layer):
    """Layer normalization over the last axis: `(x - mean) * rsqrt(variance + epsilon) * gamma + beta`.

    The same weights, in the same order, as `keras.layers.LayerNormalization(epsilon=epsilon,
    center=center)` (`gamma`, then `beta` when `center`), so `.keras` files, checkpoints and
    converted weights written with that layer load into this one. Like it, it computes in float32
    (at least) and returns the compute dtype; the variance is the centred one (a mean of squared
    deviations, not `E[x^2] - E[x]^2`, which cancels badly).

    Args:
        epsilon: float. Added to the variance. Defaults to 1e-5.
        center: bool. Add the learned bias `beta`. Defaults to True.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(2, 3, 8)).astype("float32")
    >>> ours, theirs = LayerNorm(epsilon=1e-5), keras.layers.LayerNormalization(epsilon=1e-5)
    >>> bool(np.allclose(ours(x), theirs(x), atol=1e-5)), [w.name for w in ours.weights]
    (True, ['gamma', 'beta'])
    """

    def __init__(self, epsilon: float = 1e-5, center: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.supports_masking = True

    def build(self, input_shape):
        dim = input_shape[-1]
        if dim is None:
            raise ValueError(f"LayerNorm: the last input axis must be known, got shape {input_shape}")
        self.gamma = self.add_weight(name="gamma", shape=(dim,), initializer="ones", autocast=False)
        self.beta = None
        if self.center:
            self.beta = self.add_weight(name="beta", shape=(dim,), initializer="zeros", autocast=False)
        self.built = True

    def call(self, x):
        dtype = keras.backend.result_type(x.dtype, "float32")
        x = ops.cast(x, dtype)  # (..., C)
        centred = x - ops.mean(x, axis=-1, keepdims=True)
        variance = ops.mean(centred * centred, axis=-1, keepdims=True)  # (..., 1)
        outputs = centred * (ops.rsqrt(variance + self.epsilon) * ops.cast(self.gamma, dtype))
        if self.beta is not None:
            outputs = outputs + ops.cast(self.beta, dtype)
        return ops.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "center": self.center}


def make_norm(norm: str, *, epsilon: float, use_bias: bool = True, dtype=None, name: str | None = None):
    """A `LayerNorm` (`norm="layer"`, centred when `use_bias`) or a `keras.layers.RMSNormalization` (`"rms"`).

    Example:
    >>> type(make_norm("rms", epsilon=1e-6)).__name__, make_norm("layer", epsilon=1e-5, use_bias=False).center
    ('RMSNormalization', False)
    """
    check_norm(norm)
    if norm == "rms":
        return keras.layers.RMSNormalization(epsilon=epsilon, dtype=dtype, name=name)
    return LayerNorm(epsilon=epsilon, center=use_bias, dtype=dtype, name=name)
