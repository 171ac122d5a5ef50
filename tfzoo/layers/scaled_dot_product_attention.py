"""Scaled dot-product attention: `softmax(Q K^T / sqrt(d_k) + bias) V`."""

from __future__ import annotations

import math

from keras import ops

# Logit given to masked keys. Finite so a fully masked row (a padding query)
# gives a uniform distribution instead of NaN, and representable in float16.
MASKED_LOGIT = -1e4


def scaled_dot_product_attention(
    query,
    key,
    value,
    mask=None,
    bias=None,
    dropout_layer=None,
    training=None,
    scale_queries: bool = True,
):
    """Attends `query` over `key`/`value`, as in "Attention Is All You Need".

    The softmax runs in float32 whatever the compute dtype, so mixed precision
    keeps the attention weights normalised.

    Args:
        query: tensor (B, H, Tq, D).
        key: tensor (B, H, Tk, D).
        value: tensor (B, H, Tk, Dv).
        mask: optional bool tensor broadcastable to (B, H, Tq, Tk); False hides a key.
        bias: optional float tensor broadcastable to (B, H, Tq, Tk), added to the
            logits (relative position bias, ALiBi).
        dropout_layer: optional `keras.layers.Dropout` applied to the weights.
        training: bool. Whether dropout is active.
        scale_queries: bool. Divide the logits by sqrt(D) (False: T5's unscaled dot product).

    Returns:
        `(output, weights)`: output (B, H, Tq, Dv) in the query's dtype and the
        attention weights (B, H, Tq, Tk) in float32.

    Example:
    >>> import numpy as np
    >>> q = k = v = np.ones((1, 1, 2, 4), "float32")
    >>> out, w = scaled_dot_product_attention(q, k, v)
    >>> ops.convert_to_numpy(w)[0, 0]
    array([[0.5, 0.5],
           [0.5, 0.5]], dtype=float32)
    """
    query = ops.convert_to_tensor(query)
    if scale_queries:
        query = query * ops.cast(1.0 / math.sqrt(query.shape[-1]), query.dtype)
    logits = ops.matmul(query, ops.transpose(key, (0, 1, 3, 2)))  # (B, H, Tq, Tk)
    logits = ops.cast(logits, "float32")
    if bias is not None:
        logits = logits + ops.cast(bias, "float32")
    if mask is not None:
        logits = ops.where(mask, logits, MASKED_LOGIT)
    weights = ops.softmax(logits, axis=-1)
    dropped = weights
    if dropout_layer is not None:
        dropped = dropout_layer(weights, training=training)
    output = ops.matmul(ops.cast(dropped, value.dtype), value)  # (B, H, Tq, Dv)
    return output, weights
