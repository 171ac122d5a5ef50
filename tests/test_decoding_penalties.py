"""Repetition penalty, n-gram blocking, min length and banned ids against plain Python references."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from tfzoo.decoding.graph_ops import NEG, clamp, is_member, token_mask
from tfzoo.decoding.penalties import apply_penalties, no_repeat_ngram_mask, repetition_penalty


def test_repetition_penalty_is_ctrl():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 10)).astype(np.float32)
    presence = rng.random((3, 10)) < 0.5
    out = repetition_penalty(tf.constant(logits), tf.constant(presence), 1.7).numpy()
    expected = np.where(presence, np.where(logits > 0, logits / 1.7, logits * 1.7), logits)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    same = repetition_penalty(tf.constant(logits), tf.constant(presence), 1.0).numpy()
    np.testing.assert_array_equal(same, logits)


def _reference_banned(sequence, length, n, vocabulary_size):
    """Python: tokens v such that sequence[:length] + [v] ends with an n-gram seen before."""
    banned = np.zeros(vocabulary_size, bool)
    if n <= 0 or length + 1 < n:
        return banned
    prefix = tuple(sequence[length - n + 1 : length]) if n > 1 else ()
    for start in range(length - n + 1):
        if tuple(sequence[start : start + n - 1]) == prefix:
            banned[sequence[start + n - 1]] = True
    return banned


_ngram = tf.function(no_repeat_ngram_mask, autograph=False)


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(st.lists(st.integers(0, 3), min_size=9, max_size=9), min_size=2, max_size=2),
    lengths=st.tuples(st.integers(0, 9), st.integers(0, 9)),
    n=st.integers(0, 5),
)
def test_no_repeat_ngram_mask_matches_python(rows, lengths, n):
    sequences = np.array(rows, np.int32)
    out = _ngram(tf.constant(sequences), tf.constant(lengths, tf.int32), tf.constant(n), 4).numpy()
    for row in range(2):
        np.testing.assert_array_equal(out[row], _reference_banned(rows[row], lengths[row], n, 4), err_msg=str(row))


def test_no_repeat_ngram_mask_examples():
    sequences = tf.constant([[5, 6, 5, 6, 5, 0, 0]])

    def banned(length, n):
        return np.flatnonzero(no_repeat_ngram_mask(sequences, [length], n, 8).numpy()[0]).tolist()

    assert banned(5, 2) == [6]  # "5 6" seen: after 5, 6 is banned
    assert banned(5, 3) == [6]  # "6 5 6" seen
    assert banned(4, 3) == [5]  # "5 6 5" seen, current suffix "5 6"
    assert banned(5, 1) == [5, 6]  # unigrams: every present token
    assert banned(5, 0) == []
    assert banned(5, 6) == []  # longer than the sequence


def test_apply_penalties_masks_eos_until_min_new_tokens_and_banned_ids_always():
    logits = tf.constant(np.arange(6, dtype=np.float32)[None].repeat(2, 0))
    kwargs = dict(
        presence=tf.zeros((2, 6), tf.bool),
        sequences=tf.zeros((2, 4), tf.int32),
        length=tf.constant([1, 1]),
        repetition_penalty_value=1.0,
        no_repeat_ngram_size=0,
        min_new_tokens=2,
        eos_mask=token_mask([5], 6),
        banned_mask=token_mask([0, 3], 6),
    )
    out = apply_penalties(logits, num_new=tf.constant([1, 2]), **kwargs).numpy()
    assert (out[:, [0, 3]] == NEG).all()
    assert out[0, 5] == NEG and out[1, 5] == 5.0
    np.testing.assert_array_equal(out[:, [1, 2, 4]], [[1, 2, 4], [1, 2, 4]])


def test_graph_helpers():
    np.testing.assert_array_equal(clamp(tf.constant([-3, 2, 9]), 0, 6).numpy(), [0, 2, 6])
    np.testing.assert_array_equal(
        is_member(tf.constant([[0, 1], [2, 3]]), (3, 0)).numpy(), [[True, False], [False, True]]
    )
    assert not is_member(tf.constant([1]), ()).numpy().any()
    np.testing.assert_array_equal(token_mask([], 3).numpy(), [False] * 3)
