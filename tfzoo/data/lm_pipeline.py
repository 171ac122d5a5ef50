"""tf.data pipelines that cut a token stream into language-modelling batches.

Training batches are random windows whose offsets depend only on
`(seed, step)`, so a run resumed at step `s` sees exactly the batches an
uninterrupted run would have seen from step `s` on. Evaluation batches are a
fixed set of evenly spread windows, the same at every evaluation.
"""

from __future__ import annotations

import logging

import numpy as np
import tensorflow as tf

from tfzoo.data.errors import DatasetError


def _check_stream(tokens, *, seq_len: int, split: str) -> np.ndarray:
    """Returns `tokens` as int32 (N,) after checking it holds at least one window."""
    tokens = np.asarray(tokens)
    if tokens.ndim != 1 or not (np.issubdtype(tokens.dtype, np.integer) or tokens.size == 0):
        raise ValueError(f"{split} tokens must be a 1-D integer array, got dtype {tokens.dtype} shape {tokens.shape}")
    if isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer)) or seq_len < 1:
        raise ValueError(f"seq_len must be a positive integer, got {seq_len!r}")
    if tokens.size < seq_len + 1:
        raise DatasetError(
            f"{split} split has {tokens.size} tokens, too few for one window of seq_len + 1 = {seq_len + 1} tokens"
        )
    if tokens.min() < 0:
        raise ValueError(f"{split} tokens must be non-negative, found {int(tokens.min())}")
    return tokens.astype(np.int32, copy=False)


def _check_positive(**values) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def lm_train_dataset(
    tokens: np.ndarray, *, seq_len: int, batch_size: int, seed: int, start_step: int = 0, split: str = "train"
) -> tf.data.Dataset:
    """Infinite batches of random windows of the token stream.

    Batch `i` (the `i - start_step`-th element) holds `batch_size` windows at
    offsets drawn by `tf.random.stateless_uniform(seed=[seed, i])`, so it
    depends only on the stream, the shapes, `seed` and `i`.

    Args:
        tokens: int array (N,). The token stream of the split.
        seq_len: int. Tokens per example.
        batch_size: int. Examples per batch.
        seed: int. Seed of the window offsets.
        start_step: int. Number of the first batch (the step to resume at).
            Defaults to 0.
        split: str. Name of the split, for error messages. Defaults to "train".

    Returns:
        A `tf.data.Dataset` of `(inputs, labels)`, both int32
        (batch_size, seq_len), where `labels[:, t] == inputs[:, t + 1]` within
        the stream (labels are the inputs shifted by one).

    Raises:
        DatasetError: the stream has fewer than `seq_len + 1` tokens.

    Example:
    >>> dataset = lm_train_dataset(np.arange(100), seq_len=4, batch_size=2, seed=0)
    >>> inputs, labels = next(iter(dataset))
    >>> bool(np.all(inputs.numpy()[:, 1:] == labels.numpy()[:, :-1]))
    True
    """
    tokens = _check_stream(tokens, seq_len=seq_len, split=split)
    _check_positive(batch_size=batch_size)
    if isinstance(start_step, bool) or not isinstance(start_step, (int, np.integer)) or start_step < 0:
        raise ValueError(f"start_step must be a non-negative integer, got {start_step!r}")
    stream = tf.constant(tokens)  # (N,)
    num_offsets = tokens.size - seq_len  # Window starts 0 .. N - seq_len - 1 keep all seq_len + 1 tokens.
    window = tf.range(seq_len + 1, dtype=tf.int64)  # (T + 1,)
    seed = tf.constant(seed, tf.int64)

    def make_batch(step):
        offsets = tf.random.stateless_uniform(
            [batch_size], seed=tf.stack([seed, step]), minval=0, maxval=num_offsets, dtype=tf.int64
        )  # (B,)
        windows = tf.gather(stream, offsets[:, None] + window[None, :])  # (B, T + 1)
        return windows[:, :-1], windows[:, 1:]

    dataset = tf.data.Dataset.counter(start=int(start_step), dtype=tf.int64)
    dataset = dataset.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def lm_eval_windows(
    tokens: np.ndarray, *, seq_len: int, batch_size: int, num_batches: int, split: str = "validation"
) -> tuple[np.ndarray, np.ndarray]:
    """Returns the evaluation `(inputs, labels)`, int32 (num_batches * batch_size, seq_len).

    Window `k` of `W = num_batches * batch_size` starts at
    `floor(k * (N - seq_len - 1) / (W - 1))`: evenly spread from the start to
    the end of the stream. They do not overlap when `N >= W * seq_len + 1`;
    a shorter stream gives evenly overlapping windows (logged as a warning).
    """
    tokens = _check_stream(tokens, seq_len=seq_len, split=split)
    _check_positive(batch_size=batch_size, num_batches=num_batches)
    num_windows = batch_size * num_batches
    last_start = tokens.size - seq_len - 1
    starts = np.arange(num_windows, dtype=np.int64) * last_start // max(num_windows - 1, 1)  # (W,)
    if tokens.size < num_windows * seq_len + 1:
        logging.getLogger(__name__).warning(
            "%s split has %d tokens, fewer than the %d that %d non-overlapping windows of %d need: "
            "evaluation windows overlap",
            split,
            tokens.size,
            num_windows * seq_len + 1,
            num_windows,
            seq_len,
        )
    windows = tokens[starts[:, None] + np.arange(seq_len + 1)]  # (W, T + 1)
    return windows[:, :-1], windows[:, 1:]


def lm_eval_dataset(
    tokens: np.ndarray, *, seq_len: int, batch_size: int, num_batches: int, split: str = "validation"
) -> tf.data.Dataset:
    """A finite dataset of fixed evaluation batches, the same every time it is iterated.

    Args:
        tokens: int array (N,). The token stream of the split.
        seq_len: int. Tokens per example.
        batch_size: int. Examples per batch.
        num_batches: int. Number of batches.
        split: str. Name of the split, for error messages. Defaults to
            "validation".

    Returns:
        A `tf.data.Dataset` of `num_batches` `(inputs, labels)` pairs, int32
        (batch_size, seq_len), windows as in `lm_eval_windows`.

    Raises:
        DatasetError: the stream has fewer than `seq_len + 1` tokens.

    Example:
    >>> dataset = lm_eval_dataset(np.arange(100), seq_len=4, batch_size=2, num_batches=3)
    >>> [inputs.numpy()[:, 0].tolist() for inputs, _ in dataset]
    [[0, 19], [38, 57], [76, 95]]
    """
    inputs, labels = lm_eval_windows(
        tokens, seq_len=seq_len, batch_size=batch_size, num_batches=num_batches, split=split
    )
    return tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(batch_size, drop_remainder=True)


def unigram_entropy(tokens: np.ndarray) -> float:
    """Entropy in nats of the token frequencies of `tokens`.

    The cross-entropy of the best model that ignores context: a language model
    earns its keep by how far its loss falls below this.

    Example:
    >>> round(unigram_entropy(np.array([3, 3, 4, 4])), 4)
    0.6931
    """
    tokens = np.asarray(tokens)
    if tokens.ndim != 1 or tokens.size == 0 or not np.issubdtype(tokens.dtype, np.integer) or tokens.min() < 0:
        raise ValueError("unigram_entropy expects a non-empty 1-D array of non-negative integer ids")
    counts = np.bincount(tokens)
    probabilities = counts[counts > 0] / tokens.size
    return float(-np.sum(probabilities * np.log(probabilities)))
