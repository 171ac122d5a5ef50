"""The residual wiring shared by encoder and decoder blocks (pre- or post-norm)."""

from __future__ import annotations

from collections.abc import Callable


def residual(x, sublayer: Callable, norm, dropout, norm_first: bool, training=None):
    """`x + dropout(sublayer(norm(x)))` (pre-norm) or `norm(x + dropout(sublayer(x)))` (post-norm).

    Example:
    >>> import keras, numpy as np
    >>> x = np.ones((1, 2, 4), "float32")
    >>> norm, drop = keras.layers.LayerNormalization(), keras.layers.Dropout(0.0)
    >>> tuple(residual(x, lambda h: h * 2, norm, drop, norm_first=True).shape)
    (1, 2, 4)
    """
    if norm_first:
        return x + dropout(sublayer(norm(x)), training=training)
    return norm(x + dropout(sublayer(x), training=training))
