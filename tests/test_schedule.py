"""WarmupCosineDecay: warmup/decay values against a numpy reference, serialization."""

import math

import keras
import numpy as np
import pytest

from tfzoo.training.schedule import WarmupCosineDecay


def _reference(step, peak, warmup, decay, floor):
    if step < warmup:
        return peak * step / warmup
    progress = min((step - warmup) / max(decay - warmup, 1), 1.0)
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))


@pytest.mark.parametrize(
    "peak, warmup, decay, floor",
    [(1e-3, 100, 2500, 1e-4), (3e-3, 0, 50, 0.0), (1.0, 7, 7, 0.25), (2e-4, 10, 11, 2e-5)],
)
def test_matches_reference(peak, warmup, decay, floor):
    schedule = WarmupCosineDecay(peak, warmup, decay, floor)
    steps = sorted(
        {
            0,
            1,
            warmup // 2,
            max(warmup - 1, 0),
            warmup,
            warmup + 1,
            (warmup + decay) // 2,
            decay - 1,
            decay,
            decay + 1,
            10 * decay + 3,
        }
    )
    actual = [float(schedule(s)) for s in steps]
    expected = [_reference(s, peak, warmup, decay, floor) for s in steps]
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-9)


def test_shape_of_the_curve():
    schedule = WarmupCosineDecay(1e-3, warmup_steps=100, decay_steps=1000, min_learning_rate=1e-4)
    values = np.array([float(schedule(s)) for s in range(0, 1200, 5)])
    assert values[0] == 0.0
    peak_index = int(np.argmax(values))
    assert peak_index * 5 == 100 and values[peak_index] == pytest.approx(1e-3)
    assert np.all(np.diff(values[: peak_index + 1]) > 0)  # warmup rises
    assert np.all(np.diff(values[peak_index:]) <= 1e-12)  # decay never rises
    assert values[-1] == pytest.approx(1e-4)


def test_serialization_round_trip():
    schedule = WarmupCosineDecay(5e-4, warmup_steps=3, decay_steps=17, min_learning_rate=5e-5)
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(revived, WarmupCosineDecay)
    assert revived.get_config() == schedule.get_config()
    for step in (0, 2, 3, 9, 17, 30):
        assert float(revived(step)) == float(schedule(step))


def test_drives_the_optimizer():
    schedule = WarmupCosineDecay(1e-2, warmup_steps=4, decay_steps=8, min_learning_rate=1e-3)
    optimizer = keras.optimizers.AdamW(learning_rate=schedule)
    variable = keras.Variable(np.ones((2, 2), "float32"))
    optimizer.build([variable])
    for step in range(6):
        assert float(optimizer.learning_rate) == pytest.approx(_reference(step, 1e-2, 4, 8, 1e-3))
        optimizer.apply([np.ones((2, 2), "float32")], [variable])


@pytest.mark.parametrize(
    "args",
    [
        dict(warmup_steps=-1, decay_steps=5),
        dict(warmup_steps=6, decay_steps=5),
        dict(warmup_steps=0, decay_steps=5, min_learning_rate=2.0),
    ],
)
def test_rejects_bad_arguments(args):
    with pytest.raises(ValueError, match="need"):
        WarmupCosineDecay(1.0, **args)
