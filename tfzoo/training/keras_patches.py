"""Workarounds for Keras bugs: the one module of tfzoo that patches private Keras internals.

They target Keras 3.15 (`TARGET_KERAS_VERSION`; tested with 3.15.1) and only
`model.fit` under MultiWorkerMirroredStrategy (docs/distributed.md):

1. `patch_multi_worker_mean`: `fit` averages each step's scalar loss and
   metrics with `strategy.reduce("MEAN", v, axis=0)`, which fails for
   scalars ("Invalid reduction dimension 0 for input with 0 dimensions").
2. `build_from_local_batch`: `fit` builds the compiled loss and metrics from
   the first distributed batch averaged with `strategy.reduce`, which
   MultiWorkerMirroredStrategy cannot do for an `(inputs, labels)` tuple
   ("Attempt to convert a value (PerReplica...)").

tests/test_training_keras_patches.py reproduces each bug on unpatched Keras
and fails once Keras fixes it: then the patch and its test go.

Example:
>>> TARGET_KERAS_VERSION
'3.15'
"""

from __future__ import annotations

import keras
import tensorflow as tf
from absl import logging

TARGET_KERAS_VERSION = "3.15"


def _check_version() -> None:
    if not keras.__version__.startswith(TARGET_KERAS_VERSION + "."):
        logging.warning(
            "tfzoo's Keras patches target Keras %s, this is %s; tests/test_training_keras_patches.py says whether "
            "they are still needed",
            TARGET_KERAS_VERSION,
            keras.__version__,
        )


def patch_multi_worker_mean() -> None:
    """Makes Keras average per-replica scalar metric values over a multi-worker strategy (bug 1).

    A scalar's mean over the replicas is the reduction with `axis=None`.
    Other strategies, reductions and non-scalar values are left to Keras.
    Patching twice changes nothing.
    """
    from keras.src.backend.tensorflow import trainer as tf_trainer  # noqa: PLC0415 (a private Keras module)

    original = tf_trainer.reduce_per_replica
    if getattr(original, "_tfzoo_patched", False):
        return
    _check_version()

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(strategy):

            def mean(value):
                local = value.values[0] if isinstance(value, tf.distribute.DistributedValues) else value
                if tf.is_tensor(local) and local.shape.rank == 0:  # one local replica: a plain tensor
                    return strategy.reduce("MEAN", value, axis=None)
                return original(value, strategy, reduction)

            return tf.nest.map_structure(mean, values)
        return original(values, strategy, reduction)

    reduce_per_replica._tfzoo_patched = True
    tf_trainer.reduce_per_replica = reduce_per_replica


def build_from_local_batch(model: keras.Model, strategy: tf.distribute.Strategy, dataset: tf.data.Dataset) -> None:
    """Builds `model`'s compiled loss and metrics from one local batch of `dataset` (bug 2), and patches bug 1.

    Only the shapes matter, so a batch read locally does what Keras's build
    from the averaged distributed batch would; `fit`'s own build is then
    skipped for this model.
    """
    patch_multi_worker_mean()
    batch = next(iter(dataset.take(1)))
    with strategy.scope():
        model._symbolic_build(data_batch=batch)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
