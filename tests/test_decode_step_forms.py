"""The lean forms of a decode step equal the Keras layers they replace, keep their weights, and convert lean.

Each form (the plain-ops `LayerNorm`, `LastAxisDense`, the one-op tanh GELU, the tied logits as
one matmul, the fused query/key/value projection and the one-token output projection, the slot
masks shared by every cache) is compared with what it replaced on random inputs and weights. A
GPT built with the replaced Keras layers is saved as `.keras` and loaded by the current code
(same variable paths, same logits). The exported tiny GPT's TFLite `decode` step has no
REDUCE_PROD or TRANSPOSE and fewer operators than the bound measured (bench/decode_step_ops.py).
"""

from __future__ import annotations

import json
import math
import os

import keras
import numpy as np
import pytest

from layer_checks import check_config_round_trip, check_keras_save_reload
from tfzoo.layers import feed_forward, norms
from tfzoo.layers.dense import LastAxisDense, last_axis_matmul
from tfzoo.layers.kv_cache import cache_writes, update_cache
from tfzoo.layers.multi_head_attention import MultiHeadAttention
from tfzoo.layers.norms import LayerNorm
from tfzoo.layers.token_embedding import TokenEmbedding
from tfzoo.models.gpt import GPT

# A 2-layer GPT (hidden 32, 2 heads, vocabulary 64): 223 ops before these forms (bench/decode_step_ops.py),
# 107 after (1 layer fewer: 51 ops fewer). The bound leaves room for a converter's small changes.
DECODE_OPS_BOUND = 115


def _normal(shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype("float32")


def _perturb(layer, seed=1, scale=0.3):
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign(weight.numpy() + rng.normal(0.0, scale, weight.shape).astype("float32"))


@pytest.mark.parametrize("center", [True, False])
def test_layer_norm_equals_keras_layer_normalization_with_the_same_weights(center):
    x = _normal((2, 5, 16), scale=3.0) + 2.0
    ours = LayerNorm(epsilon=1e-5, center=center)
    theirs = keras.layers.LayerNormalization(epsilon=1e-5, center=center)
    ours.build(x.shape)
    theirs.build(x.shape)
    _perturb(theirs)
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights] == ["gamma", "beta"][: 1 + center]
    for mine, other in zip(ours.weights, theirs.weights):
        mine.assign(other)
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(theirs(x)), atol=1e-5)


def test_layer_norm_config_and_reload(tmp_path):
    clone = check_config_round_trip(LayerNorm(epsilon=1e-3, center=False))
    assert clone.epsilon == 1e-3 and not clone.center
    check_keras_save_reload(LayerNorm(epsilon=1e-3), [_normal((2, 3, 8))], tmp_path)


def test_make_norm_layer_is_the_plain_ops_layer_norm():
    assert type(norms.make_norm("layer", epsilon=1e-5)) is LayerNorm
    assert not norms.make_norm("layer", epsilon=1e-5, use_bias=False).center


@pytest.mark.parametrize("shape", [(4, 6), (2, 5, 6), (2, 3, 4, 6)])
@pytest.mark.parametrize("use_bias", [True, False])
def test_last_axis_dense_equals_keras_dense_with_the_same_weights(shape, use_bias):
    x = _normal(shape)
    ours, theirs = LastAxisDense(7, use_bias=use_bias), keras.layers.Dense(7, use_bias=use_bias)
    ours.build(x.shape)
    theirs.build(x.shape)
    _perturb(theirs)
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    for mine, other in zip(ours.weights, theirs.weights):
        mine.assign(other)
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(theirs(x)), atol=1e-5)


def test_last_axis_dense_config_reload_and_bad_units(tmp_path):
    clone = check_config_round_trip(LastAxisDense(5, use_bias=False, kernel_initializer="he_normal"))
    assert clone.units == 5 and not clone.use_bias
    check_keras_save_reload(LastAxisDense(5), [_normal((2, 3, 4))], tmp_path)
    with pytest.raises(ValueError, match="units must be a positive int"):
        LastAxisDense(0)


def test_last_axis_matmul_transposed_kernel():
    x, w = _normal((2, 3, 4)), _normal((5, 4), seed=1)
    np.testing.assert_allclose(np.asarray(last_axis_matmul(x, w, transpose_kernel=True)), x @ w.T, atol=1e-5)


def test_gelu_tanh_is_the_hand_written_tanh_approximation():
    h = _normal((3, 50), scale=4.0)
    hand = 0.5 * h * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (h + 0.044715 * h * h * h)))
    np.testing.assert_allclose(np.asarray(feed_forward._gelu_tanh(h)), hand, atol=1e-5)


def test_tied_logits_are_the_hidden_states_times_the_table():
    layer = TokenEmbedding(vocabulary_size=11, hidden_dim=6)
    layer.build()
    x = _normal((2, 3, 6))
    expected = x @ np.asarray(layer.embeddings).T
    np.testing.assert_allclose(np.asarray(layer(x, reverse=True)), expected, atol=1e-5)


def _separate_projections(layer, x):
    return layer.query_dense(x), layer.key_dense(x), layer.value_dense(x)


@pytest.mark.parametrize("width", [1, 5])
@pytest.mark.parametrize(("value_dim", "use_bias"), [(None, True), (3, True), (None, False)])
def test_fused_query_key_value_equals_the_three_projections(width, value_dim, use_bias):
    x = _normal((2, width, 12))
    layer = MultiHeadAttention(num_heads=3, key_dim=4, value_dim=value_dim, use_bias=use_bias)
    layer.build(x.shape)
    _perturb(layer)
    fused = layer.project_query_key_value(x)
    for got, want in zip(fused, _separate_projections(layer, x)):
        assert tuple(got.shape) == tuple(want.shape)
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)


