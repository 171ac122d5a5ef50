"""Token cross-entropy that ignores padding: the training loss and the reported metric.

`MaskedSparseCrossEntropy` is what the optimizer minimizes (optionally label
smoothed); `MaskedTokenCrossEntropy` is what `metrics.jsonl` reports: mean
nats per non-pad token, never smoothed, so runs with different smoothing
compare directly.
"""

from __future__ import annotations

import keras
from keras import ops


def _token_losses(labels, logits, label_smoothing: float):
    """Per-token cross-entropy (B, T) against `(1 - eps) * onehot + eps / V`."""
    logits = ops.cast(logits, "float32")  # (B, T, V)
    # A negative label (a pad_id of -1: prompt tokens of the sft task) would make the op NaN; the callers mask it.
    nll = ops.sparse_categorical_crossentropy(ops.maximum(labels, 0), logits, from_logits=True)  # (B, T)
    if not label_smoothing:
        return nll
    uniform = -ops.mean(ops.log_softmax(logits, axis=-1), axis=-1)  # (B, T)
    return (1.0 - label_smoothing) * nll + label_smoothing * uniform


@keras.saving.register_keras_serializable(package="tfzoo")
class MaskedSparseCrossEntropy(keras.losses.Loss):
    """Label-smoothed sparse cross-entropy from logits, averaged over non-pad labels.

    For label `y` and smoothing `eps` over `V` classes the per-token loss is
    `-(1 - eps) * log p_y - eps / V * sum_k log p_k` (the smoothed target puts
    `eps / V` on every class, as in `keras.losses.CategoricalCrossentropy`).
    Tokens whose label is `pad_id` are left out; the result is the mean over
    the others (0 when every label is padding).

    Args:
        pad_id: int. Label id that marks padding. Defaults to 0.
        label_smoothing: float. Smoothing `eps` in [0, 1). Defaults to 0.0.
        name: str. Name of the loss. Defaults to "masked_sparse_cross_entropy".

    Example:
    >>> import numpy as np
    >>> loss = MaskedSparseCrossEntropy(pad_id=0)
    >>> logits = np.zeros((1, 3, 4), "float32")
    >>> round(float(loss(np.array([[2, 3, 0]]), logits)), 4)  # log(4), pad ignored
    1.3863
    """

    def __init__(
        self,
        pad_id: int = 0,
        label_smoothing: float = 0.0,
        name: str = "masked_sparse_cross_entropy",
        reduction: str = "sum_over_batch_size",
        **kwargs,
    ):
        if reduction != "sum_over_batch_size":
            raise ValueError(f"reduction must be 'sum_over_batch_size', got {reduction!r}")
        super().__init__(name=name, reduction=reduction, **kwargs)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.pad_id = pad_id
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        labels = ops.cast(y_true, "int32")  # (B, T)
        losses = _token_losses(labels, y_pred, self.label_smoothing)  # (B, T)
        mask = ops.cast(ops.not_equal(labels, self.pad_id), losses.dtype)
        # Weighting real tokens by (all tokens / real tokens) makes Keras's
        # "sum_over_batch_size" reduction the mean over real tokens, and keeps
        # its per-replica scaling under a tf.distribute strategy.
        weight = ops.cast(ops.size(mask), losses.dtype) / ops.maximum(ops.sum(mask), 1.0)
        return losses * mask * weight  # (B, T)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(pad_id=self.pad_id, label_smoothing=self.label_smoothing)
        return config


