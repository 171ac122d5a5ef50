"""Multi-head attention for self, causal and cross attention, with a KV cache."""

from __future__ import annotations

import keras
from keras import ops

from tfzoo.layers.dense import last_axis_matmul
from tfzoo.layers.initializers import clone_initializer
from tfzoo.layers.kv_cache import append_cache, cache_slots, update_cache
from tfzoo.layers.kv_cache import cache_writes as make_cache_writes
from tfzoo.layers.rotary_embedding import RotaryEmbedding
from tfzoo.layers.scaled_dot_product_attention import scaled_dot_product_attention


@keras.saving.register_keras_serializable(package="tfzoo")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head attention whose masks, biases and cache come from positions.

    Self-attention when `value` is omitted, cross-attention otherwise. Causality
    is a mask the caller builds with `tfzoo.layers.masks.causal_mask`, so the
    same layer serves encoders, decoders and cached decoding. With
    `cache=(k, v)` (each (B, H, max_length, head_dim)) the keys and values of the
    new tokens are written into the cache at `positions` and the queries attend
    over the whole cache; the call then returns `(output, (k, v))`.

    Args:
        num_heads: int. Number of attention heads.
        key_dim: int. Size of each head's queries and keys.
        value_dim: int. Size of each head's values. Defaults to `key_dim`.
        output_dim: int. Size of the output features. Defaults to the query's
            last dimension.
        dropout: float. Dropout rate on the attention weights. Defaults to 0.
        use_bias: bool. Whether the projections have biases. Defaults to True.
        rotary: bool. Rotate queries and keys by their positions (RoPE); self
            attention only. Defaults to False.
        rotary_max_wavelength: float. RoPE's base wavelength. Defaults to 10000.
        scale_queries: bool. Scale the logits by 1/sqrt(key_dim). T5 does not
            (its initialization folds the scale into the query kernel). Defaults to True.
        kernel_initializer: initializer for the projection kernels. Defaults to
            "glorot_uniform".

    Example:
    >>> import numpy as np
    >>> from tfzoo.layers.masks import causal_mask
    >>> x = np.random.rand(2, 5, 16).astype("float32")
    >>> positions = np.arange(5)[None]
    >>> layer = MultiHeadAttention(num_heads=4, key_dim=4)
    >>> tuple(layer(x, attention_mask=causal_mask(positions, positions)).shape)
    (2, 5, 16)

    References:
        Vaswani et al., "Attention Is All You Need", 2017.
    """

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        value_dim: int | None = None,
        output_dim: int | None = None,
        dropout: float = 0.0,
        use_bias: bool = True,
        rotary: bool = False,
        rotary_max_wavelength: float = 10000.0,
        scale_queries: bool = True,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_heads < 1 or key_dim < 1:
            raise ValueError(f"num_heads and key_dim must be >= 1, got {num_heads} and {key_dim}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
        if rotary and key_dim % 2:
            raise ValueError(f"rotary attention needs an even key_dim, got {key_dim}.")
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim or key_dim
        self.output_dim = output_dim
        self.dropout = dropout
        self.use_bias = use_bias
        self.rotary = rotary
        self.rotary_max_wavelength = rotary_max_wavelength
        self.scale_queries = scale_queries
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

        def projection(equation, output_shape, bias_axes, name):
            return keras.layers.EinsumDense(
                equation,
                output_shape=output_shape,
                bias_axes=bias_axes if use_bias else None,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                dtype=self.dtype_policy,
                name=name,
            )

        # (B, T, C) -> (B, H, T, D): the heads come out in attention order.
        self.query_dense = projection("btc,chd->bhtd", (num_heads, None, key_dim), "hd", "query")
        self.key_dense = projection("btc,chd->bhtd", (num_heads, None, key_dim), "hd", "key")
        self.value_dense = projection("btc,chd->bhtd", (num_heads, None, self.value_dim), "hd", "value")
        self.attention_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)
        self.rotary_embedding = (
            RotaryEmbedding(max_wavelength=rotary_max_wavelength, dtype=self.dtype_policy, name="rotary")
            if rotary
            else None
        )

    def build(self, query_shape, value_shape=None):
        value_shape = query_shape if value_shape is None else value_shape
        self.query_dense.build(query_shape)
        self.key_dense.build(value_shape)
        self.value_dense.build(value_shape)
        output_dim = self.output_dim or query_shape[-1]
        self.output_dense = keras.layers.EinsumDense(
            "bhtd,hdc->btc",
            output_shape=(None, output_dim),
            bias_axes="c" if self.use_bias else None,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name="attention_output",
        )
        self.output_dense.build((None, self.num_heads, None, self.value_dim))
        self.built = True

    def project_key_value(self, value):
        """Cross-attention keys and values of `value` (B, S, C): `(k, v)`, each (B, H, S, D).

        Pass the pair back as `value=(k, v)` to attend over them without projecting again
        (an encoder-decoder computes them once per source, not once per decoding step).
        """
        return self.key_dense(value), self.value_dense(value)

    def project_query_key_value(self, x):
        """Self-attention queries, keys and values of `x` (B, T, C) with one matmul: `(q, k, v)`, each (B, H, T, D).

        The three kernels (C, H, D) are concatenated at call time (the weights stay `query`, `key`,
        `value`): a converter folds the concatenation into one constant, so a TFLite step runs one
        FULLY_CONNECTED for the three (with a RESHAPE, a TRANSPOSE and a SPLIT) instead of three
        einsums of three ops each; with one token (T == 1, static) the heads are a reshape, no transpose.

        Example:
        >>> import numpy as np
        >>> layer = MultiHeadAttention(num_heads=2, key_dim=4)
        >>> layer.build((None, None, 8))
        >>> [tuple(t.shape) for t in layer.project_query_key_value(np.ones((1, 3, 8), "float32"))]
        [(1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3, 4)]
        """
        layers = (self.query_dense, self.key_dense, self.value_dense)
        heads = self.num_heads
        if self.value_dim != self.key_dim:  # three head widths: one matmul, then a split of its last axis
            kernel = ops.concatenate([ops.reshape(layer.kernel, (x.shape[-1], -1)) for layer in layers], axis=1)
            y = last_axis_matmul(x, kernel)  # (B, T, H (2D + Dv))
            if self.use_bias:
                y = y + ops.concatenate([ops.reshape(layer.bias, (-1,)) for layer in layers], axis=0)
            sizes = (heads * self.key_dim, 2 * heads * self.key_dim)
            q, k, v = ops.split(y, sizes, axis=-1)
            return tuple(self._split_heads(t) for t in (q, k, v))
        kernel = ops.concatenate([layer.kernel for layer in layers], axis=1)  # (C, 3H, D)
        bias = None
        if self.use_bias:  # each (H, 1, D): EinsumDense keeps the broadcast T axis
            bias = ops.concatenate([ops.reshape(layer.bias, (-1,)) for layer in layers], axis=0)  # (3HD,)
        if x.shape[1] == 1:  # one token: (B, 1, 3HD) is (B, 3H, 1, D) already
            y = last_axis_matmul(x, ops.reshape(kernel, (x.shape[-1], -1)))  # (B, 1, 3HD)
            y = ops.reshape(y if bias is None else y + bias, (-1, 3 * heads, 1, self.key_dim))
        else:
            y = ops.einsum("btc,chd->bhtd", x, kernel)  # (B, 3H, T, D)
            if bias is not None:
                y = y + ops.reshape(bias, (3 * heads, 1, self.key_dim))
        return tuple(ops.split(y, 3, axis=1))  # each (B, H, T, D)

    def _split_heads(self, t):
        """(B, T, H * d) -> (B, H, T, d); a reshape alone for one token."""
        dim = t.shape[-1] // self.num_heads
        if t.shape[1] == 1:
            return ops.reshape(t, (-1, self.num_heads, 1, dim))
        shape = ops.shape(t)
        return ops.transpose(ops.reshape(t, (shape[0], shape[1], self.num_heads, dim)), (0, 2, 1, 3))

    def _project_output(self, attended):
        """(B, H, T, Dv) -> (B, T, C); for one token a reshape and one matmul (no transpose)."""
        if attended.shape[2] != 1:
            return self.output_dense(attended)
        heads_width = self.num_heads * self.value_dim
        kernel = ops.reshape(self.output_dense.kernel, (heads_width, -1))  # (H Dv, C)
        y = last_axis_matmul(ops.reshape(attended, (-1, 1, heads_width)), kernel)  # (B, 1, C)
        return y if not self.use_bias else y + self.output_dense.bias

    def call(
        self,
        query,
        value=None,
        *,
        positions=None,
        attention_mask=None,
        attention_bias=None,
        cache=None,
        grow_cache: bool = False,
        cache_writes: dict | None = None,
        training=None,
        return_attention_scores: bool = False,
    ):
        """Attends `query` (B, Tq, C) over itself or over `value` (B, Tk, C).

        `value` may also be a `(k, v)` pair from `project_key_value`.

        Args:
            positions: int (B or 1, Tq). Positions of the query tokens; needed by
                rotary attention and by the cache (where the new keys go).
            attention_mask: bool, broadcastable to (B, H, Tq, Tk).
            attention_bias: float, broadcastable to (B, H, Tq, Tk).
            cache: optional `(k, v)` of (B, H, max_length, D). Self attention only.
            grow_cache: bool. `cache` is a growing cache (B, H, S, D): the new keys and values are
                appended (`tfzoo.layers.kv_cache.append_cache`) instead of written at `positions`.
            cache_writes: the fixed cache's slot masks for `positions`
                (`tfzoo.layers.kv_cache.cache_writes`), shared by the layers of a stack; None: made here.
        """
        cross = value is not None
        if cross and (self.rotary or cache is not None):
            raise ValueError("rotary positions and the KV cache are for self-attention only.")
        if (self.rotary or cache is not None) and positions is None:
            raise ValueError("`positions` is required with rotary attention or a cache.")
        if not cross:
            q, k, v = self.project_query_key_value(query)  # (B, H, T, D), (B, H, T, D), (B, H, T, Dv)
        elif isinstance(value, (tuple, list)):
            q = self.query_dense(query)  # (B, H, Tq, D)
            k, v = value  # precomputed by `project_key_value`
        else:
            q = self.query_dense(query)  # (B, H, Tq, D)
            k = self.key_dense(value)  # (B, H, Tk, D)
            v = self.value_dense(value)  # (B, H, Tk, Dv)
        if self.rotary:
            q = self.rotary_embedding(q, positions)
            k = self.rotary_embedding(k, positions)
        if cache is not None and grow_cache:
            k = append_cache(cache[0], k)  # (B, H, S + Tq, D)
            v = append_cache(cache[1], v)
            cache = (k, v)
        elif cache is not None:
            if cache_writes is None:
                cache_writes = make_cache_writes(positions, ops.arange(cache_slots(cache[0]), dtype="int32"))
            k = update_cache(cache[0], k, positions, cache_writes)  # (B, H, M, D)
            v = update_cache(cache[1], v, positions, cache_writes)
            cache = (k, v)
        attended, weights = scaled_dot_product_attention(
            q,
            ops.cast(k, q.dtype),
            ops.cast(v, q.dtype),
            mask=attention_mask,
            bias=attention_bias,
            dropout_layer=self.attention_dropout,
            training=training,
            scale_queries=self.scale_queries,
        )
        output = self._project_output(attended)  # (B, Tq, C)
        results = (output,)
        if cache is not None:
            results += (cache,)
        if return_attention_scores:
            results += (weights,)
        return results[0] if len(results) == 1 else results

    def compute_output_shape(self, query_shape, value_shape=None):
        return tuple(query_shape[:-1]) + (self.output_dim or query_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "value_dim": self.value_dim,
                "output_dim": self.output_dim,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "rotary": self.rotary,
                "rotary_max_wavelength": self.rotary_max_wavelength,
                "scale_queries": self.scale_queries,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
