"""What the bench scripts share: latency of calls in turn, and the machine a figure was taken on.

`timed_ms` times runtimes beside a peer (bench/bert_embed.py, bench/t5_export.py); `machine` is the
`"machine"` entry of every bench script's JSON line (processor, cores, load, package versions), so
figures from different runs say the same things about where they came from. A script imports it
from its own folder (`from timing import machine`: a script's folder is on `sys.path`).

>>> median, fastest = timed_ms({"noop": lambda: None}, repeats=3)
>>> sorted(median) == ["noop"] and fastest["noop"] <= median["noop"]
True
>>> facts = machine("numpy")
>>> facts["cpus"] == os.cpu_count() and facts["versions"]["numpy"] == np.__version__
True
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
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


def machine(*packages: str) -> dict:
    """The machine and software a bench figure comes from: processor, cores, load average, `packages`' versions.

    The load average (1, 5, 15 minutes) is read when called: on a shared machine it says how loaded
    the run was. A package that is not installed is reported as None.
    """
    versions = {}
    for package in packages:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "versions": versions,
    }
