"""Workarounds for Keras bugs: the one module of tfzoo that patches private Keras internals.

They target Keras 3.15 (`TARGET_KERAS_VERSION`; tested with 3.15.1). The first
two concern only `model.fit` under MultiWorkerMirroredStrategy
(docs/distributed.md), the third every strategy with more than one replica:

1. `patch_multi_worker_mean`: `fit` averages each step's scalar loss and
   metrics with `strategy.reduce("MEAN", v, axis=0)`, which fails for
   scalars ("Invalid reduction dimension 0 for input with 0 dimensions").
2. `build_from_local_batch`: `fit` builds the compiled loss and metrics from
   the first distributed batch averaged with `strategy.reduce`, which
   MultiWorkerMirroredStrategy cannot do for an `(inputs, labels)` tuple
   ("Attempt to convert a value (PerReplica...)").
3. `ClipAfterAllReduce`: an optimizer's `global_clipnorm` clips each
   replica's share of the gradient before the replicas' shares are summed,
   so over N replicas it clips N partial gradients of about 1/N the norm:
   on two replicas a clip that binds on one device often does nothing.

tests/test_training_keras_patches.py reproduces each bug on unpatched Keras
and fails once Keras fixes it: then the patch and its test go.

Example:
>>> TARGET_KERAS_VERSION
'3.15'
"""

from __future__ import annotations

from typing import Any

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


class ClipAfterAllReduce:
    """Optimizer mixin: clipping acts on the all-reduced gradient, as on one device (bug 3).

    Keras's TensorFlow optimizer clips in `apply` (per replica) and sums the
    replicas' gradients later, in `_backend_update_step`. With this mixin
    first in the bases, clipping is deferred to right after that sum, so
    `global_clipnorm` (and `clipnorm`, `clipvalue`) see the gradient of the
    global batch on one device, mirrored replicas and workers alike. On one
    replica the sum is the gradient itself: nothing changes.

    Example:
    >>> class SGD(ClipAfterAllReduce, keras.optimizers.SGD):
    ...     pass
    >>> variable = keras.Variable([0.0, 0.0])
    >>> SGD(learning_rate=1.0, global_clipnorm=1.0).apply([keras.ops.array([3.0, 4.0])], [variable])
    >>> [round(float(x), 6) for x in variable.numpy()]
    [-0.6, -0.8]
    """

    def _clip_gradients(self, grads: list) -> list:
        return grads  # clipped in _backend_update_step, once summed over the replicas

    def _backend_update_step(self, grads: list, trainable_variables: list, learning_rate: Any) -> None:
        variables = [v.value if isinstance(v, keras.Variable) else v for v in trainable_variables]
        reduced = self._all_reduce_sum_gradients(list(zip(grads, variables)))
        clipped = super()._clip_gradients([grad for grad, _ in reduced])
        tf.__internal__.distribute.interim.maybe_merge_call(
            self._distributed_tf_update_step,
            self._distribution_strategy,
            list(zip(clipped, [variable for _, variable in reduced])),
            learning_rate,
        )
