"""Checkpointer: exact round trip of model + optimizer state, keep-last-3, atomic files, mismatches."""

import os

import keras
import numpy as np
import pytest

from checkpoint_helpers import small_model as _model
from tfzoo.training.checkpoints import Checkpointer, CheckpointError


def _data(seed=0):
    tokens = np.random.default_rng(seed).integers(1, 13, size=(16, 9)).astype("int32")
    return tokens[:, :-1], tokens[:, 1:]


def _state(model):
    return [keras.ops.convert_to_numpy(v) for v in model.variables + model.optimizer.variables]


def test_round_trip_restores_weights_optimizer_and_dropout_state(tmp_path):
    x, y = _data()
    trained = _model(seed=0)
    trained.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)  # 4 steps with dropout
    Checkpointer(str(tmp_path), trained, trained.optimizer).save(step=4)

    fresh = _model(seed=1)
    assert not all(np.array_equal(a, b) for a, b in zip(_state(trained), _state(fresh)))
    assert Checkpointer(str(tmp_path), fresh, fresh.optimizer).restore() == 4
    for a, b in zip(_state(trained), _state(fresh)):
        np.testing.assert_array_equal(a, b)
    assert int(fresh.optimizer.iterations) == 4

    # Continuing both gives the same result: moments, step (schedule) and dropout seeds all came back.
    x2, y2 = _data(seed=1)
    trained.fit(x2, y2, batch_size=4, epochs=1, verbose=0, shuffle=False)
    fresh.fit(x2, y2, batch_size=4, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(_state(trained), _state(fresh)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_keeps_the_newest_three_and_leaves_no_temporary_files(tmp_path):
    model = _model(seed=0)
    directory = str(tmp_path / "checkpoints")
    checkpointer = Checkpointer(directory, model, model.optimizer)
    assert checkpointer.latest_step() is None and not os.path.exists(directory)
    open(os.path.join(tmp_path, "unrelated"), "w").close()
    os.makedirs(directory)
    open(os.path.join(directory, "ckpt-00000001.npz.tmp-999"), "w").close()  # from a killed run
    for step in (10, 20, 30, 40, 50):
        checkpointer.save(step)
    assert checkpointer.steps() == [30, 40, 50]
    assert sorted(os.listdir(directory)) == [f"ckpt-000000{s}.npz" for s in (30, 40, 50)]


def test_restores_a_chosen_step(tmp_path):
    model = _model(seed=0)
    checkpointer = Checkpointer(str(tmp_path), model, model.optimizer)
    first = _state(model)
    checkpointer.save(1)
    model.variables[0].assign(model.variables[0] + 1.0)
    checkpointer.save(2)
    assert checkpointer.restore(1) == 1
    np.testing.assert_array_equal(_state(model)[0], first[0])


def test_mismatched_model_is_a_clear_error(tmp_path):
    model = _model(seed=0)
    Checkpointer(str(tmp_path), model, model.optimizer).save(5)
    wider = _model(seed=0, hidden_dim=12)
    with pytest.raises(CheckpointError, match="shape .* different config"):
        Checkpointer(str(tmp_path), wider, wider.optimizer).restore()
    deeper = _model(seed=0, num_layers=2)
    with pytest.raises(CheckpointError, match="variables .* different config"):
        Checkpointer(str(tmp_path), deeper, deeper.optimizer).restore()
    with pytest.raises(CheckpointError, match="no checkpoint"):
        Checkpointer(str(tmp_path / "empty"), model, model.optimizer).restore()
