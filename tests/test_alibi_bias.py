"""Tests for tfzoo.layers.alibi_bias.AlibiBias."""

import math

import keras
import numpy as np
import pytest

from export_checks import check_portable
from layer_checks import check_config_round_trip, check_keras_save_reload
from tfzoo.layers.alibi_bias import AlibiBias


def _paper_slopes(n):
    """Port of `get_slopes` from ofirpress/attention_with_linear_biases (fairseq)."""

    def get_slopes_power_of_2(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        ratio = start
        return [start * ratio**i for i in range(n)]

    if math.log2(n).is_integer():
        return get_slopes_power_of_2(n)
    closest_power_of_2 = 2 ** math.floor(math.log2(n))
    return (
        get_slopes_power_of_2(closest_power_of_2)
        + _paper_slopes(2 * closest_power_of_2)[0::2][: n - closest_power_of_2]
    )


def _layer_slopes(num_heads):
    """Reads the slopes off the layer: the causal bias of query 1 on key 0 is -slope."""
    bias = AlibiBias(num_heads=num_heads)(np.array([[1]], np.int32), np.array([[0]], np.int32))
    return -np.asarray(bias)[0, :, 0, 0]


def test_slopes_for_eight_heads():
    np.testing.assert_allclose(_layer_slopes(8), [1 / 2**k for k in range(1, 9)], rtol=1e-7)


def test_slopes_for_non_power_of_two_heads():
    # 6 heads: the 4-head slopes, then every other slope of 8 heads.
    np.testing.assert_allclose(_layer_slopes(6), [1 / 4, 1 / 16, 1 / 64, 1 / 256, 1 / 2, 1 / 8], rtol=1e-7)
    # 12 heads: the 8-head slopes, then 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5 from 16 heads.
    expected = [2.0**-k for k in range(1, 9)] + [2.0 ** -(k + 0.5) for k in range(4)]
    np.testing.assert_allclose(_layer_slopes(12), expected, rtol=1e-6)
    np.testing.assert_allclose(_layer_slopes(3), [1 / 16, 1 / 256, 1 / 4], rtol=1e-7)


@pytest.mark.parametrize("num_heads", range(1, 41))
def test_slopes_match_paper_code(num_heads):
    np.testing.assert_allclose(_layer_slopes(num_heads), _paper_slopes(num_heads), rtol=1e-6)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_bias_is_linear_in_distance(bidirectional):
    layer = AlibiBias(num_heads=5, bidirectional=bidirectional)
    query = np.array([[0, 3, 9]], np.int32)  # (1, Tq): broadcast over the keys' batch
    key = np.array([[0, 1, 2, 3, 4, 50], [10, 9, 8, 7, 6, 5]], np.int32)  # (2, Tk)
    out = np.asarray(layer(query, key))
    distance = (query[:, :, None] - key[:, None, :]).astype(np.float64)  # (2, Tq, Tk)
    if bidirectional:
        distance = np.abs(distance)
    slopes = np.asarray(_paper_slopes(5))[None, :, None, None]
    assert out.shape == (2, 5, 3, 6)
    np.testing.assert_allclose(out, -slopes * distance[:, None], rtol=1e-6, atol=1e-7)


def test_config_round_trip_non_default():
    layer = AlibiBias(num_heads=6, bidirectional=True, name="alibi")
    clone = check_config_round_trip(layer)
    assert (clone.num_heads, clone.bidirectional) == (6, True)


def test_keras_save_reload(tmp_path):
    layer = AlibiBias(num_heads=3, bidirectional=True)
    positions = np.array([[0, 1, 2, 3, 8]], np.int32)
    check_keras_save_reload(layer, [positions, positions], tmp_path)


def test_has_no_weights_and_compute_dtype():
    layer = AlibiBias(num_heads=2, dtype="mixed_float16")
    out = layer(np.array([[0, 1]], np.int32), np.array([[0, 1]], np.int32))
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    assert layer.weights == []


@pytest.mark.parametrize("num_heads", [0, -2, 2.0])
def test_rejects_bad_num_heads(num_heads):
    with pytest.raises(ValueError, match="num_heads must be a positive int"):
        AlibiBias(num_heads=num_heads)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_portable(bidirectional):
    layer = AlibiBias(num_heads=6, bidirectional=bidirectional)
    query = np.array([[0, 1, 2, 3, 700]], np.int32)
    key = np.array([[0, 1, 2, 3, 4, 5, 650], [4, 3, 2, 1, 0, 9, 8]], np.int32)
    check_portable(
        lambda query_positions, key_positions: layer(query_positions, key_positions),
        {"query_positions": query, "key_positions": key},
    )
