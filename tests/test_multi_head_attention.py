"""MultiHeadAttention: self, causal, cross, and cached attention."""

import numpy as np
import pytest
from keras import ops

from layer_checks import check_config_round_trip, check_gradients_flow, check_keras_save_reload
from tfzoo.layers.kv_cache import init_cache
from tfzoo.layers.masks import causal_mask, padding_mask
from tfzoo.layers.multi_head_attention import MultiHeadAttention


def _x(b=2, t=6, c=12, seed=0):
    return np.random.default_rng(seed).normal(size=(b, t, c)).astype("float32")


def _positions(t):
    return np.arange(t, dtype="int32")[None]


def test_config_round_trip_with_non_default_arguments():
    layer = MultiHeadAttention(
        num_heads=3,
        key_dim=6,
        value_dim=5,
        output_dim=7,
        dropout=0.25,
        use_bias=False,
        rotary=True,
        rotary_max_wavelength=500.0,
        scale_queries=False,
        kernel_initializer="he_normal",
    )
    clone = check_config_round_trip(layer)
    assert clone.value_dim == 5 and clone.rotary and clone.rotary_max_wavelength == 500.0
    assert not clone.scale_queries


def test_unscaled_queries_are_the_scaled_attention_with_the_scale_folded_into_the_query_kernel():
    """T5 does not divide its logits by sqrt(head_dim): its initialization folds the factor into the queries."""
    x = _x()
    unscaled = MultiHeadAttention(num_heads=2, key_dim=4, scale_queries=False)
    scaled = MultiHeadAttention(num_heads=2, key_dim=4)
    expected = unscaled(x)
    scaled(x)
    for mine, theirs in zip(scaled.weights, unscaled.weights):
        mine.assign(theirs)
    scaled.query_dense.kernel.assign(unscaled.query_dense.kernel * 2.0)  # sqrt(key_dim)
    scaled.query_dense.bias.assign(unscaled.query_dense.bias * 2.0)
    np.testing.assert_allclose(np.asarray(scaled(x)), np.asarray(expected), atol=1e-5)


def test_output_dim_and_value_dim():
    layer = MultiHeadAttention(num_heads=2, key_dim=4, value_dim=3, output_dim=5)
    assert tuple(layer(_x()).shape) == (2, 6, 5)


def test_keras_save_reload(tmp_path):
    layer = MultiHeadAttention(num_heads=3, key_dim=4, rotary=True)
    x = _x()
    positions = np.repeat(_positions(6), 2, axis=0)
    check_keras_save_reload(
        layer,
        [x, positions],
        tmp_path,
        call=lambda lyr, xs: lyr(xs[0], positions=xs[1], attention_mask=causal_mask(xs[1], xs[1])),
    )


@pytest.mark.parametrize("rotary", [False, True])
def test_gradients_flow(rotary):
    layer = MultiHeadAttention(num_heads=2, key_dim=4, rotary=rotary)
    x = _x()
    positions = _positions(6)
    layer(x, positions=positions)
    check_gradients_flow(layer, lambda: layer(x, positions=positions, attention_mask=causal_mask(positions, positions)))


@pytest.mark.parametrize("rotary", [False, True])
def test_causal_future_tokens_never_change_the_past(rotary):
    layer = MultiHeadAttention(num_heads=2, key_dim=4, rotary=rotary)
    x = _x()
    positions = _positions(6)
    mask = causal_mask(positions, positions)
    before = ops.convert_to_numpy(layer(x, positions=positions, attention_mask=mask))
    changed = x.copy()
    changed[:, 4:] = _x(seed=1)[:, 4:]
    after = ops.convert_to_numpy(layer(changed, positions=positions, attention_mask=mask))
    np.testing.assert_allclose(before[:, :4], after[:, :4], atol=1e-6)
    assert not np.allclose(before[:, 4:], after[:, 4:])


@pytest.mark.parametrize("rotary", [False, True])
def test_one_token_at_a_time_with_cache_equals_full_sequence(rotary):
    layer = MultiHeadAttention(num_heads=3, key_dim=4, rotary=rotary)
    x = _x(c=12)
    t, max_length = 6, 9
    positions = _positions(t)
    full = ops.convert_to_numpy(layer(x, positions=positions, attention_mask=causal_mask(positions, positions)))
    cache = (init_cache(2, 3, max_length, 4), init_cache(2, 3, max_length, 4))
    slots = _positions(max_length)
    steps = []
    for i in range(t):
        pos = np.full((2, 1), i, "int32")
        out, cache = layer(x[:, i : i + 1], positions=pos, attention_mask=causal_mask(pos, slots), cache=cache)
        steps.append(ops.convert_to_numpy(out))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5)


