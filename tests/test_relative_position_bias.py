"""Tests for tfzoo.layers.relative_position_bias (T5 buckets and the learned bias)."""

import math

import keras
import numpy as np
import pytest

from export_checks import check_portable
from layer_checks import check_config_round_trip, check_gradients_flow, check_keras_save_reload
from tfzoo.layers.relative_position_bias import RelativePositionBias, relative_position_bucket

CONFIGS = [  # (num_buckets, max_distance, bidirectional)
    (32, 128, True),
    (32, 128, False),
    (16, 50, True),
    (16, 50, False),
    (8, 20, True),
    (33, 64, True),
    (64, 1000, False),
    (2, 5, False),
    (4, 3, True),
]


def _t5_relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    """Direct numpy port of Mesh TensorFlow's T5 `_relative_position_bucket` (float32 like TF)."""
    ret = 0
    n = -relative_position
    if bidirectional:
        num_buckets //= 2
        ret += (n < 0).astype(np.int32) * num_buckets
        n = np.abs(n)
    else:
        n = np.maximum(n, 0)
    # now n is in the range [0, inf)
    max_exact = num_buckets // 2
    is_small = n < max_exact
    with np.errstate(divide="ignore", invalid="ignore"):  # log(0) in the branch `where` drops
        val_if_large = max_exact + (
            np.log(n.astype(np.float32) / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)
        ).astype(np.int32)
    val_if_large = np.minimum(val_if_large, num_buckets - 1)
    ret += np.where(is_small, n, val_if_large)
    return ret


@pytest.mark.parametrize("num_buckets, max_distance, bidirectional", CONFIGS)
def test_bucket_function_matches_t5(num_buckets, max_distance, bidirectional):
    relative = np.concatenate(
        [
            np.arange(-3 * max_distance - 5, 3 * max_distance + 6),
            [-(2**30), -(10**6), -(10**4), 10**4, 10**6, 2**30],
        ]
    ).astype(np.int32)
    expected = _t5_relative_position_bucket(relative, bidirectional, num_buckets, max_distance)
    actual = relative_position_bucket(
        relative.reshape(-1, 1), bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance
    )
    assert keras.backend.standardize_dtype(actual.dtype) == "int32"
    np.testing.assert_array_equal(np.asarray(actual)[:, 0], expected)
    # Ids stay in the table and reach its last used row (bidirectional with an odd count wastes one).
    top = 2 * (num_buckets // 2) - 1 if bidirectional else num_buckets - 1
    assert np.asarray(actual).min() == 0 and np.asarray(actual).max() == top


def test_bucket_function_defaults_are_t5():
    relative = np.arange(-300, 301, dtype=np.int32)
    np.testing.assert_array_equal(
        np.asarray(relative_position_bucket(relative)), _t5_relative_position_bucket(relative)
    )


@pytest.mark.parametrize("num_buckets, max_distance, bidirectional", CONFIGS[:4])
def test_layer_gathers_bucket_bias(num_buckets, max_distance, bidirectional):
    layer = RelativePositionBias(
        num_heads=3, num_buckets=num_buckets, max_distance=max_distance, bidirectional=bidirectional
    )
    query = np.array([[0, 5, 17, 300]], np.int32)  # (1, Tq): broadcast over the keys' batch
    key = np.array([[0, 1, 2, 3, 4, 150, 400], [9, 8, 7, 6, 5, 4, 3]], np.int32)  # (2, Tk)
    out = np.asarray(layer(query, key))
    table = np.asarray(layer.relative_attention_bias)  # (num_buckets, H)
    buckets = _t5_relative_position_bucket(
        key[:, None, :] - query[:, :, None], bidirectional, num_buckets, max_distance
    )  # (2, Tq, Tk)
    assert out.shape == (2, 3, 4, 7)
    np.testing.assert_array_equal(out, np.transpose(table[buckets], (0, 3, 1, 2)))


def test_config_round_trip_non_default():
    layer = RelativePositionBias(
        num_heads=3, num_buckets=16, max_distance=40, bidirectional=False, initializer="he_normal", name="rel_bias"
    )
    clone = check_config_round_trip(layer)
    assert (clone.num_heads, clone.num_buckets, clone.max_distance, clone.bidirectional) == (3, 16, 40, False)
    assert isinstance(clone.initializer, keras.initializers.HeNormal)


def test_keras_save_reload(tmp_path):
    layer = RelativePositionBias(num_heads=2, num_buckets=8, max_distance=12, bidirectional=False)
    positions = np.arange(20, dtype=np.int32)[None, :]
    check_keras_save_reload(layer, [positions, positions], tmp_path)


def test_gradients_flow():
    layer = RelativePositionBias(num_heads=2, num_buckets=8, max_distance=12)
    positions = np.arange(40, dtype=np.int32)[None, :]
    check_gradients_flow(layer, lambda: layer(positions, positions))


def test_output_in_compute_dtype():
    layer = RelativePositionBias(num_heads=2, dtype="mixed_float16")
    positions = np.arange(4, dtype=np.int32)[None, :]
    assert keras.backend.standardize_dtype(layer(positions, positions).dtype) == "float16"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_heads": 0}, "num_heads must be a positive int"),
        ({"num_heads": 2, "num_buckets": 1, "bidirectional": False}, "num_buckets must be an int >= 2"),
        ({"num_heads": 2, "num_buckets": 3, "bidirectional": True}, r"\(>= 4 when bidirectional\), got 3"),
        ({"num_heads": 2, "num_buckets": 32, "max_distance": 8}, "max_distance must be an int > 8"),
        (
            {"num_heads": 2, "num_buckets": 32, "max_distance": 16, "bidirectional": False},
            "max_distance must be an int > 16",
        ),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RelativePositionBias(**kwargs)


def test_bucket_function_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_buckets must be an int >= 2"):
        relative_position_bucket(np.zeros((2,), np.int32), num_buckets=1, bidirectional=False)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_portable(bidirectional):
    layer = RelativePositionBias(num_heads=4, num_buckets=16, max_distance=32, bidirectional=bidirectional)
    query = np.array([[0, 1, 2, 60, 1000]], np.int32)
    key = np.array([[0, 1, 2, 3, 40, 70, -5000, 2**20]], np.int32)
    check_portable(
        lambda query_positions, key_positions: layer(query_positions, key_positions),
        {"query_positions": query, "key_positions": key},
    )
