"""`kill -9` of a single-process run, then the same command again: it resumes and ends like an uninterrupted run.

Two runs of one tiny config (60 steps, an evaluation and checkpoint every
10): A uninterrupted, B SIGKILLed after its second evaluation and re-run.
B reaches step 60 with A's validation loss (within 1%; in fact equal, since
batch i depends only on (seed, i)). tests/test_resume_kill_workers.py does
the same with one worker of a two-worker job.
"""

import os
import signal

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
    write_toy_text,
)


def test_kill_nine_then_rerun_resumes(tmp_path):
    text = write_toy_text(tmp_path / "toy.txt")
    args = {name: tiny_args(text, tmp_path / name, f"--config.train_steps={STEPS}") for name in "AB"}
    reference_run = start("tfzoo.train", *args["A"])
    single = start("tfzoo.train", *args["B"])
    try:
        wait_for_evaluations(tmp_path / "B", 2, single, timeout=120)
        os.kill(single.pid, signal.SIGKILL)
        code, _, _ = finish(single, 30)
        assert code == -signal.SIGKILL
        killed_at = read_metrics(tmp_path / "B")[-1]["step"]
        assert killed_at < STEPS  # killed mid-run, not after the end

        code, stdout, stderr = finish(start("tfzoo.train", *args["B"]), 150)
        assert code == 0, stderr[-3000:]
        code, _, reference_stderr = finish(reference_run, 150)
        assert code == 0, reference_stderr[-3000:]
        reference = read_metrics(tmp_path / "A")
        assert reference[-1]["step"] == STEPS
        val_loss = assert_resumed(tmp_path / "B", reference, stdout, stderr)
        print({"killed_at": killed_at, "reference": reference[-1]["val_loss"], "resumed": val_loss})
    finally:
        for process in (reference_run, single):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
