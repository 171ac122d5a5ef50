"""Stop sequences and banned token sequences: run-time int32 tables checked inside the decode loop.

Both options are int32 tables `[num_sequences, max_sequence_tokens]`, one token sequence per row,
left-aligned and padded with `PAD` (-1); a row of `PAD` only is unused, so an all-`PAD` table
(`empty_table`) is "none" and changes nothing. The table is shared by every row of the batch.

- `stop_sequences`: a row of the batch ends as soon as its *generated* tokens end with one of
  them (the stop tokens are kept in `sequences`, like an EOS id; `tfzoo.generate` and the chat
  trim the text before the stop string).
- `banned_sequences`: a sequence `[t1 .. tn]` never appears in a row: when the row's last n-1
  tokens (prompt included) are `t1 .. tn-1`, `tn` is masked (Hugging Face's `bad_words_ids`); a
  one-token sequence is a banned id. Applied before choosing in greedy, sampling and beam search.

Both checks run in the graph behind a conditional on "is any entry >= 0", so an empty table costs
one reduction per step (XLA's conditional, TFLite's `IF`, ONNX `If`); a Python `None` leaves them
out of the graph. The ban mask is a (N, S) x (S, V) product of the matched sequences and their
last tokens' one-hot rows: O(S * V) per row, with no O(M * V) term (the n-gram mask's cost).

Example:
>>> table = pad_sequences([[3, 4], [7]], (2, 3))
>>> table.tolist()
[[3, 4, -1], [7, -1, -1]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfzoo.decoding.graph_ops import clamp
from tfzoo.decoding.sequence_tables import DEFAULT_SHAPES, PAD, SEQUENCE_OPTIONS, empty_table  # noqa: F401
from tfzoo.decoding.sequence_tables import pad_sequences as _pad
from tfzoo.decoding.validation import DecodingError


def pad_sequences(sequences, shape: Sequence[int] | None = None, **kwargs) -> np.ndarray:
    """`tfzoo.decoding.sequence_tables.pad_sequences`, raising `DecodingError`."""
    return _pad(sequences, shape, error=DecodingError, **kwargs)


def is_static_empty(table) -> bool:
    """True when `table` is None or a known (non-symbolic) table without any entry >= 0."""
    if table is None:
        return True
    value = tf.get_static_value(table)
    return value is not None and not bool(np.any(np.asarray(value) >= 0))


def _tails(sequences: tf.Tensor, end: tf.Tensor, table: tf.Tensor, drop_last: bool) -> tuple[tf.Tensor, ...]:
    """`(equal (N, S), counts (S,))`: whether each row's tokens before `end` are each table row's tokens.

    With `drop_last`, a table row's last token is left out (its prefix is compared). `counts` are the
    compared lengths.
    """
    table = tf.cast(table, tf.int32)
    max_length = sequences.shape[1]
    used = table >= 0  # (S, T)
    counts = tf.reduce_sum(tf.cast(used, tf.int32), axis=1)  # (S,)
    if drop_last:
        counts = tf.maximum(counts - 1, 0)
    width = table.shape[1] if table.shape[1] is not None else tf.shape(table)[1]
    j = tf.range(width, dtype=tf.int32)  # (T,)
    # Token j of table row s is compared with sequences[end - counts[s] + j] (j < counts[s]).
    index = tf.expand_dims(tf.expand_dims(end, 1), 2) - tf.expand_dims(tf.expand_dims(counts, 0), 2)
    index = index + tf.expand_dims(tf.expand_dims(j, 0), 0)  # (N, S, T)
    shape = tf.shape(index)
    gathered = tf.gather(sequences, tf.reshape(clamp(index, 0, max_length - 1), [shape[0], -1]), batch_dims=1)
    gathered = tf.reshape(gathered, shape)  # (N, S, T)
    compared = tf.expand_dims(j, 0) < tf.expand_dims(counts, 1)  # (S, T)
    equal = tf.equal(gathered, tf.expand_dims(table, 0)) | ~tf.expand_dims(compared, 0)
    return tf.reduce_all(equal, axis=2), counts


def stop_matched(sequences: tf.Tensor, end: tf.Tensor, num_new: tf.Tensor, table: tf.Tensor) -> tf.Tensor:
    """bool (N,): the row's generated tokens (the last `num_new` before `end`) end with a stop sequence.

    Args:
        sequences: int32 (N, M).
        end: int32 (N,): filled length (the last token is at `end - 1`).
        num_new: int32 (N,) or scalar: how many of those tokens were generated.
        table: int32 (S, T) stop sequences padded with `PAD`.

    Example:
    >>> stop_matched(tf.constant([[1, 2, 3, 0]]), tf.constant([3]), tf.constant([2]),
    ...              tf.constant([[2, 3], [9, -1]])).numpy().tolist()
    [True]
    """
    equal, counts = _tails(sequences, tf.cast(end, tf.int32), table, drop_last=False)
    num_new = tf.reshape(tf.cast(num_new, tf.int32), [-1, 1])  # (N|1, 1)
    matched = equal & tf.expand_dims(counts > 0, 0) & (tf.expand_dims(counts, 0) <= num_new)
    return tf.reduce_any(matched, axis=1)


def banned_sequence_mask(sequences: tf.Tensor, length: tf.Tensor, table: tf.Tensor, vocabulary_size: int) -> tf.Tensor:
    """bool (N, V): tokens that would complete a banned sequence at position `length`.

    Args:
        sequences: int32 (N, M): each row's tokens so far.
        length: int32 (N,): filled length (the next token goes there).
        table: int32 (S, T) banned sequences padded with `PAD`.
        vocabulary_size: int.

    Example:
    >>> banned_sequence_mask(tf.constant([[1, 2, 0]]), tf.constant([2]), tf.constant([[2, 3], [1, 1]]),
    ...                      4).numpy().tolist()
    [[False, False, False, True]]
    """
    table = tf.cast(table, tf.int32)
    length = tf.cast(length, tf.int32)
    prefix_equal, prefix_counts = _tails(sequences, length, table, drop_last=True)  # (N, S)
    used = tf.reduce_sum(tf.cast(table >= 0, tf.int32), axis=1)  # (S,)
    matched = (
        prefix_equal & tf.expand_dims(used > 0, 0) & (tf.expand_dims(prefix_counts, 0) <= tf.expand_dims(length, 1))
    )
    last = tf.gather(table, tf.maximum(used - 1, 0), batch_dims=1)  # (S,)
    one_hot = tf.cast(tf.equal(tf.expand_dims(last, 1), tf.range(vocabulary_size, dtype=tf.int32)), tf.float32)
    return tf.matmul(tf.cast(matched, tf.float32), one_hot) > 0.5  # (N, V)


def _static_shaped(value: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    # Static shapes again after a conditional (tf2onnx knows nothing of an `If`'s output shape); a reshape
    # to a constant shape would be dropped by grappler as redundant: this one survives.
    value = tf.reshape(value, tf.shape(like))
    value.set_shape(like.shape)
    return value


def ban_mask(sequences, length, table, logits) -> tf.Tensor:
    """`banned_sequence_mask`, built only when the table has an entry (a conditional, not a select)."""
    if is_static_empty(table):
        return tf.zeros_like(logits, tf.bool)
    banned = tf.cond(
        tf.reduce_any(tf.cast(table, tf.int32) >= 0),
        lambda: banned_sequence_mask(sequences, length, table, logits.shape[-1]),
        lambda: tf.zeros_like(logits, tf.bool),
    )
    return _static_shaped(banned, logits)


def stop_mask(sequences, end, num_new, table) -> tf.Tensor:
    """`stop_matched`, built only when the table has an entry; bool (N,)."""
    rows = tf.zeros_like(end, tf.bool)
    if is_static_empty(table):
        return rows
    stopped = tf.cond(
        tf.reduce_any(tf.cast(table, tf.int32) >= 0),
        lambda: stop_matched(sequences, end, num_new, table),
        lambda: rows,
    )
    return _static_shaped(stopped, rows)