@keras.saving.register_keras_serializable(package="tfzoo")
class MaskedTokenCrossEntropy(keras.metrics.Metric):
    """Mean cross-entropy in nats per non-pad token, accumulated over batches (no smoothing).

    Keeps the summed nats and the token count, so the result is the exact
    per-token mean over everything seen since the last reset, however the
    padding is spread over batches.

    Args:
        pad_id: int. Label id that marks padding. Defaults to 0.
        name: str. Name of the metric. Defaults to "cross_entropy".

    Example:
    >>> import numpy as np
    >>> metric = MaskedTokenCrossEntropy()
    >>> metric.update_state(np.array([[2, 0]]), np.zeros((1, 2, 4), "float32"))
    >>> round(float(metric.result()), 4)
    1.3863
    """

    def __init__(self, pad_id: int = 0, name: str = "cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pad_id = pad_id
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.cast(y_true, "int32")  # (B, T)
        losses = _token_losses(labels, y_pred, 0.0)  # (B, T)
        mask = ops.cast(ops.not_equal(labels, self.pad_id), "float32")
        if sample_weight is not None:
            mask = mask * ops.cast(sample_weight, "float32")
        self.total.assign_add(ops.sum(losses * mask))
        self.count.assign_add(ops.sum(mask))

    def result(self):
        return self.total / ops.maximum(self.count, 1.0)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(pad_id=self.pad_id)
        return config


def sequence_log_probs(labels, logits):
    """Summed log-probability (N,) of each row's labels; labels < 0 are left out (prompt, padding)."""
    labels = ops.cast(labels, "int32")  # (N, T)
    mask = ops.cast(ops.greater_equal(labels, 0), "float32")
    nll = ops.sparse_categorical_crossentropy(ops.maximum(labels, 0), ops.cast(logits, "float32"), from_logits=True)
    return -ops.sum(nll * mask, axis=-1)  # (N,)


def dpo_losses(policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta: float):
    """DPO's per-pair loss `-log sigmoid(beta * ((pc - rc) - (pr - rr)))` (Rafailov et al., 2023, eq. 7).

    Where the policy equals the reference every pair's loss is `log 2`.

    Example:
    >>> import numpy as np
    >>> round(float(dpo_losses(np.float32(-3.0), np.float32(-5.0), np.float32(-3.0), np.float32(-5.0), 0.1)), 4)
    0.6931
    """
    margin = beta * ((policy_chosen - reference_chosen) - (policy_rejected - reference_rejected))
    return -ops.log_sigmoid(margin)


def split_dpo_targets(y_true):
    """`(labels (2B, T) int32, reference log-probs (B, 2))` of the packed DPO targets (`pack_dpo_targets`)."""
    labels = ops.cast(y_true[:, :-1], "int32")
    return labels, ops.reshape(y_true[:, -1], (-1, 2))


def pack_dpo_targets(labels, reference_log_probs):
    """The DPO batch's `y`: float32 (2B, T + 1), the labels then each row's reference log-probability.

    Rows alternate chosen, rejected (pair `i` is rows `2i`, `2i + 1`), so a batch split over
    replicas in even shares keeps its pairs together. Keras gives a loss one `y_true` tensor per
    output; the labels (ids < 2**24) are exact in float32.
    """
    return ops.concatenate(
        [ops.cast(labels, "float32"), ops.cast(ops.reshape(reference_log_probs, (-1, 1)), "float32")], axis=-1
    )


def chosen_nll(labels, logits):
    """Mean negative log-likelihood per token (B,) of each pair's chosen reply (rows `0, 2, 4, ...`).

    The NLL term of DPO + NLL (RPO: Pang et al., 2024, "Iterative Reasoning Preference Optimization",
    eq. 2): `-log pi(chosen | prompt) / |chosen|`, the chosen reply's tokens (labels >= 0) only.

    Example:
    >>> import numpy as np
    >>> logits = np.log(np.float32([[[0.5, 0.5], [0.5, 0.5]], [[0.9, 0.1], [0.9, 0.1]]]))  # (2, 2, 2)
    >>> round(float(chosen_nll(np.array([[0, 1], [0, -1]]), logits)[0]), 4)  # log 2, chosen row only
    0.6931
    """
    labels = ops.cast(labels, "int32")  # (2B, T)
    counts = ops.reshape(ops.sum(ops.cast(ops.greater_equal(labels, 0), "float32"), axis=-1), (-1, 2))  # (B, 2)
    policy = ops.reshape(sequence_log_probs(labels, logits), (-1, 2))  # (B, 2)
    return -policy[:, 0] / ops.maximum(counts[:, 0], 1.0)


@keras.saving.register_keras_serializable(package="tfzoo")
class DpoLoss(keras.losses.Loss):
    """Direct preference optimisation loss on packed targets (see `pack_dpo_targets`), mean over pairs.

    The model's logits of the 2B rows give each row's summed reply log-probability under the
    policy; the frozen reference's are in the targets (computed once, before training). With
    `nll_weight` > 0 the loss is DPO + NLL, the form of RPO (Pang et al., 2024): the DPO loss plus
    `nll_weight` times the chosen reply's mean per-token negative log-likelihood (`chosen_nll`),
    which keeps the chosen replies likely while the margin grows (pure DPO can lower both).

    Args:
        beta: float. Strength of the pull towards the reference. Defaults to 0.1.
        nll_weight: float >= 0. Weight of the chosen reply's NLL (RPO's alpha; 0 = DPO alone).
            Defaults to 0.0.
        name: str. Defaults to "dpo_loss".

    Example:
    >>> import numpy as np
    >>> y = pack_dpo_targets(np.array([[1, -1], [2, -1]]), np.log(np.float32([0.5, 0.5])))
    >>> round(float(DpoLoss(beta=0.1)(y, np.zeros((2, 2, 3), "float32"))), 4)  # equal margins: log 2
    0.6931
    >>> round(float(DpoLoss(beta=0.1, nll_weight=1.0)(y, np.zeros((2, 2, 3), "float32"))), 4)  # + log 3
    1.7918
    """

    def __init__(
        self,
        beta: float = 0.1,
        nll_weight: float = 0.0,
        name: str = "dpo_loss",
        reduction: str = "sum_over_batch_size",
        **kwargs,
    ):
        super().__init__(name=name, reduction=reduction, **kwargs)
        if not beta > 0:
            raise ValueError(f"beta must be > 0, got {beta}")
        if not nll_weight >= 0:
            raise ValueError(f"nll_weight must be >= 0, got {nll_weight}")
        self.beta = beta
        self.nll_weight = nll_weight

    def call(self, y_true, y_pred):
        labels, reference = split_dpo_targets(y_true)  # (2B, T), (B, 2)
        policy = ops.reshape(sequence_log_probs(labels, y_pred), (-1, 2))  # (B, 2)
        loss = dpo_losses(policy[:, 0], policy[:, 1], reference[:, 0], reference[:, 1], self.beta)  # (B,)
        if self.nll_weight:
            loss = loss + self.nll_weight * chosen_nll(labels, y_pred)
        return loss

    def get_config(self) -> dict:
        return {**super().get_config(), "beta": self.beta, "nll_weight": self.nll_weight}


@keras.saving.register_keras_serializable(package="tfzoo")
class DpoLossMetric(keras.metrics.Mean):
    """The mean DPO loss over the pairs seen, reported as the run's loss.

    Named `cross_entropy` by default: the DPO loss is the binary cross-entropy of the
    Bradley-Terry preference model, and `metrics.jsonl`'s `train_loss`/`val_loss` read that name.

    Example:
    >>> import numpy as np
    >>> metric = DpoLossMetric(beta=0.1)
    >>> y = pack_dpo_targets(np.array([[1, -1], [2, -1]]), np.log(np.float32([0.5, 0.5])))
    >>> metric.update_state(y, np.zeros((2, 2, 3), "float32"))
    >>> round(float(metric.result()), 4)
    0.6931
    """

    def __init__(self, beta: float = 0.1, name: str = "cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.beta = beta
        self._loss = DpoLoss(beta=beta)

    def update_state(self, y_true, y_pred, sample_weight=None):
        super().update_state(self._loss.call(y_true, y_pred), sample_weight=sample_weight)

    def get_config(self) -> dict:
        return {**super().get_config(), "beta": self.beta}


# ---- speech synthesis (the tts task): L1 between log-mel frames, padding left out ----

MEL_PAD = -100.0  # target value of the frames past an utterance (normalised log-mel never comes near it)


def _frame_l1(y_true, y_pred):
    """Per-frame mean absolute error (B, T) and the real-frame weights (B, T) (targets not `MEL_PAD`)."""
    y_true, y_pred = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")  # (B, T, M)
    weights = ops.cast(ops.greater(y_true[..., 0], MEL_PAD / 2), "float32")  # (B, T)
    return ops.mean(ops.abs(y_true - y_pred), axis=-1) * weights, weights


@keras.saving.register_keras_serializable(package="tfzoo")
class MaskedMelL1(keras.losses.Loss):
    """Mean absolute error over the real frames of normalised log-mel targets (padded frames are `MEL_PAD`).

    Args:
        name: str. Name of the loss. Defaults to "masked_mel_l1".

    Example:
    >>> import numpy as np
    >>> target = np.array([[[1.0, 1.0], [MEL_PAD, MEL_PAD]]], "float32")
    >>> round(float(MaskedMelL1()(target, np.zeros((1, 2, 2), "float32"))), 4)
    1.0
    """

    def __init__(self, name: str = "masked_mel_l1", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        errors, weights = _frame_l1(y_true, y_pred)
        return ops.sum(errors) / ops.maximum(ops.sum(weights), 1.0)


@keras.saving.register_keras_serializable(package="tfzoo")
class MelL1(keras.metrics.Metric):
    """Mean absolute log-mel error per real frame and mel bin, in natural-log units of mel power.

    The targets and predictions are normalised (divided by `mel_std`); the
    metric multiplies back, so it reads in the front end's units whatever the
    normalisation. Named `cross_entropy` by default: the name `metrics.jsonl`'s
    `train_loss`/`val_loss` are read from (as `DpoLossMetric` does for DPO).

    Args:
        mel_std: float. The normalisation's standard deviation. Defaults to 1.
        name: str. Defaults to "cross_entropy".

    Example:
    >>> import numpy as np
    >>> metric = MelL1(mel_std=2.0)
    >>> metric.update_state(np.ones((1, 3, 2), "float32"), np.zeros((1, 3, 2), "float32"))
    >>> float(metric.result())
    2.0
    """

    def __init__(self, mel_std: float = 1.0, name: str = "cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.mel_std = float(mel_std)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        errors, weights = _frame_l1(y_true, y_pred)
        self.total.assign_add(ops.sum(errors) * self.mel_std)
        self.count.assign_add(ops.sum(weights))

    def result(self):
        return self.total / ops.maximum(self.count, 1.0)

    def get_config(self) -> dict:
        return {**super().get_config(), "mel_std": self.mel_std}
