"""Clamping of indices inside the graph, in a form every runtime executes."""

from __future__ import annotations

from keras import ops


def clamp(x, low, high):
    """`x` limited to `[low, high]`, written with selects.

    Not `clip`: the TFLite converter fuses an int32 clip to [0, 6] into `Relu6`,
    which has no int32 builtin kernel. Every gather index in tfzoo goes through
    this, because TFLite does not bounds-check gathers.

    Example:
    >>> ops.convert_to_numpy(clamp(ops.convert_to_tensor([-3, 2, 9]), 0, 6)).tolist()
    [0, 2, 6]
    """
    x = ops.convert_to_tensor(x)
    low = ops.cast(low, x.dtype)
    high = ops.cast(high, x.dtype)
    return ops.where(ops.less(x, low), low, ops.where(ops.greater(x, high), high, x))
