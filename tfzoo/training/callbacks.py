"""Callbacks run at every evaluation: metrics.jsonl + TensorBoard, checkpoints, early stopping.

`model.fit` runs one "epoch" per `eval_every` steps, so `on_epoch_end` is an
evaluation point and the step there is `(epoch + 1) * steps_per_epoch`
(`initial_epoch` carries it over a resume). It is not `optimizer.iterations`:
under float16 loss scaling a step with overflowing gradients is skipped and
does not count as an optimizer update, but it did use its batch.
"""

from __future__ import annotations

import json
import math
import time

import keras
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from tfzoo.files import atomic_write_text
from tfzoo.training.checkpoints import Checkpointer

# `tf.summary.scalar` lives in the tensorboard package, which TensorFlow no longer
# installs; `tf.summary.write` with the scalars plugin's metadata writes the same event.
_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
)

TRAIN_METRIC = "cross_entropy"  # the `MaskedTokenCrossEntropy` name in the fit logs
VAL_METRIC = "val_cross_entropy"


def current_step(model: keras.Model) -> int:
    """Optimizer updates applied so far (fewer than the training steps when float16 skipped some)."""
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def epoch_end_step(callback: keras.callbacks.Callback, epoch: int) -> int:
    """The training step at the end of `epoch` of a `model.fit` run (batches used so far)."""
    return (epoch + 1) * callback.params["steps"]


def write_metrics(path: str, records: list[dict]) -> None:
    """Rewrites `metrics.jsonl` whole (temporary file + rename), one JSON object a line."""
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def patience_exhausted(val_losses: list[float], patience: int) -> bool:
    """Whether the last `patience` evaluations all failed to beat the best before them.

    Example:
    >>> patience_exhausted([3.0, 2.0, 2.5, 2.1], patience=2), patience_exhausted([3.0, 2.0], 2)
    (True, False)
    """
    if patience <= 0 or len(val_losses) <= patience:
        return False
    best_before = min((v for v in val_losses[:-patience] if not math.isnan(v)), default=math.inf)
    return all(not v < best_before for v in val_losses[-patience:])


class EvaluationLogger(keras.callbacks.Callback):
    """Appends one record per evaluation to `metrics.jsonl` and to TensorBoard.

    A record is `{"step", "train_loss", "val_loss", "tokens_per_sec",
    "wall_time", "learning_rate"}`: mean nats per non-pad token over the
    steps since the previous evaluation (train) and over the validation
    batches (val), training throughput over those steps (validation time
    excluded; the first evaluation of a process includes tracing and XLA
    compilation), Unix time, and the learning rate the schedule gives at `step`.
    The metrics of `evaluate` also go into the epoch's logs as `val_<name>`, for
    the callbacks after it (`TrainingProgress` prints them).

    Args:
        metrics_path: str. The `metrics.jsonl` file; rewritten whole each time.
        tensorboard_dir: str. Folder of the TensorBoard event files.
        tokens_per_step: int. Tokens in one global batch (`batch_size * seq_len`).
        records: list of dict. Records of earlier runs to keep (resume).
            Defaults to none.
        evaluate: callable, optional. `evaluate(model) -> dict` of more
            metrics for the record (e.g. `exact_match`, `bleu`, `accuracy`
            of the model's own predictions on the held-out split). Defaults to none.
    """

    def __init__(
        self,
        metrics_path: str,
        tensorboard_dir: str,
        tokens_per_step: int,
        records: list[dict] | None = None,
        evaluate=None,
    ):
        super().__init__()
        self.evaluate = evaluate
        self.metrics_path = metrics_path
        self.tensorboard_dir = tensorboard_dir
        self.tokens_per_step = tokens_per_step
        self.records = list(records or [])
        self._writer = None
        self._train_seconds = None

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(self.tensorboard_dir)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()

    def on_epoch_begin(self, epoch, logs=None):
        self._start_step = epoch * self.params["steps"]
        self._start_time = time.perf_counter()
        self._train_seconds = None

    def on_test_begin(self, logs=None):  # validation starts: the epoch's training is over
        if self._train_seconds is None:
            self._train_seconds = time.perf_counter() - self._start_time

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        step = epoch_end_step(self, epoch)
        seconds = self._train_seconds or (time.perf_counter() - self._start_time)
        record = {
            "step": step,
            "train_loss": float(logs[TRAIN_METRIC]),
            "val_loss": float(logs[VAL_METRIC]),
            "tokens_per_sec": (step - self._start_step) * self.tokens_per_step / seconds,
            "wall_time": time.time(),
            "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
        }
        if self.evaluate is not None:
            decoded = self.evaluate(self.model)
            record.update(decoded)
            logs.update({f"val_{name}": value for name, value in decoded.items()})  # for the callbacks after it
        self.records.append(record)
        write_metrics(self.metrics_path, self.records)
        with self._writer.as_default(step=step):
            for name, value in record.items():
                if name not in ("step", "wall_time"):
                    tf.summary.write(name, tf.constant(value, tf.float32), metadata=_SCALAR_METADATA)
        self._writer.flush()


class CheckpointSaver(keras.callbacks.Callback):
    """Saves a checkpoint at every evaluation.

    Args:
        checkpointer: Checkpointer. Where and what to save.
    """

    def __init__(self, checkpointer: Checkpointer):
        super().__init__()
        self.checkpointer = checkpointer

    def on_epoch_end(self, epoch, logs=None):
        self.checkpointer.save(epoch_end_step(self, epoch))


class EarlyStopping(keras.callbacks.Callback):
    """Stops training once validation loss has not improved for `patience` evaluations.

    Unlike `keras.callbacks.EarlyStopping` it starts from the validation
    losses of earlier runs, so a resumed run stops where an uninterrupted
    one would.

    Args:
        patience: int. Evaluations without improvement before stopping; 0 never stops.
        val_losses: list of float. Validation losses logged before this run.
            Defaults to none.
    """

    def __init__(self, patience: int, val_losses: list[float] | None = None):
        super().__init__()
        self.patience = patience
        self.val_losses = list(val_losses or [])
        self.stopped = False

    def on_epoch_end(self, epoch, logs=None):
        self.val_losses.append(float((logs or {})[VAL_METRIC]))
        if patience_exhausted(self.val_losses, self.patience):
            self.stopped = True
            self.model.stop_training = True
