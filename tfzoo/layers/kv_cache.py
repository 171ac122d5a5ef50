"""Key/value caches: fixed-size (written at positions) or growing (appended).

Fixed: a plain tensor (B, H, max_length, D) per keys and values. New entries are written at their
positions with a one-hot selection matrix and a matmul (or, for the one-token decode step, a
broadcast select), so the update is static-shaped and uses only ops that XLA, the TFLite builtins
and tf2onnx accept (no scatter, no dynamic-update-slice). Every row of the batch may be at a
different position, which is what right-padded prompts of different lengths need. Every step
reads and writes all M slots: what XLA needs (static shapes). M may also be dynamic (the exported
`prefill`/`decode` signatures: a runtime feeds the slots in use, grown in blocks, not `max_length`).

Growing (`append_cache`): (B, H, S, D) with S the tokens run so far; each call appends its T
tokens. Attention and the copies a runtime makes of its loop state then cost what the cache
holds, not its capacity (at 1024 slots the fixed form moves 75 MB per GPT-2-small step). Shapes
are dynamic, so this form is for graphs that run without XLA (TFLite, ONNX, TensorFlow). The
slot of a token is the step it was run at, not its position: the decoder stack keeps each slot's
position beside the cache (`DecoderStack.init_cache(..., grow=True)`).
"""

from __future__ import annotations

import contextlib
import contextvars

from keras import ops

_SLICE_WRITES = contextvars.ContextVar("tfzoo_kv_cache_slice_writes", default=False)


def init_cache(batch_size, num_heads: int, max_length: int, head_dim: int, dtype="float32"):
    """Zeros for one attention layer's keys or values: (batch, heads, max_length, head_dim).

    Example:
    >>> tuple(init_cache(2, 4, 16, 8).shape)
    (2, 4, 16, 8)
    """
    return ops.zeros((batch_size, num_heads, max_length, head_dim), dtype=dtype)


def cache_slots(cache):
    """The slot count of a fixed cache (B, H, M, D): M as an int when static, else a scalar tensor.

    The exported `prefill`/`decode` take caches with a dynamic slot dimension (a runtime feeds the
    slots in use, not `max_length`), so M may only be known when the step runs.

    Example:
    >>> cache_slots(init_cache(1, 2, 16, 4))
    16
    """
    static = cache.shape[2]
    return int(static) if static is not None else ops.shape(cache)[2]


def cache_writes(positions, slots, dtype="float32") -> dict:
    """What `update_cache` derives from the positions alone: made once per step, shared by every cache.

    A step writes the same slots into every layer's keys and values; built per cache, the slot
    mask is rebuilt 2 x `num_layers` times (7 TFLite ops each in a decode step: SHAPE,
    STRIDED_SLICE, RANGE, EXPAND_DIMS, EQUAL, EXPAND_DIMS, and the select itself).

    Args:
        positions: int tensor (B, T): the slot of each new token.
        slots: int tensor (M,) or (1, M): the cache's slot indices, `arange(M)`.
        dtype: the caches' dtype (of the matrices of a many-token write).

    Returns:
        `{"hit": bool (B, 1, M, 1)}` for one token per row (T == 1, static), else
        `{"keep": (B, 1, M, 1), "scatter": (B, 1, M, T)}`; pass it as `update_cache(..., writes=)`.

    Example:
    >>> import numpy as np
    >>> sorted(cache_writes(np.array([[2]]), ops.arange(4)))
    ['hit']
    """
    positions = ops.expand_dims(ops.cast(positions, "int32"), -1)  # (B, T, 1)
    slots = ops.cast(slots, "int32")
    if positions.shape[1] == 1:
        # One token per row (the decode step): a broadcast select, cheaper than the matmul.
        return {"hit": ops.expand_dims(ops.equal(positions, slots), -1)}  # (B, 1, M, 1)
    select = ops.cast(ops.equal(positions, slots), dtype)  # (B, T, M)
    # Which slots are written, as a product rather than a max over T: XLA rewrites that reduction into a
    # reduce-window, and when the positions are known at compile time (a prefill's iota) it constant-folds
    # it at 8-12 s per cache at 1024 slots (24 per program at GPT-2-small size); a dot folds in microseconds.
    ones = ops.swapaxes(ops.ones_like(positions, dtype=dtype), 1, 2)  # (B, 1, T)
    written = ops.minimum(ops.matmul(ones, select), 1.0)  # (B, 1, M)
    keep = ops.expand_dims(1.0 - written, -1)  # (B, 1, M, 1)
    scatter = ops.expand_dims(ops.transpose(select, (0, 2, 1)), 1)  # (B, 1, M, T)
    return {"keep": keep, "scatter": scatter}


