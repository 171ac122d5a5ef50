"""Reproduces the Keras bugs tfzoo/training/keras_patches.py works around; run as a script, prints JSON.

`python tests/keras_patch_checks.py` makes a MultiWorkerMirroredStrategy
over two local CPU devices and then tells it that it spans two workers
(what Keras and tf.distribute's reduction look at); no collective op runs,
so nothing waits for a second worker. For each bug it prints the error unpatched Keras raises (None if
it no longer does), and whether the patch lets the step through.
tests/test_training_keras_patches.py runs it in a subprocess: the logical
devices must be set before TensorFlow initializes.

Example:
>>> import subprocess, sys  # doctest: +SKIP
>>> subprocess.run([sys.executable, "tests/keras_patch_checks.py"], capture_output=True).stdout  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os


def _error(call) -> str | None:
    try:
        call()
    except Exception as error:  # noqa: BLE001 (whatever Keras raises is the finding)
        return f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
    return None


def main() -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer as tf_trainer

    from tfzoo.training import keras_patches

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    clipped_steps = _clipped_steps(keras, tf, keras_patches)  # before the pretence below
    strategy = tf.distribute.MultiWorkerMirroredStrategy._from_local_devices(["/cpu:0", "/cpu:1"])

    def compiled_model():
        with strategy.scope():
            model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
            model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
        return model

    dataset = tf.data.Dataset.from_tensor_slices((tf.zeros((8, 3)), tf.zeros((8, 1)))).batch(4)
    iterators = [
        tf_trainer.TFEpochIterator(x=dataset, distribute_strategy=strategy, steps_per_epoch=1) for _ in range(2)
    ]
    scalar = strategy.run(lambda: tf.constant(2.0))  # a PerReplica scalar, as a step's loss is
    unpatched_reduce = tf_trainer.reduce_per_replica
    unpatched, patched = compiled_model(), compiled_model()
    keras_patches.build_from_local_batch(patched, strategy, dataset)  # creates variables: before the pretence
    # What Keras and the reduction look at. From here on nothing may create variables or iterate a
    # distributed dataset: those would wait for the second worker.
    strategy.extended._num_workers = 2

    report = {"keras_version": keras.__version__, "target": keras_patches.TARGET_KERAS_VERSION}
    report["scalar_mean"] = _error(lambda: unpatched_reduce(scalar, strategy, "mean"))
    report["build_from_distributed_batch"] = _error(lambda: unpatched._maybe_symbolic_build(iterators[0]))
    report["patched_build"] = _error(lambda: patched._maybe_symbolic_build(iterators[1]))
    report["patched_built"] = bool(patched._compile_loss.built and patched._compile_metrics.built)
    report["reduce_patched"] = getattr(tf_trainer.reduce_per_replica, "_tfzoo_patched", False)
    report["clipped_steps"] = clipped_steps
    return report


def _clipped_steps(keras, tf, keras_patches) -> dict:
    """Norm of one SGD step (learning rate 1, `global_clipnorm` 1) whose global-batch gradient has norm 2.

    A linear model `y = w . x` with w = 0 and the loss `-mean(y)`: its gradient
    is minus the mean input, (0, 2) for the batch below, whose two halves (one
    per replica) both have mean (0, 2). Clipped as on one device the step has
    norm 1; clipped per replica before the sum, each replica's half-weighted
    gradient (norm 1) passes unclipped and the step has norm 2.
    """

    class PatchedSGD(keras_patches.ClipAfterAllReduce, keras.optimizers.SGD):
        pass

    inputs = tf.constant([[1.0, 2.0], [-1.0, 2.0], [1.0, 2.0], [-1.0, 2.0]])
    steps = {}
    for strategy_name, strategy in [
        ("one_device", tf.distribute.OneDeviceStrategy("/cpu:0")),
        ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])),
    ]:
        for optimizer_name, optimizer_class in [("keras", keras.optimizers.SGD), ("patched", PatchedSGD)]:
            with strategy.scope():
                model = keras.Sequential(
                    [keras.Input((2,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")]
                )
                model.compile(optimizer=optimizer_class(learning_rate=1.0, global_clipnorm=1.0), loss=lambda _, y: -y)
            model.fit(inputs, tf.zeros((4, 1)), batch_size=4, epochs=1, shuffle=False, verbose=0)
            steps[f"{strategy_name}_{optimizer_name}"] = float(tf.norm(model.get_weights()[0]))
    return steps


if __name__ == "__main__":
    print(json.dumps(main()))
