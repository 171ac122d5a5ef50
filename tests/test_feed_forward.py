"""Tests for tfzoo.layers.feed_forward.FeedForward."""

import math

import keras
import numpy as np
import pytest

from export_checks import check_portable
from layer_checks import check_config_round_trip, check_gradients_flow, check_keras_save_reload
from tfzoo.layers.feed_forward import FeedForward


def _inputs(shape=(2, 5, 12), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _weights(dense):
    kernel = np.asarray(dense.kernel, np.float64)
    bias = np.asarray(dense.bias, np.float64) if dense.use_bias else 0.0
    return kernel, bias


def _silu(x):
    return x / (1.0 + np.exp(-x))


def test_config_round_trip_non_default():
    layer = FeedForward(
        intermediate_dim=48,
        activation="swiglu",
        dropout=0.25,
        use_bias=False,
        kernel_initializer="he_normal",
        name="ffn",
    )
    clone = check_config_round_trip(layer)
    assert (clone.intermediate_dim, clone.activation, clone.dropout, clone.use_bias) == (48, "swiglu", 0.25, False)
    assert isinstance(clone.kernel_initializer, keras.initializers.HeNormal)


@pytest.mark.parametrize("activation", ["relu", "swiglu", "geglu_tanh"])
def test_keras_save_reload(activation, tmp_path):
    layer = FeedForward(intermediate_dim=24, activation=activation, dropout=0.5, use_bias=False)
    check_keras_save_reload(layer, [_inputs()], tmp_path)


@pytest.mark.parametrize("activation", ["gelu", "relu", "swiglu", "geglu_tanh"])
def test_gradients_flow(activation):
    layer = FeedForward(intermediate_dim=16, activation=activation)
    x = _inputs()
    check_gradients_flow(layer, lambda: layer(x, training=True))
    expected = 6 if activation in ("swiglu", "geglu_tanh") else 4  # kernels and biases of every projection
    assert len(layer.trainable_weights) == expected


def _randomize_biases(layer, seed=1):
    """Biases start at zero; random ones make the reference check cover them."""
    rng = np.random.default_rng(seed)
    for dense in (layer.intermediate_dense, getattr(layer, "gate_dense", None), layer.output_dense):
        if dense is not None and dense.use_bias:
            dense.bias.assign(rng.normal(size=dense.bias.shape))


@pytest.mark.parametrize("use_bias", [False, True])
def test_swiglu_matches_numpy(use_bias):
    layer = FeedForward(intermediate_dim=20, activation="swiglu", use_bias=use_bias, kernel_initializer="random_normal")
    x = _inputs()
    layer.build(x.shape)
    _randomize_biases(layer)
    out = np.asarray(layer(x))
    w1, b1 = _weights(layer.gate_dense)
    w2, b2 = _weights(layer.intermediate_dense)
    w3, b3 = _weights(layer.output_dense)
    x64 = x.astype(np.float64)
    expected = (_silu(x64 @ w1 + b1) * (x64 @ w2 + b2)) @ w3 + b3  # silu(x W1) * (x W2) W3
    assert out.shape == x.shape
    np.testing.assert_allclose(out, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("use_bias", [False, True])
def test_geglu_tanh_matches_numpy(use_bias):
    """T5 v1.1's gated GELU: gelu_tanh(x W_gate) * (x W1), then W2 (transformers' `T5DenseGatedActDense`)."""
    layer = FeedForward(
        intermediate_dim=20, activation="geglu_tanh", use_bias=use_bias, kernel_initializer="random_normal"
    )
    x = _inputs() * 3.0
    layer.build(x.shape)
    _randomize_biases(layer)
    out = np.asarray(layer(x))
    wg, bg = _weights(layer.gate_dense)
    w1, b1 = _weights(layer.intermediate_dense)
    w2, b2 = _weights(layer.output_dense)
    x64 = x.astype(np.float64)
    g = x64 @ wg + bg
    gelu = 0.5 * g * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (g + 0.044715 * g**3)))
    np.testing.assert_allclose(out, (gelu * (x64 @ w1 + b1)) @ w2 + b2, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("activation", ["gelu", "gelu_tanh", "relu"])
def test_two_layer_mlp_matches_numpy(activation):
    layer = FeedForward(intermediate_dim=20, activation=activation, kernel_initializer="random_normal")
    x = _inputs() * 3.0
    layer.build(x.shape)
    _randomize_biases(layer)
    out = np.asarray(layer(x))
    w1, b1 = _weights(layer.intermediate_dense)
    w2, b2 = _weights(layer.output_dense)
    h = x.astype(np.float64) @ w1 + b1
    if activation == "gelu":  # exact (erf) GELU
        h = 0.5 * h * (1.0 + np.vectorize(math.erf)(h / math.sqrt(2.0)))
    elif activation == "gelu_tanh":  # GPT-2's tanh approximation
        h = 0.5 * h * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (h + 0.044715 * h**3)))
    else:
        h = np.maximum(h, 0.0)
    np.testing.assert_allclose(out, h @ w2 + b2, atol=1e-5, rtol=1e-5)


def test_dropout_applies_to_hidden_activations_only_in_training():
    # Identity projections around a ReLU of positive inputs: the output *is* the hidden layer.
    layer = FeedForward(intermediate_dim=12, activation="relu", dropout=0.5)
    x = np.abs(_inputs((4, 8, 12))) + 0.1
    layer.build(x.shape)
    for dense in (layer.intermediate_dense, layer.output_dense):
        dense.kernel.assign(np.eye(12))
    inference = np.asarray(layer(x, training=False))
    np.testing.assert_allclose(inference, x, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(layer(x)), inference)
    training = np.asarray(layer(x, training=True))
    dropped = training == 0.0
    assert 0.3 < dropped.mean() < 0.7
    np.testing.assert_allclose(training[~dropped], 2.0 * x[~dropped], rtol=1e-5)
    # A non-zero output bias survives: dropout acts before the output projection.
    layer.output_dense.bias.assign(np.full((12,), 3.0))
    assert np.all(np.asarray(layer(x, training=True)) >= 3.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"intermediate_dim": 8, "activation": "tanh"}, "unknown activation 'tanh'"),
        ({"intermediate_dim": 0}, "intermediate_dim must be a positive int"),
        ({"intermediate_dim": 8.0}, "intermediate_dim must be a positive int"),
        ({"intermediate_dim": 8, "dropout": 1.0}, "dropout must be in"),
        ({"intermediate_dim": 8, "dropout": -0.1}, "dropout must be in"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FeedForward(**kwargs)


@pytest.mark.parametrize("activation", ["gelu", "gelu_tanh", "relu", "swiglu", "geglu_tanh"])
def test_portable(activation):
    layer = FeedForward(intermediate_dim=32, activation=activation, dropout=0.1)
    check_portable(lambda x: layer(x), {"x": _inputs((2, 5, 16)) * 2.0})