def update_cache(cache, new, positions, writes: dict | None = None):
    """Writes `new` into `cache` at `positions` along the sequence axis.

    Args:
        cache: tensor (B, H, M, D): the current cache.
        new: tensor (B, H, T, D): keys or values of the T new tokens.
        positions: int tensor (B, T): the slot of each new token; slots outside
            `[0, M)` are dropped (nothing is written for them).
        writes: `cache_writes(positions, arange(M), cache.dtype)`, made once for all the caches a
            step writes; None: made here.

    Returns:
        The updated cache (B, H, M, D). Slots not in `positions` keep their value
        exactly; written slots hold `new` exactly.

    Example:
    >>> import numpy as np
    >>> cache = init_cache(1, 1, 4, 2)
    >>> new = np.ones((1, 1, 1, 2), "float32")
    >>> ops.convert_to_numpy(update_cache(cache, new, np.array([[2]])))[0, 0, :, 0]
    array([0., 0., 1., 0.], dtype=float32)
    """
    if new.shape[2] == 1 and cache.shape[0] == 1 and _SLICE_WRITES.get():
        zero = ops.zeros((), "int32")
        slot = ops.reshape(ops.cast(positions, "int32"), (-1,))[0]  # the one position
        return ops.slice_update(cache, [zero, zero, slot, zero], ops.cast(new, cache.dtype))  # (1, H, M, D)
    if writes is None:
        writes = cache_writes(positions, ops.arange(cache_slots(cache), dtype="int32"), cache.dtype)
    new = ops.cast(new, cache.dtype)
    if "hit" in writes:
        return ops.where(writes["hit"], new, cache)  # (B, H, M, D)
    return cache * writes["keep"] + ops.matmul(writes["scatter"], new)  # (B, H, M, D)


@contextlib.contextmanager
def slice_writes():
    """Within it, `update_cache` writes one token into a batch-1 cache with a dynamic-update-slice.

    For graphs traced inside it that only the TFLite runtime runs (the LiteRT-LM bundle's
    `decode`, `export/litertlm_export.py`): the select form rewrites every slot of every layer's
    cache at each step; TFLite's DYNAMIC_UPDATE_SLICE writes one, which doubled LiteRT-LM's decode
    rate at the GPT-2-small shape (1024 slots). Not the default: the other exports keep ops that
    tf2onnx and a dynamic batch accept, and TensorFlow runs the op under XLA only (not eagerly). The
    slot must be in `[0, M)`: a dynamic-update-slice clamps it, where the select form drops it.

    Example:
    >>> import numpy as np, tensorflow as tf
    >>> @tf.function(jit_compile=True)
    ... def write(cache, new):
    ...     with slice_writes():
    ...         return update_cache(cache, new, np.array([[1]]))
    >>> ops.convert_to_numpy(write(init_cache(1, 1, 4, 2), np.ones((1, 1, 1, 2), "float32")))[0, 0, :, 0]
    array([0., 1., 0., 0.], dtype=float32)
    """
    token = _SLICE_WRITES.set(True)
    try:
        yield
    finally:
        _SLICE_WRITES.reset(token)


def append_cache(cache, new):
    """Appends `new` (B, H, T, D) to a growing cache (B, H, S, D) along the sequence axis.

    Example:
    >>> import numpy as np
    >>> cache = init_cache(1, 2, 0, 4)
    >>> tuple(append_cache(cache, np.ones((1, 2, 3, 4), "float32")).shape)
    (1, 2, 3, 4)
    """
    return ops.concatenate([cache, ops.cast(new, cache.dtype)], axis=2)
