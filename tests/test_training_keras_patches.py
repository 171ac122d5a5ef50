"""Each Keras work-around of tfzoo/training/keras_patches.py: the bug it patches is still in Keras.

These tests FAIL once Keras fixes a bug: then delete that patch (and its
test). One subprocess (tests/keras_patch_checks.py, a few seconds) runs
every reproduction; a hang there (a Keras that now waits for a second worker
instead of failing) counts as "Keras changed" too.
"""

import json
import os
import subprocess
import sys

import pytest

from train_helpers import REPO

TIMEOUT = 120
CHANGED = "Keras no longer fails here: the bug is fixed, remove the patch from tfzoo/training/keras_patches.py"


@pytest.fixture(scope="module")
def report() -> dict:
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    script = os.path.join(REPO, "tests", "keras_patch_checks.py")
    try:
        result = subprocess.run(
            [sys.executable, script], cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"tests/keras_patch_checks.py hung for {TIMEOUT} s: Keras changed; re-check the patches")
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_patches_name_the_keras_version_they_target(report):
    assert report["keras_version"].startswith(report["target"] + "."), (
        f"keras_patches.py targets Keras {report['target']}, installed is {report['keras_version']}: "
        "check whether each patch is still needed, then update TARGET_KERAS_VERSION"
    )


def test_patch_1_unpatched_keras_cannot_average_a_scalar_over_workers(report):
    assert report["scalar_mean"] is not None, CHANGED
    assert "Invalid reduction dimension 0 for input with 0 dimensions" in report["scalar_mean"]
    assert report["reduce_patched"]


def test_patch_2_unpatched_keras_cannot_build_from_a_distributed_batch(report):
    assert report["build_from_distributed_batch"] is not None, CHANGED
    assert "Attempt to convert a value (PerReplica" in report["build_from_distributed_batch"]
    assert report["patched_build"] is None and report["patched_built"]  # the patch builds from a local batch


def test_patch_3_unpatched_keras_clips_each_replica_before_the_sum(report):
    steps = report["clipped_steps"]  # norm of one SGD step whose global gradient (norm 2) is clipped to 1
    assert steps["one_device_keras"] == pytest.approx(1.0) and steps["one_device_patched"] == pytest.approx(1.0)
    assert steps["mirrored_keras"] != pytest.approx(1.0), CHANGED
    assert steps["mirrored_keras"] == pytest.approx(2.0)  # each replica's half passed unclipped
    assert steps["mirrored_patched"] == pytest.approx(1.0)  # clipped once summed, as on one device
