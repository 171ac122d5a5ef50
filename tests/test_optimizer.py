"""make_optimizer: decay only on kernels, betas, clipping, schedule."""

import keras
import ml_collections
import numpy as np
import pytest

from tfzoo.models.registry import build_model
from tfzoo.training.optimizer import make_optimizer, no_decay_variables
from tfzoo.training.schedule import WarmupCosineDecay


def _config(**overrides):
    config = ml_collections.ConfigDict(
        dict(
            learning_rate=0.1,
            min_learning_rate=0.1,
            warmup_steps=0,
            train_steps=10,
            weight_decay=0.5,
            beta1=0.8,
            beta2=0.95,
            clip_norm=1.0,
        )
    )
    config.update(overrides)
    return config


def _gpt(position, tie_embeddings):
    config = ml_collections.ConfigDict(
        dict(
            model="gpt",
            num_layers=1,
            num_heads=2,
            hidden_dim=8,
            intermediate_dim=16,
            seq_len=8,
            position=position,
            dropout=0.0,
            activation="gelu",
            norm_first=True,
            tie_embeddings=tie_embeddings,
        )
    )
    return build_model(config, vocabulary_size=11)


@pytest.mark.parametrize("position, tie_embeddings", [("learned", True), ("relative", False)])
def test_decay_alone_shrinks_kernels_and_spares_the_rest(position, tie_embeddings):
    model = _gpt(position, tie_embeddings)
    optimizer = make_optimizer(_config(), model)
    variables = model.trainable_variables
    before = [keras.ops.convert_to_numpy(v).copy() for v in variables]
    zeros = [np.zeros(v.shape, "float32") for v in variables]
    optimizer.apply(zeros, variables)  # Adam's own update is 0 for a zero gradient.
    spared = {id(v) for v in no_decay_variables(model)}
    kinds = {"kernel": 0, "spared": 0}
    for variable, old in zip(variables, before):
        new = keras.ops.convert_to_numpy(variable)
        if id(variable) in spared:
            np.testing.assert_array_equal(new, old, err_msg=variable.path)
            kinds["spared"] += 1
        else:
            assert variable.name == "kernel", variable.path
            np.testing.assert_allclose(new, old * (1 - 0.1 * 0.5), rtol=1e-6, err_msg=variable.path)
            kinds["kernel"] += 1
    assert kinds["kernel"] >= 5 and kinds["spared"] >= 5, kinds
    spared_names = {v.path.split("/")[-1] for v in no_decay_variables(model)}
    assert {"embeddings", "bias", "gamma", "beta"} <= spared_names
    if position == "relative":
        assert "relative_attention_bias" in spared_names


def test_no_decay_catches_every_bias_and_table():
    model = keras.Sequential(
        [
            keras.Input((3,), dtype="int32"),
            keras.layers.Embedding(10, 4, name="embed"),
            keras.layers.LayerNormalization(name="norm"),
            keras.layers.EinsumDense("btc,chd->bthd", output_shape=(None, 2, 2), bias_axes="hd", name="heads"),
            keras.layers.Reshape((3, 4)),
            keras.layers.Dense(5, name="out"),
        ]
    )
    spared = sorted(v.path.split("/", 1)[1] for v in no_decay_variables(model))
    assert spared == ["embed/embeddings", "heads/bias", "norm/beta", "norm/gamma", "out/bias"]


def test_hyperparameters():
    model = _gpt("learned", True)
    optimizer = make_optimizer(_config(learning_rate=2e-3, min_learning_rate=2e-4, warmup_steps=3), model)
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert optimizer.beta_1 == 0.8 and optimizer.beta_2 == 0.95
    assert optimizer.weight_decay == 0.5
    assert optimizer.global_clipnorm == 1.0 and optimizer.clipnorm is None
    schedule = optimizer._learning_rate
    assert isinstance(schedule, WarmupCosineDecay)
    assert schedule.get_config() == dict(
        peak_learning_rate=2e-3, warmup_steps=3, decay_steps=10, min_learning_rate=2e-4
    )
    assert make_optimizer(_config(clip_norm=0.0), model).global_clipnorm is None


def test_global_norm_clipping():
    variable = keras.Variable(np.zeros((4,), "float32"), name="w")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    optimizer = make_optimizer(_config(weight_decay=0.0, clip_norm=1.0, beta1=0.5), model)
    optimizer.build([variable])
    optimizer.apply([np.array([3.0, 4.0, 0.0, 0.0], "float32")], [variable])  # norm 5 -> 1
    (momentum,) = [v for v in optimizer.variables if v.path.endswith("momentum")]
    # m = (1 - beta1) * clipped gradient
    np.testing.assert_allclose(keras.ops.convert_to_numpy(momentum), [0.3, 0.4, 0.0, 0.0], rtol=1e-6)


def test_decay_embeddings_decays_the_tables_too():
    model = _gpt("learned", True)
    spared = {v.path.split("/")[-1] for v in no_decay_variables(model, decay_embeddings=True)}
    assert "embeddings" not in spared and {"bias", "gamma", "beta"} <= spared
    optimizer = make_optimizer(_config(decay_embeddings=True), model)
    table = next(v for v in model.trainable_variables if v.path.endswith("token_embedding/embeddings"))
    before = keras.ops.convert_to_numpy(table).copy()
    optimizer.apply([np.zeros(v.shape, "float32") for v in model.trainable_variables], model.trainable_variables)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(table), before * (1 - 0.1 * 0.5), rtol=1e-6)


def test_adam_epsilon_is_the_configured_one():
    model = _gpt("learned", True)
    assert make_optimizer(_config(), model).epsilon == pytest.approx(1e-7)  # Keras's default
    assert make_optimizer(_config(adam_epsilon=1e-8), model).epsilon == pytest.approx(1e-8)
