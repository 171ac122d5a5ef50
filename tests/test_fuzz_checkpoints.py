"""Corrupt checkpoints: the newest one broken resumes from the one before (with a warning), or a CheckpointError.

Three checkpoints (steps 1, 2, 3) of a small model, each with different
weights. The newest file is then truncated, emptied, overwritten, bit-flipped
(Hypothesis picks where), or has an archive member removed or its manifest
garbled. `Checkpointer.restore()` must restore step 3 intact (when the damage
missed the data), or step 2 with a logged warning naming the file, or raise
`CheckpointError`, a `ValueError` the train CLI prints as one line; never
another exception. All checkpoints broken: `CheckpointError`.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
import zipfile

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkpoint_helpers import small_model as _model
from tfzoo.training.checkpoints import Checkpointer, CheckpointError

STEPS = (1, 2, 3)


def _weights(model) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(v) for v in model.variables + model.optimizer.variables]


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[str, dict]:
    """A folder with checkpoints 1, 2, 3 (different weights each) and the weights of each step."""
    directory = str(tmp_path_factory.mktemp("fuzz_checkpoints"))
    model = _model(seed=0)
    checkpointer = Checkpointer(directory, model, model.optimizer)
    expected = {}
    for step in STEPS:
        for variable in model.trainable_variables:
            variable.assign(variable + 0.5 * step)
        checkpointer.save(step)
        expected[step] = _weights(model)
    return directory, expected


@functools.cache
def _fresh_model():
    return _model(seed=1)


def _restore_corrupted(saved, corrupt) -> tuple[int | None, list[str]]:
    """Copies the checkpoints, applies `corrupt(path_of_step_3)`, restores; returns (step or None, log lines)."""
    source, expected = saved
    with tempfile.TemporaryDirectory() as directory:
        for name in os.listdir(source):
            shutil.copy(os.path.join(source, name), directory)
        model = _fresh_model()
        checkpointer = Checkpointer(directory, model, model.optimizer)
        newest = checkpointer.path(STEPS[-1])
        corrupt(newest)
        records = []
        handler = logging.Handler(level=logging.WARNING)
        handler.emit = records.append
        logging.getLogger().addHandler(handler)
        try:
            step = checkpointer.restore()
        except CheckpointError as error:
            assert str(error) and "\n" not in str(error), repr(str(error))
            return None, []
        finally:
            logging.getLogger().removeHandler(handler)
        assert step in (2, 3), step
        for got, want in zip(_weights(model), expected[step]):
            np.testing.assert_array_equal(got, want)
        return step, [r.getMessage() for r in records]


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as file:
        file.write(data)


def _read(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def _rezip(path: str, change) -> None:
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    change(members)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


CORRUPTIONS = {
    "truncated": lambda path: _write(path, _read(path)[: len(_read(path)) // 2]),
    "empty": lambda path: _write(path, b""),
    "garbage": lambda path: _write(path, os.urandom(512)),
    "text": lambda path: _write(path, b"not a checkpoint\n"),
    "member removed": lambda path: _rezip(path, lambda members: members.pop("model/0.npy")),
    "manifest garbled": lambda path: _rezip(path, lambda members: members.update({"manifest.npy": b"\x93NUMPY"})),
    "a directory": lambda path: (os.remove(path), os.makedirs(path)),
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_a_corrupt_newest_checkpoint_resumes_from_the_previous_one_with_a_warning(saved, kind):
    step, warnings = _restore_corrupted(saved, CORRUPTIONS[kind])
    if step is not None:  # else a clear CheckpointError: allowed too
        assert step == 2, f"{kind}: restored step {step} from a corrupt file"
        assert any("ckpt-00000003.npz" in message for message in warnings), (kind, warnings)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_flipped_byte_restores_intact_data_or_the_previous_step(saved, data):
    def flip(path):
        content = bytearray(_read(path))
        position = data.draw(st.integers(0, len(content) - 1), label="position")
        content[position] ^= data.draw(st.integers(1, 255), label="mask")
        _write(path, bytes(content))

    _restore_corrupted(saved, flip)  # checks the restored weights are exactly those of the step it returns


def test_every_checkpoint_corrupt_is_a_checkpoint_error(saved, tmp_path):
    source, _ = saved
    for name in os.listdir(source):
        _write(os.path.join(tmp_path, name), b"broken")
    model = _fresh_model()
    with pytest.raises(CheckpointError):
        Checkpointer(str(tmp_path), model, model.optimizer).restore()
