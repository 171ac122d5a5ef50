"""Initializer helpers shared by the layers."""

from __future__ import annotations

import keras


def clone_initializer(initializer):
    """A fresh copy of `initializer`, so sublayers never share one stateful instance.

    Example:
    >>> init = keras.initializers.TruncatedNormal(stddev=0.02)
    >>> clone_initializer(init) is init
    False
    """
    initializer = keras.initializers.get(initializer)
    return initializer.__class__.from_config(initializer.get_config())
