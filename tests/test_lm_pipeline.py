"""Tests for the LM training/evaluation pipelines and the unigram entropy."""

import logging
import math

import numpy as np
import pytest
import tensorflow as tf

from tfzoo.data import DatasetError
from tfzoo.data.lm_pipeline import lm_eval_dataset, lm_eval_windows, lm_train_dataset, unigram_entropy


def _take(dataset, count):
    return [(inputs.numpy(), labels.numpy()) for inputs, labels in dataset.take(count)]


def test_train_batches_have_shapes_dtypes_and_shifted_labels():
    tokens = np.arange(1000, dtype=np.int32)  # token == position, so windows reveal their offsets
    dataset = lm_train_dataset(tokens, seq_len=16, batch_size=4, seed=0)
    assert dataset.cardinality().numpy() == tf.data.INFINITE_CARDINALITY
    for inputs, labels in _take(dataset, 3):
        assert inputs.shape == labels.shape == (4, 16)
        assert inputs.dtype == labels.dtype == np.int32
        np.testing.assert_array_equal(inputs, inputs[:, :1] + np.arange(16))  # contiguous windows
        np.testing.assert_array_equal(labels, inputs + 1)


def test_train_windows_reach_both_ends_of_the_stream():
    tokens = np.arange(20, dtype=np.int32) + 5
    starts = {
        int(start) - 5
        for inputs, _ in _take(lm_train_dataset(tokens, seq_len=4, batch_size=8, seed=3), 40)
        for start in inputs[:, 0]
    }
    assert starts == set(range(16))  # the window at 15 ends with the last token


def test_train_batches_depend_on_seed_and_step_only():
    tokens = np.random.default_rng(0).integers(0, 50, size=5000)
    first = _take(lm_train_dataset(tokens, seq_len=8, batch_size=4, seed=7), 4)
    again = _take(lm_train_dataset(tokens, seq_len=8, batch_size=4, seed=7), 4)
    other_seed = _take(lm_train_dataset(tokens, seq_len=8, batch_size=4, seed=8), 4)
    for (x, y), (x2, y2) in zip(first, again):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(first[0][0], other_seed[0][0])
    assert not np.array_equal(first[0][0], first[1][0])  # steps differ


def test_resuming_at_a_step_gives_the_uninterrupted_batches():
    tokens = np.arange(10_000, dtype=np.int32)
    uninterrupted = _take(lm_train_dataset(tokens, seq_len=8, batch_size=3, seed=11), 9)
    resumed = _take(lm_train_dataset(tokens, seq_len=8, batch_size=3, seed=11, start_step=6), 3)
    for (x, y), (x2, y2) in zip(uninterrupted[6:], resumed):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(uninterrupted[0][0], resumed[0][0])


def test_eval_batches_are_fixed_finite_and_spread_without_overlap():
    tokens = np.arange(1001, dtype=np.int32)
    dataset = lm_eval_dataset(tokens, seq_len=10, batch_size=4, num_batches=5)
    assert dataset.cardinality().numpy() == 5
    first, second = _take(dataset, 10), _take(dataset, 10)
    assert len(first) == 5
    for (x, y), (x2, y2) in zip(first, second):
        assert x.shape == y.shape == (4, 10) and x.dtype == np.int32
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
        np.testing.assert_array_equal(y, x + 1)
    starts = np.concatenate([x[:, 0] for x, _ in first])
    assert starts[0] == 0 and first[-1][1][-1, -1] == 1000  # from the first to the last token
    assert np.all(np.diff(starts) >= 10)  # inputs (and labels) never overlap
    assert np.diff(starts).max() - np.diff(starts).min() <= 1  # evenly spread


def test_eval_windows_overlap_on_a_short_stream_with_a_warning(caplog):
    tokens = np.arange(50, dtype=np.int32)
    with caplog.at_level(logging.WARNING, logger="tfzoo.data.lm_pipeline"):
        inputs, labels = lm_eval_windows(tokens, seq_len=10, batch_size=4, num_batches=2)
    assert inputs.shape == labels.shape == (8, 10)
    assert inputs[0, 0] == 0 and labels[-1, -1] == 49
    assert "overlap" in caplog.text and "validation split has 50 tokens" in caplog.text


def test_streams_shorter_than_one_window_raise_dataset_errors():
    tokens = np.arange(8, dtype=np.int32)
    with pytest.raises(DatasetError, match=r"^train split has 8 tokens, .* seq_len \+ 1 = 9 tokens$"):
        lm_train_dataset(tokens, seq_len=8, batch_size=2, seed=0)
    with pytest.raises(DatasetError, match=r"^validation split has 8 tokens"):
        lm_eval_dataset(tokens, seq_len=8, batch_size=2, num_batches=1)
    lm_train_dataset(np.arange(9), seq_len=8, batch_size=2, seed=0)  # exactly one window fits


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seq_len": 0},
        {"batch_size": 0},
        {"seq_len": 2.5},
        {"start_step": -1},
        {"tokens": np.zeros((4, 50), np.int32)},
        {"tokens": np.linspace(0, 1, 50)},
        {"tokens": -np.arange(50)},
    ],
)
def test_train_dataset_rejects_bad_arguments(kwargs):
    arguments = {"tokens": np.arange(50), "seq_len": 4, "batch_size": 2, "seed": 0, **kwargs}
    with pytest.raises(ValueError):
        lm_train_dataset(arguments.pop("tokens"), **arguments)


def test_unigram_entropy_in_nats():
    assert unigram_entropy(np.array([5, 6, 7, 8] * 3)) == pytest.approx(math.log(4))
    assert unigram_entropy(np.array([3, 3, 3])) == 0.0
    p = np.array([0.5, 0.25, 0.25])
    assert unigram_entropy(np.array([0, 0, 1, 2])) == pytest.approx(-np.sum(p * np.log(p)))
    with pytest.raises(ValueError):
        unigram_entropy(np.array([], np.int32))
