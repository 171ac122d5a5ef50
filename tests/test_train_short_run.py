"""A short trial run of the default config: `--config.train_steps=60 --config.eval_every=30` trains and resumes.

The default config warms up for 100 steps; a 60-step run clamps the warmup
to 60 (one log line, recorded in config.json) instead of failing. The run is
then cut back to its step-30 checkpoint (what a kill after that evaluation
leaves) and the same command resumes from there instead of starting again.
"""

import json
import os

from tfzoo.run_folder import RunFolder
from train_helpers import printed_evaluations, read_metrics, run_cli, write_toy_text

# The command, made fast: a toy corpus and a small model (the default config otherwise).
FAST = [
    "--config.seq_len=32",
    "--config.batch_size=8",
    "--config.num_layers=1",
    "--config.hidden_dim=32",
    "--config.intermediate_dim=64",
    "--config.eval_steps=1",
    "--config.sample_length=0",
    "--config.jit_compile=False",
]


def test_short_run_clamps_the_warmup_trains_and_resumes(tmp_path):
    folder = RunFolder(str(tmp_path / "run"))
    args = [
        "--config.train_steps=60",
        "--config.eval_every=30",
        f"--workdir={folder.workdir}",
        f"--config.dataset=text:{write_toy_text(tmp_path / 'toy.txt')}",
        *FAST,
    ]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stderr.count("warmup_steps (100) is clamped to train_steps (60)") == 1, first.stderr[-3000:]
    with open(folder.config_path, encoding="utf-8") as f:
        assert json.load(f)["warmup_steps"] == 60
    records = read_metrics(folder.workdir)
    assert [r["step"] for r in records] == [30, 60]

    os.remove(os.path.join(folder.checkpoints_dir, "ckpt-00000060.npz"))  # as if killed after step 30
    os.remove(folder.model_path)
    second = run_cli(*args)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming from step 30" in second.stderr
    assert printed_evaluations(second.stdout) == [60]  # no retraining from scratch
    resumed = read_metrics(folder.workdir)
    assert [r["step"] for r in resumed] == [30, 60] and resumed[0] == records[0]
    assert os.path.isfile(folder.model_path)