@pytest.mark.parametrize("use_bias", [True, False])
def test_one_token_output_projection_equals_the_einsum_dense(use_bias):
    layer = MultiHeadAttention(num_heads=3, key_dim=4, value_dim=5, use_bias=use_bias)
    layer.build((None, None, 12))
    _perturb(layer)
    attended = _normal((2, 3, 1, 5))
    np.testing.assert_allclose(
        np.asarray(layer._project_output(attended)), np.asarray(layer.output_dense(attended)), atol=1e-5
    )


@pytest.mark.parametrize("width", [1, 3])
def test_shared_cache_writes_equal_per_cache_writes(width):
    cache = _normal((2, 2, 8, 4))
    new = _normal((2, 2, width, 4), seed=1)
    positions = np.array([[1, 2, 3][:width], [5, 6, 9][:width]], np.int32)  # 9: outside, dropped
    writes = cache_writes(positions, np.arange(8, dtype=np.int32)[None], "float32")
    shared = np.asarray(update_cache(cache, new, positions, writes))
    np.testing.assert_array_equal(shared, np.asarray(update_cache(cache, new, positions)))
    assert not np.array_equal(shared, cache)


def _tiny_gpt(**sizes):
    """A 2-layer tanh-GELU GPT (GPT-2's activation); `sizes` override the small defaults."""
    options = dict(vocabulary_size=40, num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=16)
    return GPT(num_layers=2, activation="gelu_tanh", **{**options, **sizes})


def test_a_gpt_saved_with_keras_dense_and_layer_normalization_loads_unchanged(tmp_path, monkeypatch):
    """The `.keras` of a GPT whose blocks used keras Dense and LayerNormalization: same paths, same logits."""
    tokens = np.array([[3, 7, 1, 30, 2]], np.int32)
    with monkeypatch.context() as patch:
        patch.setattr(feed_forward, "LastAxisDense", keras.layers.Dense)
        patch.setattr(norms, "LayerNorm", keras.layers.LayerNormalization)
        keras.utils.set_random_seed(0)
        old = _tiny_gpt()
        old.build((None, None))
        assert type(old.blocks[0].feed_forward.intermediate_dense) is keras.layers.Dense
        assert type(old.final_norm) is keras.layers.LayerNormalization
        _perturb(old, scale=0.2)
        expected = np.asarray(old(tokens))
        path = os.path.join(str(tmp_path), "old.keras")
        old.save(path)
        old_paths = [v.path for v in old.weights]
    new = keras.saving.load_model(path)
    assert type(new.blocks[0].feed_forward.intermediate_dense) is LastAxisDense
    assert type(new.final_norm) is LayerNorm
    assert [v.path for v in new.weights] == old_paths
    np.testing.assert_allclose(np.asarray(new(tokens)), expected, atol=1e-5)
    # The cached decode step (fused projections, shared slot masks) gives the same last logits.
    cache = new.init_cache(1, 16)
    logits, cache = new.call_with_cache(tokens[:, :4], np.arange(4)[None], cache)
    step, _ = new.call_with_cache(tokens[:, 4:], np.array([[4]]), cache)
    np.testing.assert_allclose(np.asarray(step)[:, 0], expected[:, 4], atol=1e-5)
    np.testing.assert_allclose(np.asarray(logits), expected[:, :4], atol=1e-5)


def test_exported_decode_step_is_lean(tmp_path):
    from export.export_module import ExportModule
    from export.pipeline import _write_saved_model
    from export.tflite_export import convert_tflite, non_builtin_ops, op_histograms

    keras.utils.set_random_seed(0)
    model = _tiny_gpt(vocabulary_size=64, hidden_dim=32, intermediate_dim=64, max_sequence_length=64)
    model.build((None, None))
    _perturb(model, scale=0.05)
    module = ExportModule(model, max_length=64, strategy="greedy", strategies=(), eos_ids=(1,))
    tokenizer = os.path.join(str(tmp_path), "tokenizer.json")
    with open(tokenizer, "w", encoding="utf-8") as file:
        json.dump({"type": "byte"}, file)
    saved = os.path.join(str(tmp_path), "saved_model")
    _write_saved_model(module, saved, tokenizer, names=["decode"], portable=True)
    flatbuffer = convert_tflite(saved, ["decode"], "none")
    assert non_builtin_ops(flatbuffer) == []
    histogram = op_histograms(flatbuffer)["decode"]
    assert "REDUCE_PROD" not in histogram and "TRANSPOSE" not in histogram, histogram
    assert histogram["FULLY_CONNECTED"] == 2 * 4 + 1, histogram  # per block QKV, output, 2 feed-forward; logits
    assert histogram["GELU"] == 2, histogram
    assert sum(histogram.values()) <= DECODE_OPS_BOUND, histogram
    # The converted step computes what the Keras step does.
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=flatbuffer).get_signature_runner("decode")
    past = [(_normal((1, 2, 8, 16), seed=2 * i), _normal((1, 2, 8, 16), seed=2 * i + 1)) for i in range(2)]
    feed = {"token_ids": np.array([[5]], np.int32), "positions": np.array([[6]], np.int32)}
    for i, (k, v) in enumerate(past):
        feed[f"past_k_{i}"], feed[f"past_v_{i}"] = k, v
    assert set(feed) == set(runner.get_input_details()), sorted(runner.get_input_details())
    got = runner(**feed)["logits"]
    want, _ = model.call_with_cache(feed["token_ids"], feed["positions"], tuple(past))
    np.testing.assert_allclose(got, np.asarray(want), atol=1e-4)
