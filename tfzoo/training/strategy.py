"""Picks the `tf.distribute` strategy a run config names."""

from __future__ import annotations

import tensorflow as tf

from tfzoo.training.validate import STRATEGIES, UNSUPPORTED_STRATEGIES


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


def make_strategy(name: str, num_cpu_devices: int = 1) -> tf.distribute.Strategy:
    """Builds a distribution strategy.

    Args:
        name: str. `auto` (all GPUs mirrored if more than one, else the default
            strategy), `one_device` (first GPU, else the CPU), `mirrored` (all
            GPUs, else all logical CPU devices). `multi_worker` and `tpu` are
            not supported yet.
        num_cpu_devices: int. Logical CPU devices to create first (see
            `configure_cpu_devices`). Defaults to 1.

    Returns:
        tf.distribute.Strategy. Build the model and optimizer under its `scope()`.

    Raises:
        ValueError: unknown or unsupported strategy.

    Example:
    >>> make_strategy("one_device").num_replicas_in_sync
    1
    """
    if name in UNSUPPORTED_STRATEGIES:
        raise ValueError(f"strategy {name!r} is not yet supported (use auto, one_device or mirrored)")
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}")
    configure_cpu_devices(num_cpu_devices)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy((gpus or tf.config.list_logical_devices("CPU"))[0].name)
    devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    return tf.distribute.MirroredStrategy(devices=devices)


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
