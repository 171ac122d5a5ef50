"""One device, 2 mirrored logical CPUs and 2 local workers (tfzoo.launch) train alike.

Same seed, global batch and data, dropout 0, 40 steps at the peak learning
rate (no warmup, no decay) with a gradient clip that binds from the first
step: the losses agree within 2e-4 relative at every evaluation, and differ
from the same run without clipping (so the clip acted, and acted alike: on
the gradient of the global batch). Measured (docs/distributed.md): the
strategies differ by at most 7e-5 (fp32 summation order, amplified by Adam);
clipping per replica, the bug this catches, differed by 1.3e-3 at step 20 and
7e-3 at step 40. Also: only the chief writes the workdir,
and the other worker's scratch directory is gone.
"""

import concurrent.futures
import os

import pytest

from distributed_checks import environment, read_metrics, run, tiny_args, write_toy_text

STRATEGY = "--config.distribution_strategy="
# 40 steps at the peak learning rate 3e-3, clipped to a global norm of 0.1 (the gradients are ~1 at first).
AT_PEAK = ["--config.warmup_steps=0", "--config.min_learning_rate=3e-3"]
CLIPPED = [*AT_PEAK, "--config.clip_norm=0.1"]


def test_one_device_mirrored_and_two_workers_agree(tmp_path):
    text = write_toy_text(tmp_path / "toy.txt")
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    jobs = {
        "one_device": ("tfzoo.train", tiny_args(text, tmp_path / "one", STRATEGY + "one_device", *CLIPPED), None),
        "mirrored": (
            "tfzoo.train",
            tiny_args(text, tmp_path / "mirrored", STRATEGY + "mirrored", "--config.num_cpu_devices=2", *CLIPPED),
            None,
        ),
        "workers": (
            "tfzoo.launch",
            ["--num_workers=2", "--", *tiny_args(text, tmp_path / "workers", *CLIPPED)],
            environment(TMPDIR=str(scratch_root)),
        ),
        "unclipped": (
            "tfzoo.train",
            tiny_args(text, tmp_path / "unclipped", STRATEGY + "one_device", *AT_PEAK, "--config.clip_norm=0"),
            None,
        ),
    }
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {name: pool.submit(run, module, *args, env=env) for name, (module, args, env) in jobs.items()}
        results = {name: future.result() for name, future in futures.items()}
    for name, (code, stdout, stderr) in results.items():
        assert code == 0, (name, stdout[-3000:], stderr[-3000:])

    metrics = {
        name: read_metrics(tmp_path / directory)
        for name, directory in [
            ("one_device", "one"),
            ("mirrored", "mirrored"),
            ("workers", "workers"),
            ("unclipped", "unclipped"),
        ]
    }
    for name, records in metrics.items():
        assert [r["step"] for r in records] == [10, 20, 30, 40], name
    for name in ("mirrored", "workers"):
        for record, reference in zip(metrics[name], metrics["one_device"]):
            assert record["train_loss"] == pytest.approx(reference["train_loss"], rel=2e-4), (name, record)
            assert record["val_loss"] == pytest.approx(reference["val_loss"], rel=2e-4), (name, record)
    for unclipped, clipped in zip(metrics["unclipped"], metrics["one_device"]):  # measured: 7e-4 to 1.5e-2 apart
        assert unclipped["val_loss"] != pytest.approx(clipped["val_loss"], rel=2e-4), (unclipped, clipped)
    reference = metrics["one_device"][-1]
    assert reference["train_loss"] < metrics["one_device"][0]["train_loss"] - 0.2  # it did learn

    stdout = results["workers"][1]
    assert "[worker 0]" in stdout and "[worker 1]" in stdout
    assert stdout.count("done: step 40") == 2  # both workers finished
    assert {"model.keras", "metrics.jsonl", "checkpoints", "config.json"} <= set(os.listdir(tmp_path / "workers"))
    assert not [name for name in os.listdir(scratch_root) if name.startswith("tfzoo-")]  # scratch removed
    print({name: records[-1]["train_loss"] for name, records in metrics.items()})
