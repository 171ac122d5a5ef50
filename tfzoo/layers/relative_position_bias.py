"""T5 relative position bias: a learned per-head scalar for each bucket of key - query distance."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from tfzoo.layers.clamp import clamp


def _check_bucket_args(num_buckets: int, max_distance: int, bidirectional: bool) -> None:
    least = 4 if bidirectional else 2
    if isinstance(num_buckets, bool) or not isinstance(num_buckets, int) or num_buckets < least:
        raise ValueError(f"num_buckets must be an int >= 2 (>= 4 when bidirectional), got {num_buckets!r}")
    max_exact = (num_buckets // 2 if bidirectional else num_buckets) // 2
    if isinstance(max_distance, bool) or not isinstance(max_distance, int) or max_distance <= max_exact:
        raise ValueError(
            f"max_distance must be an int > {max_exact} (the exact buckets) for "
            f"num_buckets={num_buckets}, bidirectional={bidirectional}; got {max_distance!r}"
        )


def _bucket_table(num_buckets: int, max_distance: int, bidirectional: bool) -> np.ndarray:
    """Bucket of each relative position in `[-max_distance, max_distance]`, int32 `(2 M + 1,)`.

    Mesh TensorFlow's T5 `_relative_position_bucket` evaluated in float32 like the
    original. Every relative position beyond `max_distance` (either way) falls in the same
    bucket as `+-max_distance`, so this table covers all of them.
    """
    relative_position = np.arange(-max_distance, max_distance + 1)
    n = -relative_position  # query - key
    buckets = np.zeros_like(n)
    if bidirectional:
        num_buckets //= 2
        buckets += (n < 0) * num_buckets
        n = np.abs(n)
    else:
        n = np.maximum(n, 0)
    max_exact = num_buckets // 2
    # Logarithmic buckets for n >= max_exact (max() only keeps log(0) out of the unused branch).
    ratio = np.maximum(n, max_exact).astype(np.float32) / np.float32(max_exact)
    large = max_exact + (
        np.log(ratio) / np.float32(math.log(max_distance / max_exact)) * np.float32(num_buckets - max_exact)
    ).astype(np.int32)
    buckets += np.where(n < max_exact, n, np.minimum(large, num_buckets - 1))
    return buckets.astype(np.int32)


def relative_position_bucket(
    relative_position,
    bidirectional: bool = True,
    num_buckets: int = 32,
    max_distance: int = 128,
):
    """Maps `key_position - query_position` to a T5 bucket id in `[0, num_buckets)`.

    Distances below `num_buckets // 2` (halved again when bidirectional) get one bucket
    each; larger ones share logarithmically wider buckets up to `max_distance`, past which
    all share the last bucket. When bidirectional, keys after the query (positive relative
    positions) use the upper half of the buckets; when causal they all map to bucket 0.
    Computed with one clamped lookup in a precomputed table, so it is exact and portable.

    Args:
        relative_position: int tensor of any shape, `key_position - query_position`.
        bidirectional: bool. Whether keys after the query get their own buckets.
            Defaults to `True`.
        num_buckets: int. Number of buckets. Defaults to `32`.
        max_distance: int. Distance from which every bucket is the last one. Defaults to `128`.

    Returns:
        int32 tensor of the same shape: the bucket ids.

    Example:
    >>> relative_position_bucket(keras.ops.convert_to_tensor([-200, -3, 0, 3]))
    <tf.Tensor: shape=(4,), dtype=int32, numpy=array([15,  3,  0, 19], dtype=int32)>
    """
    _check_bucket_args(num_buckets, max_distance, bidirectional)
    table = _bucket_table(num_buckets, max_distance, bidirectional)
    index = clamp(ops.cast(relative_position, "int32"), -max_distance, max_distance) + max_distance
    return ops.take(ops.convert_to_tensor(table), index, axis=0)


@keras.saving.register_keras_serializable(package="tfzoo")
class RelativePositionBias(keras.layers.Layer):
    """T5 relative attention bias `(B|1, H, Tq, Tk)` from query and key positions.

    A learned table `(num_buckets, num_heads)` is indexed by the bucket of
    `key_position - query_position` (see `relative_position_bucket`). The result is added
    to the attention logits; T5 shares one such layer across all layers of a stack.

    Args:
        num_heads: int. Number of attention heads (one bias per head and bucket).
        num_buckets: int. Number of distance buckets. Defaults to `32`.
        max_distance: int. Distance from which every bucket is the last one. Defaults to `128`.
        bidirectional: bool. Whether keys after the query get their own buckets
            (encoders); `False` for causal decoders. Defaults to `True`.
        initializer: str or initializer. Initializer of the bias table.
            Defaults to `"glorot_uniform"`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:
    >>> bias = RelativePositionBias(num_heads=4, bidirectional=False)
    >>> positions = keras.ops.arange(6)[None, :]
    >>> bias(positions, positions).shape
    TensorShape([1, 4, 6, 6])

    References:
        - [Raffel et al., 2020 (T5)](https://arxiv.org/abs/1910.10683)
    """

    def __init__(
        self,
        num_heads: int,
        num_buckets: int = 32,
        max_distance: int = 128,
        bidirectional: bool = True,
        initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1:
            raise ValueError(f"RelativePositionBias: num_heads must be a positive int, got {num_heads!r}")
        try:
            _check_bucket_args(num_buckets, max_distance, bidirectional)
        except ValueError as error:
            raise ValueError(f"RelativePositionBias: {error}") from None
        self.num_heads = num_heads
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.bidirectional = bool(bidirectional)
        self.initializer = keras.initializers.get(initializer)
        self._buckets = _bucket_table(num_buckets, max_distance, self.bidirectional)  # (2 M + 1,)

    def build(self, query_positions_shape=None, key_positions_shape=None):
        self.relative_attention_bias = self.add_weight(
            name="relative_attention_bias",
            shape=(self.num_buckets, self.num_heads),
            initializer=self.initializer,
            trainable=True,
        )
        self.built = True

    def call(self, query_positions, key_positions):
        query_positions = ops.cast(query_positions, "int32")
        key_positions = ops.cast(key_positions, "int32")
        # expand_dims, not `[:, None]`: indexing emits a StridedSlice that TFLite builtins reject here.
        relative = ops.expand_dims(key_positions, 1) - ops.expand_dims(query_positions, 2)  # (B, Tq, Tk)
        index = clamp(relative, -self.max_distance, self.max_distance) + self.max_distance
        # Bias of every clamped relative position, then one lookup: (2 M + 1, H).
        table = ops.take(ops.cast(self.relative_attention_bias, self.compute_dtype), self._buckets, axis=0)
        bias = ops.take(table, index, axis=0)  # (B, Tq, Tk, H)
        return ops.transpose(bias, (0, 3, 1, 2))  # (B, H, Tq, Tk)

    def compute_output_shape(self, query_positions_shape, key_positions_shape):
        batch = query_positions_shape[0] if query_positions_shape[0] != 1 else key_positions_shape[0]
        return (batch, self.num_heads, query_positions_shape[1], key_positions_shape[1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "num_buckets": self.num_buckets,
                "max_distance": self.max_distance,
                "bidirectional": self.bidirectional,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config
