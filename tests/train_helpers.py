"""Helpers of the `python -m tfzoo.train` tests: a toy corpus and running the CLI. No TensorFlow import.

Example:
>>> import tempfile, os
>>> path = write_toy_text(os.path.join(tempfile.mkdtemp(), "toy.txt"))
>>> open(path).read().startswith("def ")
True
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_toy_text(path) -> str:
    """~60 KB of a tiny Python-like language: learnable in a few dozen steps."""
    rng = random.Random(0)
    names = ["alpha", "beta", "gamma", "delta", "total", "count", "value", "item"]
    lines = []
    for _ in range(1500):
        a, b = rng.sample(names, 2)
        n = rng.randint(0, 99)
        lines.append(f"def {a}_{n}({b}):\n    return {b} + {n}\n")
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(lines))
    return str(path)


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m tfzoo.train args...` from the repository root, on the CPU; output captured."""
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(
        [sys.executable, "-m", "tfzoo.train", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def printed_evaluations(stdout: str) -> list[int]:
    """The steps of the evaluation lines `python -m tfzoo.train` printed (`step 30/40 - loss ...`), in order.

    Example:
    >>> printed_evaluations("step 30/40 - loss 2.1 - val_loss 2.0\\ndone: step 40, val_loss 2.0")
    [30]
    """
    return [int(step) for step in re.findall(r"^step (\d+)/\d+ - ", stdout, re.MULTILINE)]


def read_metrics(workdir) -> list[dict]:
    """The records of `workdir`'s metrics.jsonl ([] before the first evaluation)."""
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
