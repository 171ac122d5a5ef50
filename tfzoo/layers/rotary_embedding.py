"""Rotary position embedding (RoPE), half-split "rotate_half" form of GPT-NeoX/LLaMA/keras-hub."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="tfzoo")
class RotaryEmbedding(keras.layers.Layer):
    """Rotates query or key vectors by angles proportional to their positions (no weights).

    Channel `i` of the first half and channel `i` of the second half of the head dimension
    `D` form a pair rotated by `position * max_wavelength^(-2i/D)`:
    `x * cos + rotate_half(x) * sin`, `rotate_half([x1, x2]) = [-x2, x1]`. The dot product of
    a query rotated at position `m` and a key rotated at `n` then depends only on `m - n`.

    Args:
        max_wavelength: float. The base of the geometric wavelength progression.
            Defaults to `10000.0`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:
    >>> rotary = RotaryEmbedding()
    >>> q = keras.ops.ones((2, 4, 6, 8))  # (B, H, T, D)
    >>> rotary(q, keras.ops.arange(6)[None, :]).shape
    TensorShape([2, 4, 6, 8])

    References:
        - [Su et al., RoFormer, 2021](https://arxiv.org/abs/2104.09864)
    """

    def __init__(self, max_wavelength: float = 10000.0, **kwargs):
        super().__init__(**kwargs)
        if not max_wavelength > 1.0:
            raise ValueError(f"RotaryEmbedding: max_wavelength must be > 1, got {max_wavelength!r}")
        self.max_wavelength = float(max_wavelength)

    def call(self, x, positions):
        dim = x.shape[-1]
        if dim is None or dim % 2:
            raise ValueError(f"RotaryEmbedding: the last axis of x must be a known even size, got {dim}")
        inverse_frequencies = (self.max_wavelength ** (-np.arange(0, dim, 2) / dim)).astype("float32")
        angles = ops.cast(positions, "float32")[:, :, None] * inverse_frequencies  # (B, T, D/2)
        angles = ops.concatenate([angles, angles], axis=-1)[:, None]  # (B, 1, T, D)
        cos = ops.cast(ops.cos(angles), x.dtype)
        sin = ops.cast(ops.sin(angles), x.dtype)
        x1, x2 = ops.split(x, 2, axis=-1)  # (B, H, T, D/2) each
        return x * cos + ops.concatenate([-x2, x1], axis=-1) * sin  # (B, H, T, D)

    def compute_output_shape(self, x_shape, positions_shape):
        return tuple(x_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"max_wavelength": self.max_wavelength})
        return config
