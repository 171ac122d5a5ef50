"""TrainingProgress: global steps, the live terminal line (throttled, cut to width), one line per evaluation."""

import io
import re

import keras
import numpy as np
import pytest

from tfzoo.training.callbacks import EvaluationLogger
from tfzoo.training.progress import CLEAR_LINE, TrainingProgress, format_duration, format_metrics, progress_bar


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _progress(stream, clock, epochs=4, steps=10, interval=0.25):
    progress = TrainingProgress(tokens_per_step=64, stream=stream, clock=clock, interval=interval)
    progress.set_params({"epochs": epochs, "steps": steps})
    return progress


def _live_lines(text: str) -> list[str]:
    """The successive states of the terminal's last line (a redraw starts with CLEAR_LINE, a record ends with \\n)."""
    return [line for line in re.split(r"\r\x1b\[K|\n", text) if line]


def test_formatting_helpers():
    assert [format_duration(s) for s in (0.04, 9.96, 59.6, 61, 3599, 3600, 90061)] == [
        "0.0s",
        "10.0s",
        "1m00s",
        "1m01s",
        "59m59s",
        "1h00m",
        "25h01m",
    ]
    assert format_duration(float("inf")) == "?"
    assert [progress_bar(d, 4, width=4) for d in (0, 1, 3, 4, 9)] == ["[....]", "[>...]", "[==>.]", "[====]", "[====]"]
    logs = {"val_accuracy": 0.5, "accuracy": 0.25, "val_loss": 2.0, "loss": 3.0, "note": "x", "flag": True}
    logs["val_masked_tokens"] = np.int64(812)  # a count of a task's own evaluation (EvaluationLogger)
    expected = "loss 3.0000 - accuracy 0.2500 - val_loss 2.0000 - val_accuracy 0.5000 - val_masked_tokens 812"
    assert format_metrics(logs) == expected


def test_log_stream_gets_one_line_per_evaluation_in_global_steps():
    out, clock = io.StringIO(), FakeClock()
    progress = _progress(out, clock)
    progress.on_train_begin()
    for epoch in (2, 3):  # resumed at step 20 of 40 (initial_epoch=2)
        progress.on_epoch_begin(epoch)
        for batch in range(10):
            clock.now += 0.5
            progress.on_train_batch_end(batch, {"loss": 3.0 - epoch / 10})
        progress.on_test_begin()
        clock.now += 1.0
        progress.on_epoch_end(epoch, {"cross_entropy": 2.9, "loss": 3.0, "val_loss": 2.5, "val_accuracy": 0.75})
    progress.on_train_end()
    assert out.getvalue().splitlines() == [
        "step 30/40 - loss 3.0000 - cross_entropy 2.9000 - val_loss 2.5000 - val_accuracy 0.7500"
        " - 128 tokens/s - 6.0s elapsed",  # 10 steps * 64 tokens in 5 s of training (validation excluded)
        "step 40/40 - loss 3.0000 - cross_entropy 2.9000 - val_loss 2.5000 - val_accuracy 0.7500"
        " - 128 tokens/s - 12s elapsed",
    ]
    assert "\r" not in out.getvalue()


