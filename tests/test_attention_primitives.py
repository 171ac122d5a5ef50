"""Masks, scaled dot-product attention and the KV cache update."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import ops

from tfzoo.layers.kv_cache import init_cache, update_cache
from tfzoo.layers.masks import causal_mask, padding_mask
from tfzoo.layers.scaled_dot_product_attention import scaled_dot_product_attention


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_causal_mask_from_positions_matches_lower_triangle():
    positions = np.arange(6)[None]
    mask = ops.convert_to_numpy(causal_mask(positions, positions))
    assert mask.shape == (1, 1, 6, 6)
    np.testing.assert_array_equal(mask[0, 0], np.tril(np.ones((6, 6), bool)))


def test_causal_mask_against_cache_slots_per_row():
    query = np.array([[2], [4]])  # two rows at different positions
    slots = np.arange(6)[None]
    mask = ops.convert_to_numpy(causal_mask(query, slots))[:, 0, 0]
    np.testing.assert_array_equal(mask, [[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]])


def test_padding_mask():
    mask = ops.convert_to_numpy(padding_mask(np.array([0, 2, 4]), 4))
    assert mask.shape == (3, 1, 1, 4)
    np.testing.assert_array_equal(mask[:, 0, 0], [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]])


def test_sdpa_matches_the_formula_with_mask_and_bias():
    rng = np.random.default_rng(0)
    q, k, v = (rng.normal(size=(2, 3, 4, 8)).astype("float32") for _ in range(3))
    bias = rng.normal(size=(1, 3, 4, 4)).astype("float32")
    mask = np.tril(np.ones((4, 4), bool))[None, None]
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask, bias=bias)
    logits = q @ k.transpose(0, 1, 3, 2) / np.sqrt(8) + bias
    logits = np.where(mask, logits, -np.inf)
    expected_w = _softmax(logits)
    np.testing.assert_allclose(ops.convert_to_numpy(weights), expected_w, atol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(out), expected_w @ v, atol=1e-5)


def test_sdpa_fully_masked_row_is_finite():
    q = k = v = np.ones((1, 1, 2, 4), "float32")
    mask = np.zeros((1, 1, 2, 2), bool)
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask)
    assert np.all(np.isfinite(ops.convert_to_numpy(out)))
    np.testing.assert_allclose(ops.convert_to_numpy(weights).sum(-1), 1.0, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.integers(-2, 9), min_size=1, max_size=4),
    st.integers(0, 2**31 - 1),
)
def test_update_cache_writes_exactly_the_given_slots(positions, seed):
    rng = np.random.default_rng(seed)
    length = 8
    cache = rng.normal(size=(1, 2, length, 3)).astype("float32")
    new = rng.normal(size=(1, 2, len(positions), 3)).astype("float32")
    # Distinct positions only: the cache writes each slot once.
    positions = list(dict.fromkeys(positions))
    new = new[:, :, : len(positions)]
    got = ops.convert_to_numpy(update_cache(cache, new, np.array([positions])))
    expected = cache.copy()
    for t, p in enumerate(positions):
        if 0 <= p < length:
            expected[:, :, p] = new[:, :, t]
    np.testing.assert_array_equal(got, expected)


def test_update_cache_rows_at_different_positions():
    cache = np.asarray(init_cache(2, 1, 4, 1))
    new = np.array([[[[1.0]]], [[[2.0]]]], "float32")  # (2, 1, 1, 1)
    got = ops.convert_to_numpy(update_cache(cache, new, np.array([[0], [3]])))
    np.testing.assert_array_equal(got[:, 0, :, 0], [[1, 0, 0, 0], [0, 0, 0, 2]])


def test_prefill_cache_write_has_no_reduction_for_xla_to_fold():
    # XLA rewrote a max over the prompt's tokens into a reduce-window and constant-folded it for 8-12 s per
    # cache when the positions were known (a prefill's iota at 1024 slots): the write must not reduce.
    import tensorflow as tf

    @tf.function(autograph=False)
    def write(cache, new):
        return update_cache(cache, new, tf.tile(tf.range(3)[None], [2, 1]))

    graph = write.get_concrete_function(tf.zeros((2, 1, 8, 2)), tf.ones((2, 1, 3, 2))).graph
    op_types = {op.type for op in graph.get_operations()}
    assert not op_types & {"Max", "Sum", "Any", "Prod", "Min"}, sorted(op_types)
    got = write(tf.fill((2, 1, 8, 2), 7.0), tf.ones((2, 1, 3, 2))).numpy()
    np.testing.assert_array_equal(got[:, 0, :, 0], [[1, 1, 1, 7, 7, 7, 7, 7]] * 2)


@pytest.mark.parametrize("batch", [1, 3])
def test_init_cache_shape(batch):
    assert tuple(init_cache(batch, 2, 5, 4).shape) == (batch, 2, 5, 4)
