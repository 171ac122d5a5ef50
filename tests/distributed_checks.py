"""Helpers of the distributed-training tests: subprocesses that never outlive their test.

Every job runs in its own process group (`start_new_session`), so a timeout
or a failed assertion kills the launcher and all its workers together.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from train_helpers import REPO, read_metrics, write_toy_text  # noqa: F401 (re-exported for the distributed tests)


def tiny_args(text: str, workdir, *extra: str) -> list[str]:
    """`tfzoo.train` flags of a tiny GPT run on `text` (dropout 0, no samples)."""
    return [
        "--config=configs/gpt_tiny.py",
        f"--workdir={workdir}",
        f"--config.dataset=text:{text}",
        "--config.train_steps=40",
        "--config.eval_every=10",
        "--config.eval_steps=2",
        "--config.dropout=0.0",
        "--config.sample_length=0",
        *extra,
    ]


def environment(**extra: str) -> dict:
    return dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", **extra)


def start(module: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    """`python -m module args...` in a new process group; output goes to temporary files (no pipe fills up)."""
    stdout, stderr = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=env or environment(),
        stdout=stdout,
        stderr=stderr,
        text=True,
        start_new_session=True,
    )
    process.output_files = (stdout, stderr)
    return process


def kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _read(file) -> str:
    file.seek(0)
    text = file.read()
    file.close()
    return text


def finish(process: subprocess.Popen, timeout: float) -> tuple[int, str, str]:
    """Waits for `process` (killing its group after `timeout` s); returns (returncode, stdout, stderr)."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        process.wait()
        stdout, stderr = (_read(f) for f in process.output_files)
        raise AssertionError(f"timed out after {timeout} s:\n{stdout[-2000:]}\n{stderr[-2000:]}") from None
    finally:
        kill_group(process)  # whatever it left running (a launcher's workers)
    stdout, stderr = (_read(f) for f in process.output_files)
    return process.returncode, stdout, stderr


def run(module: str, *args: str, env: dict | None = None, timeout: float = 170) -> tuple[int, str, str]:
    return finish(start(module, *args, env=env), timeout)


def worker_pids(launcher: subprocess.Popen) -> dict[int, int]:
    """{worker index: pid} of a running `tfzoo.launch`, read from its children's TF_CONFIG."""
    with open(f"/proc/{launcher.pid}/task/{launcher.pid}/children", encoding="utf-8") as f:
        children = [int(pid) for pid in f.read().split()]
    pids = {}
    for pid in children:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/environ", "rb") as f:
            variables = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v)
            if b"TF_CONFIG" in variables:
                pids[json.loads(variables[b"TF_CONFIG"])["task"]["index"]] = pid
    return pids


def wait_for_evaluations(workdir, count: int, process: subprocess.Popen, timeout: float) -> list[dict]:
    """Polls `metrics.jsonl` until it has `count` records (fails if `process` ends or time runs out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = read_metrics(workdir)
        if len(records) >= count:
            return records
        if process.poll() is not None:
            raise AssertionError(f"the run ended (status {process.returncode}) before {count} evaluations")
        time.sleep(0.02)
    raise AssertionError(f"no {count} evaluations within {timeout} s")


KILL_TEST_STEPS = 60  # the kill -9 tests' run length (an evaluation and checkpoint every 10 steps)


def assert_resumed(workdir, reference: list[dict], stdout: str, log: str) -> float:
    """Checks a re-run ended at step KILL_TEST_STEPS after resuming, with the reference's val loss (1%)."""
    records = read_metrics(workdir)
    assert [r["step"] for r in records] == list(range(10, KILL_TEST_STEPS + 1, 10)), records
    assert "resuming from step" in log, log[-2000:]
    assert f"done: step {KILL_TEST_STEPS}," in stdout
    assert records[-1]["val_loss"] == pytest.approx(reference[-1]["val_loss"], rel=0.01)
    return records[-1]["val_loss"]
