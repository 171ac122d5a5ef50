"""`load_initial_weights`: a run's fresh model starts from another workdir's weights, shapes checked."""

from __future__ import annotations

import os

import keras
import ml_collections
import numpy as np
import pytest

from tfzoo.models.gpt import GPT
from tfzoo.models.registry import build_model
from tfzoo.training.init_from import InitFromError, load_initial_weights

ARCH = dict(
    num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=24, activation="gelu_tanh"
)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A workdir whose model.keras is a random GPT (what `tfzoo.convert` writes)."""
    keras.utils.set_random_seed(7)
    model = GPT(vocabulary_size=40, **ARCH)
    model.build((None, None))
    for variable in model.weights:
        variable.assign(np.random.default_rng(len(variable.path)).normal(0, 0.3, variable.shape).astype("float32"))
    workdir = tmp_path_factory.mktemp("source")
    model.save(str(workdir / "model.keras"))
    return str(workdir), model


def _run_config(**changes):
    fields = dict(model="gpt", seq_len=16, position="learned", dropout=0.0, tie_embeddings=True, **ARCH)
    fields.update(changes)
    return ml_collections.ConfigDict(fields)


def test_fresh_model_gets_the_source_weights(source):
    workdir, reference = source
    model = build_model(_run_config(), vocabulary_size=40)
    ids = np.arange(12)[None] % 40
    assert not np.allclose(np.asarray(model(ids)), np.asarray(reference(ids)))
    load_initial_weights(model, workdir)
    np.testing.assert_array_equal(np.asarray(model(ids)), np.asarray(reference(ids)))
    for mine, theirs in zip(model.weights, reference.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


@pytest.mark.parametrize(
    "changes, vocabulary_size, message",
    [
        (dict(num_layers=1), 40, r"num_layers=2 but the run config gives 1"),
        (dict(max_sequence_length=None), 40, r"max_sequence_length=24 but the run config gives 16 \(set max_seq"),
        (dict(activation="gelu"), 40, r"activation='gelu_tanh' but the run config gives 'gelu'"),
        (dict(), 41, r"vocabulary_size=40 but the run config gives 41"),
        (dict(tie_embeddings=False), 40, r"tie_embeddings=True but the run config gives False"),
    ],
)
def test_architecture_mismatch_names_the_field(source, changes, vocabulary_size, message):
    model = build_model(_run_config(**changes), vocabulary_size=vocabulary_size)
    with pytest.raises(InitFromError, match=r"init_from: .*model.keras has " + message):
        load_initial_weights(model, source[0])


def test_missing_or_bad_source(tmp_path):
    model = build_model(_run_config(), vocabulary_size=40)
    with pytest.raises(InitFromError, match=r"init_from: .*nowhere/model.keras not found"):
        load_initial_weights(model, str(tmp_path / "nowhere"))
    (tmp_path / "model.keras").write_bytes(b"not a zip")
    with pytest.raises(InitFromError, match=r"model.keras: not a Keras model archive"):
        load_initial_weights(model, str(tmp_path))


def test_shape_mismatch_inside_a_weight_is_caught(source, tmp_path, monkeypatch):
    # Same config fields, different variable shapes (a hand-edited archive): the per-weight check names it.
    from tfzoo.training import init_from

    monkeypatch.setattr(init_from, "ARCHITECTURE_FIELDS", ())
    model = build_model(_run_config(hidden_dim=8, num_heads=2), vocabulary_size=40)
    with pytest.raises(
        InitFromError,
        match=r"weight token_embedding/embeddings has shape \(40, 16\), the model "
        r"expects \(40, 8\)",
    ):
        load_initial_weights(model, source[0])
    assert os.path.isfile(os.path.join(source[0], "model.keras"))


BERT = dict(num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=24)


def _bert_source(tmp_path, **options):
    """A workdir whose model.keras is a random BertEncoder (what `tfzoo.convert bert` writes)."""
    from tfzoo.models.bert import BertEncoder

    encoder = BertEncoder(vocabulary_size=40, norm_first=False, layer_norm_epsilon=1e-12, **BERT, **options)
    encoder.build()
    for variable in encoder.weights:
        variable.assign(np.random.default_rng(len(variable.path)).normal(0, 0.3, variable.shape).astype("float32"))
    encoder.save(str(tmp_path / "model.keras"))
    return encoder


def _bert_run_config(model, **changes):
    fields = dict(model=model, seq_len=16, position="learned", dropout=0.0, norm_first=False, **BERT)
    fields.update({"layer_norm_epsilon": 1e-12, **changes})
    return ml_collections.ConfigDict(fields)


@pytest.mark.parametrize("use_pooler", [True, False])
def test_task_model_gets_the_encoder_and_keeps_a_fresh_head(tmp_path, use_pooler):
    encoder = _bert_source(tmp_path, use_pooler=use_pooler)
    model = build_model(_bert_run_config("bert_classifier"), vocabulary_size=40, num_classes=3)
    head = model.classifier.kernel.numpy().copy()
    pooler = model.backbone.pooler.kernel.numpy().copy()
    load_initial_weights(model, str(tmp_path))
    backbone = model.backbone
    np.testing.assert_array_equal(
        backbone.token_embedding.embeddings.numpy(), encoder.token_embedding.embeddings.numpy()
    )
    for mine, theirs in zip(backbone.blocks, encoder.blocks, strict=True):
        np.testing.assert_array_equal(
            mine.self_attention.query_dense.kernel.numpy(), theirs.self_attention.query_dense.kernel.numpy()
        )
        np.testing.assert_array_equal(mine.feed_forward_norm.gamma.numpy(), theirs.feed_forward_norm.gamma.numpy())
    if use_pooler:
        np.testing.assert_array_equal(backbone.pooler.kernel.numpy(), encoder.pooler.kernel.numpy())
    np.testing.assert_array_equal(model.classifier.kernel.numpy(), head)  # the task head stays fresh
    if not use_pooler:  # the source has none: the run's own, fresh
        np.testing.assert_array_equal(model.backbone.pooler.kernel.numpy(), pooler)
    ids = np.arange(1, 9)[None]
    outputs = model.backbone(ids)["sequence_output"]
    np.testing.assert_allclose(np.asarray(outputs), np.asarray(encoder(ids)["sequence_output"]), atol=1e-6)


def test_task_model_from_an_encoder_of_another_architecture_names_the_field(tmp_path):
    _bert_source(tmp_path)
    model = build_model(_bert_run_config("bert_mlm", layer_norm_epsilon=1e-5), vocabulary_size=40)
    with pytest.raises(InitFromError, match=r"model.keras has layer_norm_epsilon=1e-12 but the run config gives 1e-05"):
        load_initial_weights(model, str(tmp_path))
    model = build_model(_bert_run_config("bert_mlm", num_segments=1), vocabulary_size=40)
    with pytest.raises(InitFromError, match=r"num_segments=2 but the run config gives 1"):
        load_initial_weights(model, str(tmp_path))