def test_prefill_then_step_equals_full_sequence():
    layer = MultiHeadAttention(num_heads=2, key_dim=6, rotary=True)
    x = _x()
    positions = _positions(6)
    full = ops.convert_to_numpy(layer(x, positions=positions, attention_mask=causal_mask(positions, positions)))
    cache = (init_cache(2, 2, 8, 6), init_cache(2, 2, 8, 6))
    slots = _positions(8)
    prefill_pos = np.repeat(_positions(4), 2, axis=0)
    out1, cache = layer(x[:, :4], positions=prefill_pos, attention_mask=causal_mask(prefill_pos, slots), cache=cache)
    step_pos = np.array([[4, 5]] * 2, "int32")
    out2, cache = layer(x[:, 4:], positions=step_pos, attention_mask=causal_mask(step_pos, slots), cache=cache)
    got = np.concatenate([ops.convert_to_numpy(out1), ops.convert_to_numpy(out2)], axis=1)
    np.testing.assert_allclose(got, full, atol=1e-5)


def test_cross_attention_ignores_padded_memory():
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    x, memory = _x(t=3), _x(t=5, seed=2)
    mask = padding_mask(np.array([5, 2]), 5)
    before = ops.convert_to_numpy(layer(x, memory, attention_mask=mask))
    changed = memory.copy()
    changed[1, 2:] = 100.0  # beyond row 1's length
    after = ops.convert_to_numpy(layer(x, changed, attention_mask=mask))
    np.testing.assert_allclose(before, after, atol=1e-6)
    changed[0, 4] = 100.0  # inside row 0's length
    assert not np.allclose(before[0], ops.convert_to_numpy(layer(x, changed, attention_mask=mask))[0])


def test_return_attention_scores_sum_to_one():
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    positions = _positions(6)
    out, weights = layer(
        _x(), positions=positions, attention_mask=causal_mask(positions, positions), return_attention_scores=True
    )
    weights = ops.convert_to_numpy(weights)
    assert weights.shape == (2, 2, 6, 6)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    assert np.all(np.triu(weights[0, 0], 1) < 1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="even key_dim"):
        MultiHeadAttention(num_heads=2, key_dim=3, rotary=True)
    with pytest.raises(ValueError, match="dropout"):
        MultiHeadAttention(num_heads=2, key_dim=4, dropout=1.5)
    layer = MultiHeadAttention(num_heads=2, key_dim=4, rotary=True)
    with pytest.raises(ValueError, match="positions"):
        layer(_x())


def test_cached_step_is_portable():
    from export_checks import check_portable

    layer = MultiHeadAttention(num_heads=2, key_dim=4, rotary=True)
    layer(_x(t=1, c=8), positions=np.zeros((2, 1), "int32"))
    slots = _positions(5)

    def step(x, positions, k, v):
        out, (k, v) = layer(x, positions=positions, attention_mask=causal_mask(positions, slots), cache=(k, v))
        return {"output": out, "present_k": k, "present_v": v}

    rng = np.random.default_rng(0)
    check_portable(
        step,
        {
            "x": _x(t=1, c=8),
            "positions": np.array([[1], [3]], "int32"),
            "k": rng.normal(size=(2, 2, 5, 4)).astype("float32"),
            "v": rng.normal(size=(2, 2, 5, 4)).astype("float32"),
        },
    )


def test_precomputed_cross_key_value_equals_projecting_each_call():
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    x, memory = _x(t=3), _x(t=5, seed=2)
    mask = padding_mask(np.array([5, 2]), 5)
    direct = ops.convert_to_numpy(layer(x, memory, attention_mask=mask))
    k, v = layer.project_key_value(memory)
    assert tuple(k.shape) == (2, 2, 5, 4)
    reused = ops.convert_to_numpy(layer(x, (k, v), attention_mask=mask))
    np.testing.assert_allclose(reused, direct, atol=1e-6)
