"""`python -m tfzoo.launch` and TF_CONFIG: bad clusters fail fast with one line, never hang.

The TF_CONFIG checks run before TensorFlow is imported, so those cases take
about a second; an unreachable worker is bounded by TFZOO_STARTUP_TIMEOUT.
"""

import json
import os
import re
import socket
import subprocess
import time

import pytest

from distributed_checks import REPO, environment, read_metrics, run, tiny_args, write_toy_text
from tfzoo.launch import free_ports, tf_configs
from tfzoo.training.validate import ClusterError, parse_tf_config

MULTI_WORKER = "--config.distribution_strategy=multi_worker"

TWO_WORKERS = {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]}


def test_tf_configs_describe_one_loopback_cluster():
    configs = [json.loads(c) for c in tf_configs([3001, 3002])]
    assert [c["task"] for c in configs] == [{"type": "worker", "index": 0}, {"type": "worker", "index": 1}]
    assert all(c["cluster"] == {"worker": ["127.0.0.1:3001", "127.0.0.1:3002"]} for c in configs)
    ports = free_ports(3)
    assert len(set(ports)) == 3


def test_parse_tf_config_finds_the_chief():
    info = parse_tf_config(json.dumps({"cluster": TWO_WORKERS, "task": {"type": "worker", "index": 1}}))
    assert (info.task_index, info.num_workers, info.address, info.is_chief) == (1, 2, "127.0.0.1:2223", False)
    chief = parse_tf_config(json.dumps({"cluster": {"chief": ["a:1"], **TWO_WORKERS}, "task": {"type": "chief"}}))
    assert chief.is_chief and chief.num_workers == 3
    assert not parse_tf_config(
        json.dumps({"cluster": {"chief": ["a:1"], **TWO_WORKERS}, "task": {"type": "worker", "index": 0}})
    ).is_chief


BAD_TF_CONFIGS = {
    "unset": ("", "needs the TF_CONFIG environment variable"),
    "malformed": ('{"cluster": {"worker": ["a:1"]}, "task": ', "TF_CONFIG is not valid JSON"),
    "no task": (json.dumps({"cluster": TWO_WORKERS}), "TF_CONFIG has no 'task'"),
    "index out of range": (
        json.dumps({"cluster": TWO_WORKERS, "task": {"type": "worker", "index": 2}}),
        "TF_CONFIG task index 2 is out of range: job 'worker' has 2 task",
    ),
    "unknown job": (
        json.dumps({"cluster": TWO_WORKERS, "task": {"type": "ps", "index": 0}}),
        "task type 'ps' is not a job of the cluster",
    ),
    "parameter servers": (
        json.dumps({"cluster": {"ps": ["a:1"], **TWO_WORKERS}, "task": {"type": "worker"}}),
        "cluster has job(s) ps",
    ),
    "bad address": (
        json.dumps({"cluster": {"worker": ["localhost"]}, "task": {"type": "worker"}}),
        "bad address 'localhost'",
    ),
}


@pytest.mark.parametrize("name", BAD_TF_CONFIGS)
def test_parse_tf_config_rejects(name):
    text, message = BAD_TF_CONFIGS[name]
    with pytest.raises(ClusterError, match=re.escape(message)):
        parse_tf_config(text)


def _one_line_error(code, stderr, message, status=2):
    assert code == status, stderr[-2000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], stderr[-2000:]
    assert "Traceback" not in stderr


@pytest.mark.parametrize("name", ["malformed", "no task", "index out of range"])
def test_train_rejects_a_bad_tf_config_before_tensorflow(tmp_path, name):
    text, message = BAD_TF_CONFIGS[name]
    started = time.monotonic()
    code, _, stderr = run(
        "tfzoo.train",
        "--config=configs/gpt_tiny.py",
        f"--workdir={tmp_path / 'w'}",
        MULTI_WORKER,
        env=environment(TF_CONFIG=text),
        timeout=60,
    )
    _one_line_error(code, stderr, message)
    assert time.monotonic() - started < 30
    assert not (tmp_path / "w").exists()


def test_a_port_in_use_is_named(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        tf_config = json.dumps(
            {"cluster": {"worker": [f"127.0.0.1:{port}", "127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}}
        )
        flags = ["--config=configs/gpt_tiny.py", f"--workdir={tmp_path / 'w'}", MULTI_WORKER]
        code, _, stderr = run("tfzoo.train", *flags, env=environment(TF_CONFIG=tf_config), timeout=60)
        _one_line_error(code, stderr, f"port {port} of this worker (worker 0, 127.0.0.1:{port} in TF_CONFIG)")
        code, stdout, stderr = run(
            "tfzoo.launch", "--num_workers=2", f"--port={port}", "--", "--config=configs/gpt_tiny.py", timeout=60
        )
        _one_line_error(code, stderr, f"port {port} is already in use")
        assert "[worker" not in stdout  # nothing was started


def test_an_unreachable_worker_ends_in_bounded_time(tmp_path):
    text = write_toy_text(tmp_path / "toy.txt")
    port_0, port_1 = free_ports(2)
    tf_config = json.dumps(
        {"cluster": {"worker": [f"127.0.0.1:{port_0}", f"127.0.0.1:{port_1}"]}, "task": {"type": "worker", "index": 0}}
    )
    started = time.monotonic()
    code, _, stderr = run(
        "tfzoo.train",
        *tiny_args(text, tmp_path / "w", MULTI_WORKER),
        env=environment(TF_CONFIG=tf_config, TFZOO_STARTUP_TIMEOUT="4"),
        timeout=90,
    )
    # The wait holds the GIL: a watchdog process prints the error and SIGKILLs the worker.
    _one_line_error(code, stderr, "worker 0 could not join the 2-worker cluster of TF_CONFIG within 4 s", -9)
    assert time.monotonic() - started < 60
    assert read_metrics(tmp_path / "w") == []


def test_launch_fails_when_its_workers_fail(tmp_path):
    code, stdout, stderr = run(
        "tfzoo.launch",
        "--num_workers=2",
        "--startup_timeout=60",
        "--",
        "--config=configs/gpt_tiny.py",
        f"--workdir={tmp_path / 'w'}",
        f"--config.dataset=text:{tmp_path / 'missing.txt'}",
        timeout=120,
    )
    assert code == 2, (stdout[-2000:], stderr[-2000:])
    assert "[worker 0] error:" in stdout and "missing.txt" in stdout
    assert "[launch] worker" in stderr and "exited with status 2" in stderr


def test_launch_usage_errors():
    code, _, stderr = run("tfzoo.launch", "--num_workers=0", "--", "--config=configs/gpt_tiny.py", timeout=30)
    _one_line_error(code, stderr, "--num_workers must be >= 1, got 0")
    code, _, stderr = run("tfzoo.launch", "--num_workers=2", timeout=30)
    _one_line_error(code, stderr, "no tfzoo.train flags")


@pytest.mark.parametrize("index", [0, 1])
def test_the_kubernetes_manifest_gives_each_pod_a_valid_tf_config(index):
    with open(os.path.join(REPO, "deploy", "k8s", "tfzoo-multi-worker.yaml"), encoding="utf-8") as f:
        export = next(line.strip() for line in f if "export TF_CONFIG=" in line)
    env = dict(os.environ, JOB_COMPLETION_INDEX=str(index))
    tf_config = subprocess.run(
        ["sh", "-c", f'{export}; printf %s "$TF_CONFIG"'],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    info = parse_tf_config(tf_config)
    assert (info.task_index, info.num_workers, info.is_chief) == (index, 2, index == 0)
    assert info.address == f"tfzoo-train-{index}.tfzoo-workers:2222"
