"""Fixed sinusoidal position encoding of "Attention Is All You Need", computed from positions."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

# Positions below 2**16 times an 8-bit part of a frequency are exact float32 products.
_SPLIT_BITS = 8


def _round_to_bits(x: np.ndarray, bits: int) -> np.ndarray:
    mantissa, exponent = np.frexp(x)
    return np.ldexp(np.round(mantissa * 2.0**bits), exponent - bits)


@keras.saving.register_keras_serializable(package="tfzoo")
class SinusoidalPositionEncoding(keras.layers.Layer):
    """Sinusoidal position encoding of integer positions (no weights).

    `PE(pos, 2i) = sin(pos / max_wavelength^(2i/d))` and
    `PE(pos, 2i+1) = cos(pos / max_wavelength^(2i/d))`, interleaved, `d = hidden_dim`.

    The phase is reduced modulo one turn in (emulated) extended precision before the
    `sin`, so the result matches the formula to ~1e-6 for `|pos| < 65536` (a plain
    float32 `pos * frequency` is off by ~1e-5 already at position 100), and XLA, TFLite
    and ONNX Runtime agree because they only ever see angles in `[-pi, pi]`.

    Args:
        hidden_dim: int. Size of the encoding; must be even.
        max_wavelength: float. The base of the geometric wavelength progression.
            Defaults to `10000.0`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:
    >>> encode = SinusoidalPositionEncoding(hidden_dim=8)
    >>> encode(keras.ops.arange(5)[None, :]).shape
    TensorShape([1, 5, 8])

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
    """

    def __init__(self, hidden_dim: int, max_wavelength: float = 10000.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(hidden_dim, bool) or not isinstance(hidden_dim, int) or hidden_dim < 2 or hidden_dim % 2:
            raise ValueError(f"SinusoidalPositionEncoding: hidden_dim must be a positive even int, got {hidden_dim!r}")
        if not max_wavelength > 1.0:
            raise ValueError(f"SinusoidalPositionEncoding: max_wavelength must be > 1, got {max_wavelength!r}")
        self.hidden_dim = hidden_dim
        self.max_wavelength = float(max_wavelength)
        # Turns per position of channel j: 1 / (2 pi max_wavelength^(2 (j // 2) / d)), float64,
        # split as f1 + f2 + f3 where f1, f2 have 8 significant bits (pos * f1, pos * f2 exact).
        exponent = 2.0 * (np.arange(hidden_dim) // 2) / hidden_dim
        turns = 1.0 / (2.0 * math.pi * self.max_wavelength**exponent)
        f1 = _round_to_bits(turns, _SPLIT_BITS)
        f2 = _round_to_bits(turns - f1, _SPLIT_BITS)
        self._f1 = f1.astype("float32")
        self._f2 = f2.astype("float32")
        self._f3 = (turns - f1 - f2).astype("float32")
        # cos(x) = sin(x + quarter turn) on odd channels.
        self._offset = np.tile(np.array([0.0, 0.25], "float32"), hidden_dim // 2)

    def call(self, positions):
        def wrap(t):  # t - round(t), in [-0.5, 0.5]: whole turns drop out exactly.
            return t - ops.floor(t + 0.5)

        # Phase in turns, pos * (f1 + f2 + f3) + offset, reduced mod 1 term by term; only the
        # last two additions round (~3e-8 turns each).
        pos = ops.expand_dims(ops.cast(positions, "float32"), -1)  # (B, T, 1)
        first = wrap(wrap(pos * self._f1) + self._offset)  # (B, T, d)
        turns = wrap(first + wrap(pos * self._f2))
        turns = wrap(turns + pos * self._f3)  # (B, T, d), in [-0.5, 0.5]
        return ops.cast(ops.sin(turns * (2.0 * math.pi)), self.compute_dtype)  # (B, T, d)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_dim": self.hidden_dim, "max_wavelength": self.max_wavelength})
        return config
