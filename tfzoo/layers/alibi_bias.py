"""ALiBi: attention biases linear in the query-key distance, one geometric slope per head."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops


def _slopes(num_heads: int) -> list[float]:
    """Press et al.'s head slopes: `2^(-8/n)`, its powers; non-powers of two interleave."""
    if math.log2(num_heads).is_integer():
        start = 2.0 ** (-8.0 / num_heads)
        return [start ** (i + 1) for i in range(num_heads)]
    closest = 2 ** math.floor(math.log2(num_heads))
    return _slopes(closest) + _slopes(2 * closest)[0::2][: num_heads - closest]


@keras.saving.register_keras_serializable(package="tfzoo")
class AlibiBias(keras.layers.Layer):
    """ALiBi attention bias `(B|1, H, Tq, Tk)` from query and key positions (no weights).

    Head `h` gets `-slope_h * (query - key)` (causal: keys after the query are masked
    anyway) or `-slope_h * |query - key|` (bidirectional). For `n` heads, a power of two,
    the slopes are `2^(-8/n), 2^(-16/n), ..., 2^(-8)`; otherwise the `2^k < n` closest
    power-of-two slopes followed by every other slope of `2^(k+1)` heads, as in the paper.

    Args:
        num_heads: int. Number of attention heads.
        bidirectional: bool. Whether to penalize the absolute distance (encoders).
            Defaults to `False`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:
    >>> alibi = AlibiBias(num_heads=8)
    >>> positions = keras.ops.arange(5)[None, :]
    >>> alibi(positions, positions).shape
    TensorShape([1, 8, 5, 5])

    References:
        - [Press et al., Train Short, Test Long, 2022](https://arxiv.org/abs/2108.12409)
    """

    def __init__(self, num_heads: int, bidirectional: bool = False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1:
            raise ValueError(f"AlibiBias: num_heads must be a positive int, got {num_heads!r}")
        self.num_heads = num_heads
        self.bidirectional = bool(bidirectional)
        self._slopes = np.asarray(_slopes(num_heads), "float32")[:, None, None]  # (H, 1, 1)

    def call(self, query_positions, key_positions):
        query_positions = ops.cast(query_positions, "int32")
        key_positions = ops.cast(key_positions, "int32")
        distance = query_positions[:, :, None] - key_positions[:, None, :]  # (B, Tq, Tk)
        if self.bidirectional:
            distance = ops.abs(distance)
        bias = -self._slopes * ops.cast(distance, "float32")[:, None]  # (B, H, Tq, Tk)
        return ops.cast(bias, self.compute_dtype)

    def compute_output_shape(self, query_positions_shape, key_positions_shape):
        batch = query_positions_shape[0] if query_positions_shape[0] != 1 else key_positions_shape[0]
        return (batch, self.num_heads, query_positions_shape[1], key_positions_shape[1])

    def get_config(self):
        config = super().get_config()
        config.update({"num_heads": self.num_heads, "bidirectional": self.bidirectional})
        return config
