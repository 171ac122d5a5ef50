"""Runs a command and logs its memory over time: the RSS of its whole process tree, sampled every second.

    python bench/memory_timeline.py --log=/tmp/timeline.txt -- python -m export --workdir=DIR

The command's stderr lines (the export's progress lines) are written into the same log, each with its
time, between the samples, so a peak can be put next to the step that made it. The summary (last
lines, also printed): peak RSS of the tree (the sum over every live process: what the machine must
hold, children included, which `/usr/bin/time -v` does not give: it reports the largest single
process), the peak of the largest process, wall time, and CPU time (user + system) of the tree.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import threading
import time

import psutil


def _tree_rss(process: psutil.Process) -> tuple[int, int]:
    """(sum of RSS over `process` and its descendants, RSS of the largest of them), in bytes."""
    total = largest = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    for member in members:
        try:
            rss = member.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += rss
        largest = max(largest, rss)
    return total, largest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log", required=True, help="Timeline file to write.")
    parser.add_argument("--interval", type=float, default=1.0, help="Seconds between samples.")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="The command, after `--`.")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    started = time.time()
    lock = threading.Lock()
    peak = {"tree": 0, "process": 0, "tree_at": 0.0}
    with open(args.log, "w", encoding="utf-8") as log:

        def write(line: str) -> None:
            with lock:
                log.write(f"{time.time() - started:8.1f}s {line}\n")
                log.flush()

        child = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, errors="replace")
        root = psutil.Process(child.pid)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                tree, largest = _tree_rss(root)
                if tree > peak["tree"]:
                    peak["tree"], peak["tree_at"] = tree, time.time() - started
                peak["process"] = max(peak["process"], largest)
                write(f"rss tree {tree / 2**20:8.0f} MB  largest {largest / 2**20:8.0f} MB")
                done.wait(args.interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        for line in child.stderr:
            sys.stderr.write(line)
            write("| " + line.rstrip("\n"))
        status = child.wait()
        done.set()
        sampler.join()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        summary = (
            f"peak tree RSS {peak['tree'] / 2**30:.2f} GB at {peak['tree_at']:.0f} s; "
            f"largest process {peak['process'] / 2**30:.2f} GB; wall {time.time() - started:.0f} s; "
            f"CPU user {usage.ru_utime:.0f} s + sys {usage.ru_stime:.0f} s; exit {status}"
        )
        write(summary)
    print(summary)
    return status


if __name__ == "__main__":
    sys.exit(main())
