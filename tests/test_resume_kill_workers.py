"""`kill -9` of one worker of a two-worker job (tfzoo.launch), then the same command again.

The launcher sees the dead worker, stops the other one and fails; the re-run
resumes from the chief's last checkpoint and ends at the same step as an
uninterrupted single-process run of the same config, validation loss within 1%.
"""

import os
import signal
import time

import pytest

from distributed_checks import (
    KILL_TEST_STEPS as STEPS,
)
from distributed_checks import (
    assert_resumed,
    finish,
    read_metrics,
    start,
    tiny_args,
    wait_for_evaluations,
    worker_pids,
    write_toy_text,
)


def test_kill_nine_of_a_worker_then_rerun_resumes(tmp_path):
    text = write_toy_text(tmp_path / "toy.txt")
    args = {name: tiny_args(text, tmp_path / name, f"--config.train_steps={STEPS}") for name in "AC"}
    launch = ["--num_workers=2", "--startup_timeout=90", "--"]
    reference_run = start("tfzoo.train", *args["A"])
    workers = start("tfzoo.launch", *launch, *args["C"])
    try:
        wait_for_evaluations(tmp_path / "C", 2, workers, timeout=150)
        pids = worker_pids(workers)
        assert sorted(pids) == [0, 1]
        os.kill(pids[1], signal.SIGKILL)
        started = time.monotonic()
        code, _, stderr = finish(workers, 60)
        assert code != 0 and "[launch] worker 1 was killed by signal 9; stopping the other workers" in stderr
        assert time.monotonic() - started < 30
        with pytest.raises(ProcessLookupError):
            os.kill(pids[0], 0)  # the launcher stopped worker 0
        killed_at = read_metrics(tmp_path / "C")[-1]["step"]
        assert killed_at < STEPS

        code, stdout, stderr = finish(start("tfzoo.launch", *launch, *args["C"]), 150)
        assert code == 0, (stdout[-3000:], stderr[-3000:])
        code, _, reference_stderr = finish(reference_run, 150)
        assert code == 0, reference_stderr[-3000:]
        reference = read_metrics(tmp_path / "A")
        val_loss = assert_resumed(tmp_path / "C", reference, stdout, stdout)  # workers' stderr is in the stream
        assert stdout.count(f"done: step {STEPS},") == 2
        print({"killed_at": killed_at, "reference": reference[-1]["val_loss"], "resumed": val_loss})
    finally:
        for process in (reference_run, workers):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
