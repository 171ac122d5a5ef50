"""Runs a multi-worker training job on this machine: `python -m tfzoo.launch --num_workers=N -- <tfzoo.train flags>`.

Starts N `python -m tfzoo.train ... --config.distribution_strategy=multi_worker` processes,
each with the `TF_CONFIG` of one worker of a cluster on free loopback ports
(or `--port`, `--port + 1`, ...), and streams their output line by line
prefixed `[worker i]`. If a worker fails, the others are stopped (SIGTERM,
then SIGKILL: TensorFlow ignores SIGTERM while it waits for a peer) and the
launcher exits with that worker's status (1 if it was killed by a signal).
Each worker gives up joining the cluster after `--startup_timeout` seconds.
Running the same command again resumes from the chief's last checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from absl import app, flags

from tfzoo.cli import print_error
from tfzoo.training.validate import port_in_use  # TensorFlow-free: the launcher starts in a moment

_NUM_WORKERS = flags.DEFINE_integer("num_workers", 2, "Worker processes to start (>= 1).")
_PORT = flags.DEFINE_integer("port", 0, "First port of the workers (worker i gets port + i); 0 = free ports.")
_STARTUP_TIMEOUT = flags.DEFINE_float(
    "startup_timeout", 120.0, "Seconds each worker may wait for the others to join the cluster."
)
_HOST = "127.0.0.1"
_GRACE_SECONDS = 5.0  # between SIGTERM and SIGKILL when stopping workers


class LaunchError(ValueError):
    """The job cannot be started as asked."""


def _fail(message: str) -> None:
    sys.exit(print_error(message))


def free_ports(count: int) -> list[int]:
    """`count` distinct ports nothing listens on (held open together while picked)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((_HOST, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def check_ports(ports: list[int]) -> None:
    """Raises LaunchError naming the first of `ports` that is out of range or in use."""
    for port in ports:
        if not 0 < port < 65536:
            raise LaunchError(f"port {port} is out of range (1..65535)")
        if port_in_use(port):
            raise LaunchError(f"port {port} is already in use; pick another --port or leave it 0 for free ports")


def tf_configs(ports: list[int]) -> list[str]:
    """The `TF_CONFIG` of each worker of a loopback cluster on `ports` (worker 0 is the chief).

    Example:
    >>> json.loads(tf_configs([2222, 2223])[1])["task"]
    {'type': 'worker', 'index': 1}
    """
    cluster = {"worker": [f"{_HOST}:{port}" for port in ports]}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(len(ports))]


def _stream(index: int, pipe, lock: threading.Lock) -> None:
    for line in iter(pipe.readline, ""):
        with lock:
            sys.stdout.write(f"[worker {index}] {line.rstrip(chr(10))}\n")
            sys.stdout.flush()
    pipe.close()


def _stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM to every running worker, SIGKILL to those still alive after a grace period."""
    alive = [p for p in processes if p.poll() is None]
    for p in alive:
        p.terminate()
    deadline = time.monotonic() + _GRACE_SECONDS
    for p in alive:
        try:
            p.wait(timeout=max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_workers(num_workers: int, train_args: list[str], port: int = 0, startup_timeout: float = 120.0) -> int:
    """Runs the job to the end; returns 0 if every worker succeeded, else the first failure's status.

    Args:
        num_workers: int. Worker processes.
        train_args: list of str. Flags of `python -m tfzoo.train` (`--config=...`, `--workdir=...`, ...).
        port: int. First port (worker i gets `port + i`); 0 picks free ports. Defaults to 0.
        startup_timeout: float. Seconds each worker may wait for the others. Defaults to 120.

    Raises:
        LaunchError: bad arguments or a port in use.
    """
    if num_workers < 1:
        raise LaunchError(f"--num_workers must be >= 1, got {num_workers}")
    if not startup_timeout > 0:
        raise LaunchError(f"--startup_timeout must be > 0, got {startup_timeout}")
    ports = [port + i for i in range(num_workers)] if port else free_ports(num_workers)
    check_ports(ports)
    lock = threading.Lock()
    processes, threads = [], []
    command = [sys.executable, "-m", "tfzoo.train", *train_args, "--config.distribution_strategy=multi_worker"]
    try:
        for index, tf_config in enumerate(tf_configs(ports)):
            env = dict(os.environ, TF_CONFIG=tf_config, PYTHONUNBUFFERED="1")
            env["TFZOO_STARTUP_TIMEOUT"] = str(startup_timeout)
            process = subprocess.Popen(
                command,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                stdin=subprocess.DEVNULL,
            )
            processes.append(process)
            with lock:
                print(f"[launch] worker {index} pid {process.pid} at {_HOST}:{ports[index]}", flush=True)
            thread = threading.Thread(target=_stream, args=(index, process.stdout, lock), daemon=True)
            thread.start()
            threads.append(thread)
        status = 0
        while status == 0 and any(p.poll() is None for p in processes):
            for index, process in enumerate(processes):
                code = process.poll()
                if code:
                    how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                    with lock:
                        print(f"[launch] worker {index} {how}; stopping the other workers", file=sys.stderr, flush=True)
                    status = code if code > 0 else 1
                    break
            time.sleep(0.1)
        if status == 0:  # every worker ended; a failure may have come last
            failed = [(i, p.returncode) for i, p in enumerate(processes) if p.returncode]
            if failed:
                index, code = failed[0]
                how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                print(f"[launch] worker {index} {how}", file=sys.stderr, flush=True)
                status = code if code > 0 else 1
        return status
    finally:
        _stop(processes)  # also on Ctrl-C / SIGTERM of the launcher
        for thread in threads:
            thread.join(timeout=5)


def _parse_flags(argv: list[str]) -> list[str]:
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        _fail(e)


def _terminate(signum, frame):
    raise SystemExit(128 + signum)  # runs run_workers' `finally`, which stops the workers


def main(argv: list[str]) -> None:
    train_args = argv[1:]
    if not train_args:
        _fail("no tfzoo.train flags; usage: python -m tfzoo.launch --num_workers=N -- --config=... --workdir=...")
    signal.signal(signal.SIGTERM, _terminate)
    try:
        status = run_workers(_NUM_WORKERS.value, train_args, _PORT.value, _STARTUP_TIMEOUT.value)
    except LaunchError as e:
        _fail(e)
    sys.exit(status)


if __name__ == "__main__":
    app.run(main, flags_parser=_parse_flags)
