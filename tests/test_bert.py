"""BERT: encoder backbone, classifier and masked-LM heads, and masked-LM input masking."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from layer_checks import check_config_round_trip, check_gradients_flow
from tfzoo.models.bert import POSITIONS, BertClassifier, BertEncoder, BertMaskedLM, mask_tokens

VOCAB = 31
MASK_ID = 5
SPECIALS = (0, 1, 2, 3, 4, 5)
TOKENS = np.array([[4, 9, 10, 11, 1, 0, 0], [4, 12, 13, 14, 15, 16, 1]], "int32")


def _encoder(position="learned", **kwargs):
    args = dict(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=24,
        max_sequence_length=12,
        position=position,
    )
    args.update(kwargs)
    return BertEncoder(**args)


def _np(outputs):
    return {k: ops.convert_to_numpy(v) for k, v in outputs.items()}


def test_config_round_trips_with_non_default_arguments():
    encoder = _encoder(
        position="alibi",
        num_segments=3,
        dropout=0.1,
        activation="relu",
        norm_first=True,
        layer_norm_epsilon=1e-6,
        pad_id=2,
    )
    config = encoder.get_config()
    assert BertEncoder.from_config(config).get_config() == config
    check_config_round_trip(encoder)
    classifier = BertClassifier(encoder, num_classes=4, dropout=0.2)
    clone = check_config_round_trip(classifier)
    assert clone.backbone.get_config() == config and clone.num_classes == 4 and clone.dropout == 0.2
    clone = check_config_round_trip(BertMaskedLM(encoder))
    assert clone.backbone.get_config() == config


@pytest.mark.parametrize("position", ["learned", "rotary"])
def test_keras_save_reload_of_task_models(position, tmp_path):
    classifier = BertClassifier(_encoder(position, num_segments=0), num_classes=3)
    expected = ops.convert_to_numpy(classifier(TOKENS))
    classifier.save(tmp_path / "classifier.keras")
    reloaded = keras.saving.load_model(tmp_path / "classifier.keras", safe_mode=True)
    np.testing.assert_array_equal(ops.convert_to_numpy(reloaded(TOKENS)), expected)

    masked_lm = BertMaskedLM(_encoder(position))
    inputs = {"token_ids": TOKENS, "mask_positions": np.array([[1, 3], [2, 6]], "int32")}
    expected = ops.convert_to_numpy(masked_lm(inputs))
    masked_lm.save(tmp_path / "masked_lm.keras")
    reloaded = keras.saving.load_model(tmp_path / "masked_lm.keras", safe_mode=True)
    np.testing.assert_array_equal(ops.convert_to_numpy(reloaded(inputs)), expected)


@pytest.mark.parametrize("position", POSITIONS)
def test_padding_never_changes_real_outputs(position):
    encoder = _encoder(position)
    reference = _np(encoder(TOKENS))
    padded = _np(encoder(np.pad(TOKENS, ((0, 0), (0, 3)))))
    np.testing.assert_allclose(padded["pooled_output"], reference["pooled_output"], atol=1e-5)
    np.testing.assert_allclose(padded["sequence_output"][1, :7], reference["sequence_output"][1], atol=1e-5)
    np.testing.assert_allclose(padded["sequence_output"][0, :5], reference["sequence_output"][0, :5], atol=1e-5)
    # An explicit padding mask hides arbitrary tokens the same way.
    garbage = TOKENS.copy()
    garbage[0, 5:] = [20, 21]
    masked = _np(encoder({"token_ids": garbage, "padding_mask": TOKENS != 0}))
    np.testing.assert_allclose(masked["pooled_output"], reference["pooled_output"], atol=1e-5)


@pytest.mark.parametrize("position", POSITIONS)
def test_attention_is_bidirectional(position):
    encoder = _encoder(position)
    changed = TOKENS.copy()
    changed[1, 5] = 20
    before, after = _np(encoder(TOKENS)), _np(encoder(changed))
    assert not np.allclose(before["sequence_output"][1, 0], after["sequence_output"][1, 0], atol=1e-5)
    np.testing.assert_allclose(before["sequence_output"][0], after["sequence_output"][0], atol=1e-6)


def test_segment_ids_default_to_zero_and_matter():
    encoder = _encoder()
    default = _np(encoder(TOKENS))["pooled_output"]
    zeros = _np(encoder({"token_ids": TOKENS, "segment_ids": np.zeros_like(TOKENS)}))["pooled_output"]
    ones = _np(encoder({"token_ids": TOKENS, "segment_ids": np.ones_like(TOKENS)}))["pooled_output"]
    np.testing.assert_array_equal(default, zeros)
    assert not np.allclose(default, ones, atol=1e-5)


def test_classifier_gradients_reach_every_weight():
    classifier = BertClassifier(_encoder("relative", dropout=0.1), num_classes=3, dropout=0.1)
    check_gradients_flow(
        classifier, lambda: classifier({"token_ids": TOKENS, "segment_ids": TOKENS % 2}, training=True)
    )


def test_mean_pooling_ignores_padding_and_round_trips(tmp_path):
    classifier = BertClassifier(_encoder(dropout=0.1), num_classes=3, dropout=0.2, pooling="mean")
    clone = check_config_round_trip(classifier)
    assert clone.pooling == "mean" and clone.get_config()["pooling"] == "mean"
    logits = ops.convert_to_numpy(classifier(TOKENS))
    # The masked mean of the sequence output over real tokens, through the same head.
    sequence = _np(classifier.backbone(TOKENS))["sequence_output"]
    real = (TOKENS != 0)[:, :, None]
    mean = (sequence * real).sum(axis=1) / real.sum(axis=1)
    np.testing.assert_allclose(logits, ops.convert_to_numpy(classifier.classifier(mean)), atol=1e-5)
    # Padding never counts: more padding, or other ids under an explicit padding mask, give the same logits.
    padded = np.pad(TOKENS, ((0, 0), (0, 4)))
    np.testing.assert_allclose(ops.convert_to_numpy(classifier(padded)), logits, atol=1e-5)
    noisy = np.where(TOKENS == 0, 17, TOKENS)
    masked = ops.convert_to_numpy(classifier({"token_ids": noisy, "padding_mask": TOKENS != 0}))
    np.testing.assert_allclose(masked, logits, atol=1e-5)
    assert not np.allclose(ops.convert_to_numpy(classifier(noisy)), logits, atol=1e-4)  # unmasked, they count
    # The cls classifier on the same backbone reads another vector.
    cls = BertClassifier.from_config({**classifier.get_config(), "pooling": "cls"})
    cls.build()
    cls.set_weights(classifier.get_weights())
    assert not np.allclose(ops.convert_to_numpy(cls(TOKENS)), logits, atol=1e-4)
    classifier.save(tmp_path / "mean.keras")
    reloaded = keras.saving.load_model(tmp_path / "mean.keras", safe_mode=True)
    assert reloaded.pooling == "mean"
    np.testing.assert_array_equal(ops.convert_to_numpy(reloaded(TOKENS)), logits)


def test_mean_pooling_freezes_the_unused_pooler_and_needs_none():
    classifier = BertClassifier(_encoder(), num_classes=2, pooling="mean")
    classifier.build()
    weights = classifier.trainable_weights
    assert not [w.path for w in weights if "pooler" in w.path]
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(classifier({"token_ids": TOKENS, "segment_ids": TOKENS % 2}, training=True)))
    for weight, grad in zip(weights, tape.gradient(loss, [w.value for w in weights])):
        assert grad is not None and np.any(np.asarray(tf.convert_to_tensor(grad)) != 0), weight.path
    without = BertClassifier(_encoder(use_pooler=False), num_classes=2, pooling="mean")
    assert tuple(without(TOKENS).shape) == (2, 2)
    with pytest.raises(ValueError, match="pooling='cls' needs a backbone with a pooler"):
        BertClassifier(_encoder(use_pooler=False), num_classes=2)
    with pytest.raises(ValueError, match="pooling must be one of cls, mean, got 'max'"):
        BertClassifier(_encoder(), num_classes=2, pooling="max")


def test_masked_lm_freezes_the_unused_pooler_and_gradients_reach_every_trainable_weight():
    masked_lm = BertMaskedLM(_encoder())
    masked_lm.build()
    inputs = {"token_ids": TOKENS, "segment_ids": TOKENS % 2, "mask_positions": np.array([[1, 2], [3, 0]])}
    weights = masked_lm.trainable_weights
    assert not [w.path for w in weights if "pooler" in w.path]
    assert len([w for w in masked_lm.weights if "pooler" in w.path]) == 2  # kept (saved), only frozen
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(masked_lm(inputs, training=True)))
    for weight, grad in zip(weights, tape.gradient(loss, [w.value for w in weights])):
        assert grad is not None and np.any(np.asarray(tf.convert_to_tensor(grad)) != 0), weight.path


def test_masked_lm_output_is_tied_to_the_token_embedding():
    encoder = _encoder()
    masked_lm = BertMaskedLM(encoder)
    masked_lm.build()
    # Only the transform, its norm and the output bias are added: no separate output matrix.
    assert len(masked_lm.trainable_weights) == len(encoder.trainable_weights) + 5
    inputs = {"token_ids": TOKENS, "mask_positions": np.array([[1, 2], [3, 0]])}
    before = ops.convert_to_numpy(masked_lm(inputs))
    table = encoder.token_embedding.embeddings
    table.assign(table.numpy() + np.eye(VOCAB, 16, dtype="float32"))
    after = ops.convert_to_numpy(masked_lm(inputs))
    assert not np.allclose(before, after, atol=1e-4)


def test_masked_lm_trains_from_a_tf_data_pipeline():
    rng = np.random.default_rng(0)
    rows = rng.integers(6, VOCAB, size=(32, 10)).astype("int32")
    rows[:, 0] = 4

    def corrupt(index, row):
        out = mask_tokens(
            row,
            tf.stack([tf.constant(7, tf.int64), index]),
            vocabulary_size=VOCAB,
            mask_id=MASK_ID,
            max_predictions=3,
            special_ids=SPECIALS,
        )
        x = {"token_ids": out["token_ids"], "mask_positions": out["mask_positions"]}
        return x, out["mask_ids"], out["mask_weights"]

    dataset = tf.data.Dataset.from_tensor_slices(rows).enumerate().map(corrupt).batch(8)
    masked_lm = BertMaskedLM(_encoder(max_sequence_length=10, num_layers=1))
    masked_lm.build()
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = keras.optimizers.Adam(1e-2)
    variables = [w for w in masked_lm.trainable_weights if "pooler" not in w.path]

    @tf.function
    def train_step(x, labels, weights):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, masked_lm(x, training=True), sample_weight=weights)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    losses = [float(train_step(*batch)) for batch in dataset.repeat(3)]  # one pass = 4 batches
    assert np.isfinite(losses).all()
    assert np.mean(losses[-4:]) < np.mean(losses[:4])  # the same 32 rows, seen three times


def test_mask_tokens_follows_the_80_10_10_rule():
    rows = np.random.default_rng(1).integers(6, VOCAB, size=(400, 50)).astype("int32")
    rows[:, 0] = 4  # <cls>-like special at the start
    rows[:, 40:] = 0  # padding
    out = {
        k: v.numpy()
        for k, v in mask_tokens(
            rows, [3, 4], vocabulary_size=VOCAB, mask_id=MASK_ID, max_predictions=8, special_ids=SPECIALS
        ).items()
    }
    weights = out["mask_weights"].astype(bool)
    assert (weights.sum(1) == 6).all()  # round(0.15 * 39) = 6 of the 39 maskable tokens
    positions = out["mask_positions"][weights]
    assert ((positions >= 1) & (positions < 40)).all()  # never <cls> nor padding
    assert (out["mask_positions"][~weights] == 0).all() and (out["mask_ids"][~weights] == 0).all()
    rows_index = np.nonzero(weights)[0]
    np.testing.assert_array_equal(out["mask_ids"][weights], rows[rows_index, positions])
    new = out["token_ids"][rows_index, positions]
    masked = new == MASK_ID
    kept = new == rows[rows_index, positions]
    assert abs(masked.mean() - 0.8) < 0.03
    assert abs(kept.mean() - (0.1 + 0.1 / (VOCAB - 6))) < 0.03
    replaced = ~masked & ~kept
    assert abs(replaced.mean() - 0.1) < 0.03 and (new[replaced] >= 6).all()
    # Nothing else changes.
    untouched = np.ones_like(rows, bool)
    untouched[rows_index, positions] = False
    np.testing.assert_array_equal(out["token_ids"][untouched], rows[untouched])


def test_mask_tokens_is_deterministic_per_seed_and_handles_short_rows():
    row = np.array([4, 10, 11, 12, 1], "int32")
    args = dict(vocabulary_size=VOCAB, mask_id=MASK_ID, max_predictions=8, special_ids=SPECIALS)
    first = {k: v.numpy() for k, v in mask_tokens(row, [0, 1], **args).items()}
    again = {k: v.numpy() for k, v in mask_tokens(row, [0, 1], **args).items()}
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert first["mask_positions"].shape == (8,)
    assert first["mask_weights"].sum() == 1  # max(1, round(0.15 * 3))
    outcomes = {tuple(mask_tokens(np.arange(6, 26), [0, s], **args)["mask_positions"].numpy()) for s in range(5)}
    assert len(outcomes) > 1
    only_specials = mask_tokens(np.array([4, 1, 0, 0]), [0, 1], **args)
    assert only_specials["mask_weights"].numpy().sum() == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(mask_rate=0.0), "mask_rate"),
        (dict(max_predictions=0), "max_predictions"),
        (dict(mask_id=VOCAB), "mask_id"),
        (dict(special_ids=range(VOCAB)), "every id is special"),
    ],
)
def test_mask_tokens_bad_arguments(kwargs, message):
    args = dict(vocabulary_size=VOCAB, mask_id=MASK_ID, max_predictions=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        mask_tokens(TOKENS, [0, 0], **args)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(hidden_dim=15), "divisible"),
        (dict(position="absolute"), "unknown position"),
        (dict(num_segments=-1), "num_segments"),
    ],
)
def test_bad_encoder_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _encoder(**kwargs)


def test_bad_task_arguments_and_too_long_input():
    with pytest.raises(ValueError, match="num_classes"):
        BertClassifier(_encoder(), num_classes=1)
    with pytest.raises(ValueError, match="backbone must be a BertEncoder"):
        BertMaskedLM(keras.layers.Dense(3))
    with pytest.raises(ValueError, match="input length 13 exceeds the model's max_sequence_length 12"):
        _encoder()(np.ones((1, 13), "int32"))


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_classifier_forward_is_portable(pooling):
    from export_checks import check_portable

    classifier = BertClassifier(_encoder("relative", num_layers=1), num_classes=3, pooling=pooling)
    check_portable(lambda token_ids: {"logits": classifier(token_ids)}, {"token_ids": TOKENS}, atol=1e-5)
