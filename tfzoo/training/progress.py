"""What `python -m tfzoo.train` prints while it trains: a live line on a terminal, one line per evaluation.

`model.fit` runs with `verbose=0` and `TrainingProgress` prints instead. It
counts the run's global steps (`step 1250/2000`, carried over a resume by
`initial_epoch`), not Keras's batches of the current "epoch" (one evaluation
period). On a terminal a single line is rewritten in place at most every
`interval` seconds; in a log (a pipe or a file) only the line of each
evaluation is written, so a log has one line per period.

Reading the per-batch logs costs no extra device sync: with the TensorFlow
backend `keras.callbacks.CallbackList` converts them to Python floats after
every batch whatever the callbacks are (it dispatches asynchronously only on
thread-safe backends).
"""

from __future__ import annotations

import math
import numbers
import shutil
import sys
import time
from typing import TextIO

import keras

CLEAR_LINE = "\r\x1b[K"  # back to column 0, erase to the end of the line
BAR_WIDTH = 20


def format_duration(seconds: float) -> str:
    """A short duration: `42s`, `3m05s`, `2h07m`.

    Example:
    >>> format_duration(4.2), format_duration(185), format_duration(7650)
    ('4.2s', '3m05s', '2h07m')
    """
    if not math.isfinite(seconds):
        return "?"
    if seconds < 10:
        return f"{seconds:.1f}s"
    seconds = round(seconds)
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def format_metrics(logs: dict) -> str:
    """The numbers of a `model.fit` logs dict, training first, each group led by its loss.

    Example:
    >>> format_metrics({"val_loss": 3.3, "cross_entropy": 3.6, "loss": 3.61, "val_bleu": 97.5, "val_tokens": 512})
    'loss 3.6100 - cross_entropy 3.6000 - val_loss 3.3000 - val_bleu 97.5000 - val_tokens 512'
    """

    def order(name: str) -> tuple:
        is_val = name.startswith("val_")
        return (is_val, name.removeprefix("val_") != "loss", name)

    def number(value) -> str:
        return f"{int(value)}" if isinstance(value, numbers.Integral) else f"{float(value):.4f}"

    shown = sorted((k for k, v in logs.items() if isinstance(v, numbers.Real) and not isinstance(v, bool)), key=order)
    return " - ".join(f"{name} {number(logs[name])}" for name in shown)


def progress_bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """`[=====>....]`: `done` of `total` steps.

    Example:
    >>> progress_bar(5, 10, width=10)
    '[====>.....]'
    """
    filled = width * done // total if total > 0 else width
    if filled >= width:
        return "[" + "=" * width + "]"
    return "[" + "=" * max(filled - 1, 0) + (">" if filled else "") + "." * (width - filled) + "]"


