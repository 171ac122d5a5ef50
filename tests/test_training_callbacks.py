"""metrics.jsonl helpers and early stopping (incl. resuming with an earlier run's history)."""

import os

import keras
import pytest

from tfzoo.run_folder import read_metrics_file as read_metrics
from tfzoo.training.callbacks import EarlyStopping, patience_exhausted, write_metrics


@pytest.mark.parametrize(
    "losses, patience, expected",
    [
        ([3.0, 2.0, 2.5, 2.1], 2, True),
        ([3.0, 2.0, 2.5, 1.9], 2, False),
        ([3.0, 2.0, 2.0], 1, True),  # equal is no improvement
        ([3.0, 2.0], 2, False),  # not enough evaluations yet
        ([3.0, 2.0, 2.5, 2.1], 0, False),  # 0 = off
        ([float("nan"), 2.0, float("nan")], 1, True),
    ],
)
def test_patience_exhausted(losses, patience, expected):
    assert patience_exhausted(losses, patience) is expected


def _drive(callback, val_losses):
    """Feeds epoch-end logs to `callback`; returns the epoch after which it stopped (or None)."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    callback.set_model(model)
    model.stop_training = False
    for epoch, loss in enumerate(val_losses):
        callback.on_epoch_end(epoch, {"val_cross_entropy": loss})
        if model.stop_training:
            return epoch
    return None


def test_early_stopping_stops_after_patience_evaluations_without_improvement():
    assert _drive(EarlyStopping(patience=2), [3.0, 2.0, 2.2, 2.1, 1.0]) == 3
    assert _drive(EarlyStopping(patience=0), [3.0, 4.0, 5.0, 6.0]) is None
    callback = EarlyStopping(patience=3)
    assert _drive(callback, [3.0, 2.0, 2.5, 1.5, 1.6]) is None and not callback.stopped


def test_early_stopping_continues_from_an_earlier_run():
    history = [3.0, 2.0, 2.2]  # one evaluation without improvement before the kill
    callback = EarlyStopping(patience=2, val_losses=history)
    assert _drive(callback, [2.1]) == 0 and callback.stopped
    assert _drive(EarlyStopping(patience=2), [2.1]) is None  # without the history it would go on


def test_metrics_file_round_trip(tmp_path):
    path = str(tmp_path / "metrics.jsonl")
    assert read_metrics(path) == []
    records = [{"step": 10, "val_loss": 2.5}, {"step": 20, "val_loss": 2.25}]
    write_metrics(path, records)
    write_metrics(path, records[:1])  # rewritten whole, e.g. truncated on resume
    assert read_metrics(path) == records[:1]
    with open(path, encoding="utf-8") as f:
        assert f.read() == '{"step": 10, "val_loss": 2.5}\n'
    assert os.listdir(tmp_path) == ["metrics.jsonl"]
