"""Masked, label-smoothed token cross-entropy and the unsmoothed metric vs numpy references."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfzoo.training.losses import MaskedSparseCrossEntropy, MaskedTokenCrossEntropy


def _log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _reference(labels, logits, pad_id, eps):
    """Mean over non-pad tokens of -sum_k q_k log p_k, q = (1 - eps) onehot + eps / V."""
    log_p = _log_softmax(logits.astype(np.float64))
    vocab = logits.shape[-1]
    q = (1 - eps) * np.eye(vocab)[labels] + eps / vocab
    per_token = -(q * log_p).sum(-1)
    mask = labels != pad_id
    return per_token[mask].sum() / max(mask.sum(), 1)


def _batch(seed=0, b=3, t=5, v=7, pad_id=0, num_pad=4):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(b, t, v)).astype("float32") * 3
    labels = rng.integers(1, v, size=(b, t)).astype("int32")
    labels.reshape(-1)[rng.choice(b * t, num_pad, replace=False)] = pad_id
    return labels, logits


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5])
@pytest.mark.parametrize("pad_id", [0, 3])
def test_loss_matches_numpy(eps, pad_id):
    labels, logits = _batch(pad_id=pad_id)
    loss = MaskedSparseCrossEntropy(pad_id=pad_id, label_smoothing=eps)
    expected = _reference(labels, logits, pad_id, eps)
    assert float(loss(labels, logits)) == pytest.approx(expected, rel=1e-5)


def test_padding_changes_nothing_but_the_count():
    labels, logits = _batch(num_pad=0)
    loss = MaskedSparseCrossEntropy(label_smoothing=0.1)
    padded_labels = np.concatenate([labels, np.zeros_like(labels)], axis=1)  # (B, 2T): half padding
    junk = np.random.default_rng(1).normal(size=logits.shape).astype("float32") * 50
    padded_logits = np.concatenate([logits, junk], axis=1)
    assert float(loss(padded_labels, padded_logits)) == pytest.approx(float(loss(labels, logits)), rel=1e-6)


def test_smoothing_agrees_with_keras_categorical_crossentropy():
    labels, logits = _batch(num_pad=0)
    ours = MaskedSparseCrossEntropy(pad_id=-1, label_smoothing=0.2)
    keras_loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2)
    expected = keras_loss(np.eye(logits.shape[-1])[labels], logits)
    assert float(ours(labels, logits)) == pytest.approx(float(expected), rel=1e-5)


def test_all_padding_gives_zero_not_nan():
    _, logits = _batch()
    labels = np.zeros(logits.shape[:2], "int32")
    assert float(MaskedSparseCrossEntropy(label_smoothing=0.1)(labels, logits)) == 0.0


def test_gradient_ignores_padded_positions():
    labels, logits = _batch()
    logits = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = MaskedSparseCrossEntropy(label_smoothing=0.1)(labels, logits)
    gradient = tape.gradient(value, logits).numpy()
    assert np.all(gradient[labels == 0] == 0)
    assert np.all(np.abs(gradient[labels != 0]).sum(-1) > 0)


def test_metric_is_unsmoothed_exact_token_mean_over_batches():
    metric = MaskedTokenCrossEntropy()
    batches = [_batch(seed=s, num_pad=n) for s, n in ((0, 0), (1, 9), (2, 3))]
    for labels, logits in batches:
        metric.update_state(labels, logits)
    all_labels = np.concatenate([b[0].reshape(-1) for b in batches])
    all_logits = np.concatenate([b[1].reshape(-1, 7) for b in batches])
    expected = _reference(all_labels, all_logits, pad_id=0, eps=0.0)
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_serialization_round_trip():
    loss = MaskedSparseCrossEntropy(pad_id=5, label_smoothing=0.25, name="lm_loss")
    revived = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(revived, MaskedSparseCrossEntropy)
    assert (revived.pad_id, revived.label_smoothing, revived.name) == (5, 0.25, "lm_loss")
    metric = MaskedTokenCrossEntropy(pad_id=4)
    revived_metric = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert isinstance(revived_metric, MaskedTokenCrossEntropy) and revived_metric.pad_id == 4


def test_rejects_bad_smoothing():
    with pytest.raises(ValueError, match="label_smoothing"):
        MaskedSparseCrossEntropy(label_smoothing=1.0)


def test_fit_reports_smoothed_loss_and_plain_metric():
    labels, _ = _batch(num_pad=0)
    inputs = keras.Input((5,), dtype="int32")
    model = keras.Model(inputs, keras.layers.Embedding(7, 7)(inputs))
    model.compile(
        optimizer="sgd",
        loss=MaskedSparseCrossEntropy(label_smoothing=0.3),
        metrics=[MaskedTokenCrossEntropy()],
        jit_compile=True,
    )
    logs = model.evaluate(labels, labels, return_dict=True, verbose=0)
    logits = keras.ops.convert_to_numpy(model(labels))
    assert logs["cross_entropy"] == pytest.approx(_reference(labels, logits, 0, 0.0), rel=1e-5)
    assert logs["loss"] == pytest.approx(_reference(labels, logits, 0, 0.3), rel=1e-5)