class TrainingProgress(keras.callbacks.Callback):
    """Prints training progress in global steps: live on a terminal, one line per evaluation always.

    On a terminal (`stream.isatty()`) one line, rewritten in place and cut to
    the terminal width, shows the step, a bar of the current evaluation
    period, the mean training loss of the period so far, tokens per second
    over the period, and the time left for the whole run (at the current
    period's speed, plus the last evaluation's duration for each evaluation
    still to come). At every evaluation a permanent line gives the step, every
    number of the logs (`loss`, `cross_entropy`, `val_loss`, ...), the
    period's training throughput (validation excluded; the first period of a
    process includes tracing and compilation) and the time since training
    started. Use it with `model.fit(..., verbose=0)`.

    Args:
        tokens_per_step: int. Tokens in one global batch (`batch_size * seq_len`).
        stream: text stream, optional. Where to print. Defaults to `sys.stdout`.
        clock: callable, optional. Seconds as a float (monotonic). Defaults to `time.monotonic`.
        interval: float. Least seconds between two redraws of the live line. Defaults to 0.25.

    Example:
    >>> import io
    >>> out = io.StringIO()
    >>> progress = TrainingProgress(tokens_per_step=256, stream=out, clock=iter([0.0, 0.0, 2.0, 2.5]).__next__)
    >>> progress.set_params({"epochs": 2, "steps": 100})
    >>> progress.on_train_begin(); progress.on_epoch_begin(0); progress.on_test_begin()
    >>> progress.on_epoch_end(0, {"loss": 3.5, "val_loss": 3.25})
    >>> out.getvalue()
    'step 100/200 - loss 3.5000 - val_loss 3.2500 - 12,800 tokens/s - 2.5s elapsed\\n'
    """

    def __init__(
        self,
        tokens_per_step: int,
        stream: TextIO | None = None,
        clock=time.monotonic,
        interval: float = 0.25,
    ):
        super().__init__()
        self.tokens_per_step = tokens_per_step
        self.stream = stream if stream is not None else sys.stdout
        self.clock = clock
        self.interval = interval
        isatty = getattr(self.stream, "isatty", None)
        self.live = bool(isatty and isatty())
        self._live_shown = False

    # Steps are global: epoch e of `steps` batches ends at step (e + 1) * steps.
    def on_train_begin(self, logs=None):
        self._steps_per_period = self.params["steps"]
        self._total_steps = self.params["epochs"] * self._steps_per_period
        self._train_start = self.clock()
        self._eval_seconds = None
        self._step = None
        if self.live:
            self._draw("starting: the first steps trace and compile the model")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._period_start_step = epoch * self._steps_per_period
        self._step = self._period_start_step
        self._period_start = self.clock()
        self._train_seconds = None
        self._loss = None
        self._last_draw = -math.inf

    def on_train_batch_end(self, batch, logs=None):
        # `batch` is the last batch of the call: with steps_per_execution=k the callback runs every k steps.
        self._step = self._period_start_step + batch + 1
        loss = (logs or {}).get("loss")
        if loss is not None:
            self._loss = float(loss)  # Keras's running mean over the period (the epoch)
        if self.live:
            now = self.clock()
            if now - self._last_draw >= self.interval:
                self._last_draw = now
                self._draw(self._live_line(now))

    def on_test_begin(self, logs=None):  # validation starts: the period's training is over
        if self._train_seconds is not None or self._step is None:
            return
        self._test_start = self.clock()
        self._train_seconds = self._test_start - self._period_start
        if self.live:
            self._draw(f"step {self._step}/{self._total_steps} evaluating")

    def on_epoch_end(self, epoch, logs=None):
        now = self.clock()
        if self._train_seconds is None:  # no validation ran
            self._train_seconds = now - self._period_start
        else:
            self._eval_seconds = now - self._test_start
        step = (epoch + 1) * self._steps_per_period
        parts = [f"step {step}/{self._total_steps}", format_metrics(logs or {})]
        parts.append(f"{self._tokens_per_second(step, self._train_seconds):,.0f} tokens/s")
        parts.append(f"{format_duration(now - self._train_start)} elapsed")
        self._write(" - ".join(p for p in parts if p) + "\n")

    def on_train_end(self, logs=None):
        if self._live_shown:  # stopped inside a period: leave no half line behind
            self._write("")

    def _tokens_per_second(self, step: int, seconds: float) -> float:
        return (step - self._period_start_step) * self.tokens_per_step / max(seconds, 1e-9)

    def _live_line(self, now: float) -> str:
        seconds = now - self._period_start
        done = self._step - self._period_start_step
        rate = done / max(seconds, 1e-9)  # steps per second in this period
        evaluations_left = self.params["epochs"] - self._epoch
        eta = (self._total_steps - self._step) / rate + evaluations_left * (self._eval_seconds or 0.0)
        loss = "-" if self._loss is None else f"{self._loss:.4f}"
        return (
            f"step {self._step}/{self._total_steps} {progress_bar(done, self._steps_per_period)} "
            f"loss {loss} - {self._tokens_per_second(self._step, seconds):,.0f} tokens/s - ETA {format_duration(eta)}"
        )

    def _draw(self, line: str) -> None:
        width = shutil.get_terminal_size().columns - 1  # the last column would wrap on some terminals
        self._write(line[: max(width, 1)], live=True)

    def _write(self, text: str, live: bool = False) -> None:
        if self._live_shown:
            text = CLEAR_LINE + text
        self._live_shown = live
        self.stream.write(text)
        self.stream.flush()
