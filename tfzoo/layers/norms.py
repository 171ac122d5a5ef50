"""The one factory of the blocks' and stacks' normalization layers: layer norm or RMS norm.

"layer" is `keras.layers.LayerNormalization` (mean and variance; a bias
unless `use_bias=False`). "rms" is `keras.layers.RMSNormalization`: no mean
subtraction and no bias, `x * rsqrt(mean(x**2) + epsilon) * scale` (Zhang &
Sennrich, 2019), the norm of T5, LLaMA and Gemma. Both compute in float32 and
convert with the TFLite builtins and tf2onnx.
"""

from __future__ import annotations

import keras

NORMS = ("layer", "rms")


def check_norm(norm: str) -> None:
    """Raises ValueError unless `norm` is one of `NORMS`.

    Example:
    >>> check_norm("rms")
    """
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; choose one of {', '.join(NORMS)}.")


def make_norm(norm: str, *, epsilon: float, use_bias: bool = True, dtype=None, name: str | None = None):
    """A `LayerNormalization` (`norm="layer"`, centred when `use_bias`) or an `RMSNormalization` (`"rms"`).

    Example:
    >>> type(make_norm("rms", epsilon=1e-6)).__name__, make_norm("layer", epsilon=1e-5, use_bias=False).center
    ('RMSNormalization', False)
    """
    check_norm(norm)
    if norm == "rms":
        return keras.layers.RMSNormalization(epsilon=epsilon, dtype=dtype, name=name)
    return keras.layers.LayerNormalization(epsilon=epsilon, center=use_bias, dtype=dtype, name=name)