def test_terminal_line_is_throttled_and_rewritten_in_place(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    out, clock = FakeTerminal(), FakeClock()
    progress = _progress(out, clock, epochs=2, steps=100)
    progress.on_train_begin()
    progress.on_epoch_begin(0)
    clock.now += 5.0  # the first step traces and compiles
    progress.on_train_batch_end(0, {"loss": 5.0})
    for batch in range(1, 100):
        clock.now += 1 / 64  # 64 steps a second (exact in binary): a redraw every 16 steps at most
        progress.on_train_batch_end(batch, {"loss": 4.0})
    lines = _live_lines(out.getvalue())
    assert lines[0].startswith("starting")
    assert lines[1] == "step 1/200 [....................] loss 5.0000 - 13 tokens/s - ETA 16m35s"
    steps = [int(re.match(r"step (\d+)/200 ", line).group(1)) for line in lines[1:]]
    assert steps == [1, 17, 33, 49, 65, 81, 97], lines  # time-throttled: 7 draws for 100 batches
    assert "loss 4.0000" in lines[-1] and "[==================>.]" in lines[-1]
    assert "\n" not in out.getvalue()

    progress.on_test_begin()
    clock.now += 2.0
    progress.on_epoch_end(0, {"loss": 4.0, "val_loss": 3.5})
    text = out.getvalue()
    assert text.endswith(CLEAR_LINE + "step 100/200 - loss 4.0000 - val_loss 3.5000 - 978 tokens/s - 8.5s elapsed\n")
    assert _live_lines(text)[-2] == "step 100/200 evaluating"

    progress.on_epoch_begin(1)
    clock.now += 1.0
    progress.on_train_batch_end(49, {"loss": 3.8})  # steps_per_execution=50: one call per 50 steps, last index
    # 50 steps a second; 50 steps + the next evaluation (2 s as measured) to go.
    expected = "step 150/200 [=========>..........] loss 3.8000 - 3,200 tokens/s - ETA 3.0s"
    assert _live_lines(out.getvalue())[-1] == expected
    progress.on_train_end()  # early stop inside a period: the live line is erased
    assert out.getvalue().endswith(CLEAR_LINE)


def test_terminal_line_is_cut_to_the_terminal_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "30")
    out, clock = FakeTerminal(), FakeClock()
    progress = _progress(out, clock)
    progress.on_train_begin()
    progress.on_epoch_begin(0)
    clock.now += 1.0
    progress.on_train_batch_end(9, {"loss": 3.0})
    progress.on_test_begin()
    progress.on_epoch_end(0, {"loss": 3.0, "val_loss": 2.5})
    assert all(len(line) == 29 for line in _live_lines(out.getvalue())[:2])
    assert out.getvalue().endswith("val_loss 2.5000 - 640 tokens/s - 1.0s elapsed\n")  # the record is whole


@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_real_fit_shows_global_steps_and_the_validation_metrics(monkeypatch, tmp_path, steps_per_execution):
    monkeypatch.setenv("COLUMNS", "120")
    x = np.random.default_rng(0).normal(size=(48, 4))  # 6 batches: one pass per epoch.astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], dtype="float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    cross_entropy = keras.metrics.MeanSquaredError(name="cross_entropy")  # the metric EvaluationLogger records
    optimizer = keras.optimizers.SGD(0.05)
    model.compile(optimizer, loss="mse", metrics=[cross_entropy], steps_per_execution=steps_per_execution)
    out = FakeTerminal()
    progress = TrainingProgress(tokens_per_step=8, stream=out, interval=0.0)  # draw at every call
    logger = EvaluationLogger(
        str(tmp_path / "metrics.jsonl"), str(tmp_path / "tb"), tokens_per_step=8, evaluate=lambda m: {"accuracy": 0.625}
    )
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=3,
        initial_epoch=1,  # a resume at step 6 of 18
        steps_per_epoch=6,
        validation_data=(x[:16], y[:16]),
        callbacks=[logger, progress],
        verbose=0,
        shuffle=False,
    )
    text = out.getvalue()
    live = [int(m) for m in re.findall(r"(?:\x1b\[K|\n)step (\d+)/18 \[", text)]
    assert live == list(range(6 + steps_per_execution, 19, steps_per_execution)), text
    line = r"step (\d+)/18 - loss ([0-9.]+) - cross_entropy [0-9.]+ - val_loss ([0-9.]+) - val_accuracy 0.6250 - "
    records = re.findall(line + r"val_cross_entropy [0-9.]+ - [0-9,]+ tokens/s", text)
    assert [int(r[0]) for r in records] == [12, 18], text
    val_loss = float(keras.ops.convert_to_numpy(keras.losses.mean_squared_error(y[:16, 0], model(x[:16])[:, 0])))
    assert float(records[-1][2]) == pytest.approx(val_loss, rel=1e-3)
    assert float(records[-1][1]) < float(records[0][1])  # it trained
