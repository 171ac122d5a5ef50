"""Learning-rate schedule: linear warmup to a peak, then cosine decay to a floor."""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfzoo")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to `peak_learning_rate`, then cosine decay to `min_learning_rate`.

    With `s` the optimizer step (0 for the first update):
    `lr = peak * s / warmup_steps` while `s < warmup_steps`;
    `lr = min + (peak - min) * (1 + cos(pi * p)) / 2` with
    `p = (s - warmup_steps) / (decay_steps - warmup_steps)` up to `decay_steps`;
    `lr = min` afterwards.

    Args:
        peak_learning_rate: float. Learning rate at the end of the warmup.
        warmup_steps: int. Steps of linear warmup; 0 starts at the peak.
        decay_steps: int. Step at which the cosine reaches `min_learning_rate`
            (usually the total number of training steps); at least `warmup_steps`.
        min_learning_rate: float. Floor of the decay. Defaults to 0.0.

    Example:
    >>> schedule = WarmupCosineDecay(1e-3, warmup_steps=10, decay_steps=110, min_learning_rate=1e-4)
    >>> [round(float(schedule(s)), 6) for s in (0, 5, 10, 60, 110, 500)]
    [0.0, 0.0005, 0.001, 0.00055, 0.0001, 0.0001]
    """

    def __init__(
        self,
        peak_learning_rate: float,
        warmup_steps: int,
        decay_steps: int,
        min_learning_rate: float = 0.0,
    ):
        if warmup_steps < 0 or decay_steps < warmup_steps:
            raise ValueError(
                f"need 0 <= warmup_steps <= decay_steps, got warmup_steps={warmup_steps}, decay_steps={decay_steps}"
            )
        if not 0.0 <= min_learning_rate <= peak_learning_rate:
            raise ValueError(
                f"need 0 <= min_learning_rate <= peak_learning_rate, got {min_learning_rate} and {peak_learning_rate}"
            )
        self.peak_learning_rate = peak_learning_rate
        self.warmup_steps = warmup_steps
        self.decay_steps = decay_steps
        self.min_learning_rate = min_learning_rate

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = ops.cast(self.peak_learning_rate, "float32")
        floor = ops.cast(self.min_learning_rate, "float32")
        warmup = float(self.warmup_steps)
        warmup_lr = peak * step / max(warmup, 1.0)
        decay_length = float(max(self.decay_steps - self.warmup_steps, 1))
        progress = ops.clip((step - warmup) / decay_length, 0.0, 1.0)
        cosine_lr = floor + (peak - floor) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < warmup, warmup_lr, cosine_lr)

    def get_config(self) -> dict:
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "min_learning_rate": self.min_learning_rate,
        }
