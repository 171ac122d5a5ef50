"""A `step_fn` without a KV cache: re-runs the whole sequence every step.

It is the reference the cached decoders are tested against (same tokens) and
the baseline the benchmark compares with. Its "cache" is the token buffer
(B, max_length); each step writes the new tokens at their positions and runs
the full causal forward pass over the buffer, so a step costs O(max_length).
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from tfzoo.decoding.graph_ops import clamp


def uncached_step_fn(forward: Callable[[tf.Tensor], tf.Tensor], max_length: int, pad_id: int = 0):
    """Wraps a causal full-sequence `forward(token_ids (B, T)) -> logits (B, T, V)` as a step function.

    Args:
        forward: callable, e.g. a GPT (`model(token_ids)`), causal over positions 0..T-1.
        max_length: int. Buffer length (the `max_length` passed to `generate`).
        pad_id: int. Fills the buffer's unwritten slots (never attended by a causal model).

    Returns:
        `(step_fn, init_cache)`: `step_fn(token_ids (B, T), positions (B, T), cache) -> (logits (B, T, V),
        cache)` and `init_cache(batch_size) -> cache`.

    Example:
    >>> import tensorflow as tf
    >>> forward = lambda ids: tf.one_hot(ids, 3)  # "logits" that echo the token
    >>> step_fn, init_cache = uncached_step_fn(forward, max_length=4)
    >>> logits, cache = step_fn(tf.constant([[2, 1]]), tf.constant([[0, 1]]), init_cache(1))
    >>> cache[0].numpy().tolist()
    [[2, 1, 0, 0]]
    """
    slots = tf.range(max_length, dtype=tf.int32)

    def init_cache(batch_size):
        return (tf.fill(tf.stack([batch_size, max_length]), tf.constant(pad_id, tf.int32)),)

    def step_fn(token_ids, positions, cache):
        (buffer,) = cache
        token_ids = tf.cast(token_ids, tf.int32)
        positions = tf.cast(positions, tf.int32)
        select = tf.equal(positions[:, :, None], slots)  # (B, T, M)
        written = tf.reduce_any(select, axis=1)  # (B, M)
        values = tf.reduce_sum(tf.where(select, token_ids[:, :, None], 0), axis=1)  # (B, M)
        buffer = tf.where(written, values, buffer)
        logits = forward(buffer)  # (B, M, V)
        index = clamp(positions, 0, max_length - 1)
        return tf.gather(logits, index, batch_dims=1), (buffer,)  # (B, T, V)

    return step_fn, init_cache
