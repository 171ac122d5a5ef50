"""Padding and batching of a task's encoded rows: step-indexed training batches, fixed evaluation batches.

Training batches are step indexed: batch `i` depends only on `(seed, i)`, so
a resumed run sees the batches an uninterrupted one would.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfzoo.training.validate import ConfigError

EVAL_BATCH_SIZE = 128  # Examples per batch when decoding / classifying the held-out split.


def pad_rows(rows: list, length: int, pad_id: int) -> np.ndarray:
    """The id lists `rows` as an int32 array (N, length), each row filled up with `pad_id`."""
    out = np.full((len(rows), length), pad_id, np.int32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def teacher_forced_rows(tokenizer, texts, start_id: int, length: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Padded `target_ids` (`<start> text`) and `labels` (`text <eos>`), (N, length) each.

    Raises:
        ConfigError: a text needs more than `length` tokens with its start token (the message names `what`).
    """
    rows = [list(tokenizer.encode(text)) for text in texts]
    longest = max(len(row) for row in rows) + 1
    if longest > length:
        raise ConfigError(f"a {what} needs {longest} tokens with its start token; raise seq_len to it")
    target_ids = pad_rows([[start_id] + row for row in rows], length, tokenizer.pad_id)
    return target_ids, pad_rows([row + [tokenizer.eos_id] for row in rows], length, tokenizer.pad_id)


def step_indexed_batches(arrays: tuple, batch_size: int, seed: int, start_step: int, to_example) -> tf.data.Dataset:
    """Infinite batches of rows drawn by `stateless_uniform(seed=[seed, step])` from the same-length `arrays`."""
    tensors = tuple(tf.constant(a) for a in arrays)
    count = len(arrays[0])
    seed = tf.constant(seed, tf.int64)

    def make_batch(step):
        rows = tf.random.stateless_uniform([batch_size], seed=tf.stack([seed, step]), maxval=count, dtype=tf.int64)
        return to_example(*(tf.gather(t, rows) for t in tensors))

    dataset = tf.data.Dataset.counter(start=int(start_step), dtype=tf.int64)
    dataset = dataset.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def eval_batches(arrays: tuple, batch_size: int, num_batches: int, to_example) -> tf.data.Dataset:
    """The first `num_batches` full batches of the held-out rows, in order (wrapping around)."""
    dataset = tf.data.Dataset.from_tensor_slices(tuple(tf.constant(a) for a in arrays)).repeat()
    dataset = dataset.batch(batch_size, drop_remainder=True).take(num_batches)
    return dataset.map(to_example).cache()


def fixed_batches(array: np.ndarray, batch_size: int):
    """Yields `(batch, real_rows)`: every batch has `batch_size` rows (the last is filled with row 0)."""
    for start in range(0, len(array), batch_size):
        batch = array[start : start + batch_size]
        real = len(batch)
        if real < batch_size:
            batch = np.concatenate([batch, np.repeat(array[:1], batch_size - real, axis=0)])
        yield batch, real
