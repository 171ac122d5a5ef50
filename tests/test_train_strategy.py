"""Strategies: `mirrored` over 2 logical CPUs trains exactly like one device; unsupported ones say so."""

import concurrent.futures
import json
import os
import re

import pytest
import tensorflow as tf

from tfzoo.training.strategy import make_strategy, supports_jit_compile
from train_helpers import run_cli, write_toy_text


def test_one_device_and_auto():
    assert isinstance(make_strategy("one_device"), tf.distribute.OneDeviceStrategy)
    auto = make_strategy("auto")
    assert auto.num_replicas_in_sync == 1 and supports_jit_compile(auto)


def test_tpu_without_a_tpu_says_so():
    with pytest.raises(ValueError, match="distribution_strategy 'tpu' found no TPU at tpu_address='local'"):
        make_strategy("tpu")


def test_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="distribution_strategy 'multi_worker' needs the TF_CONFIG environment"):
        make_strategy("multi_worker")


def test_parameter_server_is_explained():
    with pytest.raises(ValueError, match="does not support ParameterServerStrategy"):
        make_strategy("parameter_server")


def test_unknown_strategy():
    with pytest.raises(ValueError, match="unknown distribution_strategy 'ring'"):
        make_strategy("ring")


def test_mirrored_over_two_cpus_matches_one_device(tmp_path):
    text = write_toy_text(tmp_path / "toy.txt")
    common = [
        "--config=configs/gpt_tiny.py",
        f"--config.dataset=text:{text}",
        "--config.train_steps=20",
        "--config.sample_length=0",
    ]
    runs = {
        "one": [f"--workdir={tmp_path / 'one'}"],
        "mirrored": [
            f"--workdir={tmp_path / 'mirrored'}",
            "--config.distribution_strategy=mirrored",
            "--config.num_cpu_devices=2",
            "--config.jit_compile=True",
        ],
    }
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(runs, pool.map(lambda extra: run_cli(*common, *extra), runs.values())))
    for name, result in results.items():
        assert result.returncode == 0, (name, result.stderr[-3000:])
    assert "jit_compile is off" in results["mirrored"].stderr  # XLA cannot span CPU replicas
    assert "jit_compile is off" not in results["one"].stderr
    metrics = {}
    for name in runs:
        with open(tmp_path / name / "metrics.jsonl", encoding="utf-8") as f:
            metrics[name] = [json.loads(line) for line in f]
    assert [r["step"] for r in metrics["mirrored"]] == [10, 20]
    for one, mirrored in zip(metrics["one"], metrics["mirrored"]):
        # Same global batches, gradients averaged over the replicas: the same training.
        assert mirrored["train_loss"] == pytest.approx(one["train_loss"], rel=1e-4)
        assert mirrored["val_loss"] == pytest.approx(one["val_loss"], rel=1e-4)
    assert os.path.exists(tmp_path / "mirrored" / "model.keras")
    # Without smoothing the trained loss is the metric; a loss not scaled per replica reads 2x.
    # The printed evaluation lines carry both: "step 10/20 - loss 3.59 - cross_entropy 3.59 - val_loss ...".
    line = re.compile(r"^step \d+/20 - loss ([0-9.]+) - cross_entropy ([0-9.]+) - ", re.MULTILINE)
    progress = line.findall(results["mirrored"].stdout)
    assert len(progress) == 2 and all(float(a) == pytest.approx(float(b), rel=1e-3) for a, b in progress)
