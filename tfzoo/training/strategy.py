"""Picks the `tf.distribute` strategy a run config names, and the worker's place in a cluster.

`multi_worker` reads the cluster from `TF_CONFIG` (what `python -m tfzoo.launch`
sets, or one per host on a real cluster) and checks it before TensorFlow
sees it: malformed JSON, a missing task, an index out of range or this
worker's port already in use fail at once with one line. Joining the cluster
is bounded by a deadline (`TFZOO_STARTUP_TIMEOUT` seconds, 120 by default):
TensorFlow waits for missing workers forever and ignores SIGTERM meanwhile,
so a worker that cannot reach the others prints `error: ...` and is killed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import tensorflow as tf

from tfzoo.training.validate import (
    SINGLE_PROCESS,
    STRATEGIES,
    UNSUPPORTED_STRATEGIES,
    ClusterError,
    TaskInfo,
    check_tf_config,
    parse_tf_config,
)

STARTUP_TIMEOUT_ENV = "TFZOO_STARTUP_TIMEOUT"
DEFAULT_STARTUP_TIMEOUT = 120.0


_WATCHDOG = """
import os, signal, sys, time
parent, seconds, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    time.sleep(0.2)
    if os.getppid() != parent:  # the parent is gone
        sys.exit(0)
sys.stderr.write("error: " + message + "\\n")
sys.stderr.flush()
os.kill(parent, signal.SIGKILL)
"""


@contextlib.contextmanager
def deadline(seconds: float, message: str):
    """Kills this process, after printing `error: <message>`, if the block lasts longer than `seconds`.

    For waits TensorFlow does not bound (joining a cluster whose peers never
    come). That wait holds the GIL and ignores SIGTERM, so neither a Python
    thread nor a signal handler can end it: a small watchdog process does
    (the worker then ends by SIGKILL, status -9).
    """
    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(seconds), message])
    try:
        yield
    finally:
        watchdog.kill()
        watchdog.wait()


def startup_timeout() -> float:
    """Seconds a worker may wait for the cluster (`TFZOO_STARTUP_TIMEOUT`, default 120)."""
    value = os.environ.get(STARTUP_TIMEOUT_ENV, "")
    try:
        seconds = float(value) if value else DEFAULT_STARTUP_TIMEOUT
    except ValueError:
        raise ClusterError(f"{STARTUP_TIMEOUT_ENV} must be a number of seconds, got {value!r}") from None
    if not seconds > 0:
        raise ClusterError(f"{STARTUP_TIMEOUT_ENV} must be > 0, got {value!r}")
    return seconds


def configure_cpu_devices(num_cpu_devices: int) -> None:
    """Splits the host CPU into `num_cpu_devices` logical devices (for `mirrored` on a CPU).

    Must run before TensorFlow initializes its devices (before any TF op);
    afterwards it only succeeds if the devices already have that count.

    Args:
        num_cpu_devices: int. Logical CPU devices wanted; 1 leaves the CPU alone.

    Raises:
        ValueError: the runtime is already initialized with another count.
    """
    if num_cpu_devices <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    logical = [tf.config.LogicalDeviceConfiguration() for _ in range(num_cpu_devices)]
    try:
        tf.config.set_logical_device_configuration(cpu, logical)
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have != num_cpu_devices:
            raise ValueError(
                f"num_cpu_devices={num_cpu_devices} cannot be set: TensorFlow already runs with "
                f"{have} CPU device(s) in this process (set it before any TensorFlow op)"
            ) from None


def _multi_worker_strategy() -> tf.distribute.Strategy:
    task = check_tf_config(os.environ.get("TF_CONFIG"))
    seconds = startup_timeout()
    message = (
        f"{task.task_type} {task.task_index} could not join the {task.num_workers}-worker cluster of "
        f"TF_CONFIG within {seconds:g} s (a worker is unreachable or not started; set "
        f"{STARTUP_TIMEOUT_ENV} to wait longer)"
    )
    with deadline(seconds, message):
        # All gradients in one all-reduce per step (by default one per variable, ~10x slower on CPUs).
        options = tf.distribute.experimental.CommunicationOptions(bytes_per_pack=64 * 1024 * 1024)
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        # The first collective: returns once every worker is up and connected.
        strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)
    return strategy


def _tpu_strategy(tpu_address: str) -> tf.distribute.Strategy:
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        message = f"distribution_strategy 'tpu' found no TPU at tpu_address={tpu_address!r}: {first_line}"
        raise ValueError(message) from None
    return tf.distribute.TPUStrategy(resolver)


def make_strategy(name: str, num_cpu_devices: int = 1, tpu_address: str = "local") -> tf.distribute.Strategy:
    """Builds a distribution strategy.

    Args:
        name: str. `auto` (all GPUs mirrored if more than one, else the default
            strategy), `one_device` (first GPU, else the CPU), `mirrored` (all
            GPUs, else all logical CPU devices), `multi_worker`
            (MultiWorkerMirroredStrategy over the cluster of `TF_CONFIG`;
            waits at most `TFZOO_STARTUP_TIMEOUT` seconds for the other
            workers), `tpu` (TPUStrategy on the TPU at `tpu_address`).
        num_cpu_devices: int. Logical CPU devices to create first (see
            `configure_cpu_devices`). Defaults to 1.
        tpu_address: str. TPUClusterResolver's `tpu`: a TPU name, a
            `grpc://` address or `local` (a TPU VM). Defaults to "local".

    Returns:
        tf.distribute.Strategy. Build the model and optimizer under its `scope()`.

    Raises:
        ValueError: unknown or unsupported strategy, a bad `TF_CONFIG`
            (`ClusterError`), or no TPU.

    Example:
    >>> make_strategy("one_device").num_replicas_in_sync
    1
    """
    if name in UNSUPPORTED_STRATEGIES:
        raise ValueError(f"distribution_strategy {name!r} is not supported: {UNSUPPORTED_STRATEGIES[name]}")
    if name not in STRATEGIES:
        raise ValueError(f"unknown distribution_strategy {name!r}; expected one of {', '.join(STRATEGIES)}")
    if name == "multi_worker":
        return _multi_worker_strategy()
    if name == "tpu":
        return _tpu_strategy(tpu_address)
    configure_cpu_devices(num_cpu_devices)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy((gpus or tf.config.list_logical_devices("CPU"))[0].name)
    devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    return tf.distribute.MirroredStrategy(devices=devices)


def task_info(strategy: tf.distribute.Strategy) -> TaskInfo:
    """This process's place in the job: `SINGLE_PROCESS` unless `strategy` spans several workers."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return SINGLE_PROCESS
    return parse_tf_config(os.environ.get("TF_CONFIG"))


def all_gather_int(strategy: tf.distribute.Strategy, value: int) -> list[int]:
    """`value` of every replica, in replica order (a collective: every worker must call it)."""

    def replica_fn():
        return tf.distribute.get_replica_context().all_gather(tf.constant([value], tf.int64), axis=0)

    gathered = strategy.experimental_local_results(strategy.run(tf.function(replica_fn)))[0]
    return [int(v) for v in gathered.numpy()]


def supports_jit_compile(strategy: tf.distribute.Strategy) -> bool:
    """Whether XLA can compile a train step under `strategy`.

    XLA cannot run a step that reads variables mirrored over several logical
    CPU devices ("Trying to access resource ... located in device CPU:1 from
    device CPU:0"); GPUs and single devices are fine.

    Example:
    >>> supports_jit_compile(tf.distribute.get_strategy())
    True
    """
    if strategy.num_replicas_in_sync == 1:
        return True
    return not any("CPU" in device.upper() for device in strategy.extended.worker_devices)
