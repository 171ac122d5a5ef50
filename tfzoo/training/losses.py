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
    nll = ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)  # (B, T)
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
