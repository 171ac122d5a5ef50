"""Latency of calls in turn, for the bench scripts that time runtimes beside a peer.

Used by bench/bert_embed.py and bench/t5_export.py:


>>> median, fastest = timed_ms({"noop": lambda: None}, repeats=3)
>>> sorted(median) == ["noop"] and fastest["noop"] <= median["noop"]
True
"""

from __future__ import annotations

import time

import numpy as np


def timed_ms(systems: dict, repeats: int, rounds: int = 3) -> tuple[dict, dict]:
    """Median and fastest wall time (ms) of one call per system: `rounds` rounds, each system timed in turn.

    In each round a system runs 2 untimed calls, then `repeats // rounds` timed ones: a load that
    comes and goes on a shared machine falls on every system alike, and the threads a runtime leaves
    spinning after its calls (ONNX Runtime's and XNNPACK's pools) have stopped before the next
    system's timed calls.
    """
    times = {name: [] for name in systems}
    for _ in range(rounds):
        for name, call in systems.items():
            for _ in range(2):
                call()
            for _ in range(max(repeats // rounds, 1)):
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
    median = {name: round(float(np.median(t)) * 1e3, 2) for name, t in times.items()}
    return median, {name: round(float(np.min(t)) * 1e3, 2) for name, t in times.items()}
