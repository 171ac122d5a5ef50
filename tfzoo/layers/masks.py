"""Attention masks built from positions (never from slicing a triangle).

Building masks by comparing position tensors keeps the graph to `Less`/`Equal`
style ops, which XLA, the TFLite builtins and tf2onnx all accept; a mask cut out
of a precomputed triangle (`StridedSlice`) needs TFLite's Flex ops. The same
comparison serves the uncached forward pass (keys are the sequence itself) and
cached decoding (keys are the cache slots `0..max_length-1`).
"""

from __future__ import annotations

from keras import ops


def causal_mask(query_positions, key_positions):
    """Boolean mask that lets a query see keys at its own or earlier positions.

    Args:
        query_positions: int tensor (B or 1, Tq). Position of each query token.
        key_positions: int tensor (B or 1, Tk). Position of each key (for a
            KV cache, the slot index).

    Returns:
        bool tensor (B or 1, 1, Tq, Tk): True where the key may be attended.

    Example:
    >>> positions = ops.expand_dims(ops.arange(3), 0)
    >>> ops.convert_to_numpy(causal_mask(positions, positions))[0, 0].astype(int)
    array([[1, 0, 0],
           [1, 1, 0],
           [1, 1, 1]])
    """
    query = ops.expand_dims(ops.cast(query_positions, "int32"), -1)  # (B, Tq, 1)
    key = ops.expand_dims(ops.cast(key_positions, "int32"), 1)  # (B, 1, Tk)
    return ops.expand_dims(ops.less_equal(key, query), 1)  # (B, 1, Tq, Tk)


def padding_mask(lengths, length: int):
    """Boolean mask that hides the padding at the end of right-padded sequences.

    Args:
        lengths: int tensor (B,). Number of real tokens in each row.
        length: int. Padded length Tk of the key sequence.

    Returns:
        bool tensor (B, 1, 1, Tk): True for real tokens.

    Example:
    >>> ops.convert_to_numpy(padding_mask(ops.convert_to_tensor([1, 3]), 3))[:, 0, 0]
    array([[ True, False, False],
           [ True,  True,  True]])
    """
    slots = ops.expand_dims(ops.arange(length, dtype="int32"), 0)  # (1, Tk)
    valid = ops.less(slots, ops.expand_dims(ops.cast(lengths, "int32"), -1))  # (B, Tk)
    return ops.expand_dims(ops.expand_dims(valid, 1), 1)  # (B, 1, 1, Tk)
