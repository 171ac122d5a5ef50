"""Checks every tfzoo layer gets the same way (config round trip, .keras reload, gradients).

Use non-default constructor arguments when calling these, so that a field
forgotten in ``get_config()`` makes the round trip fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf


def check_config_round_trip(layer: keras.layers.Layer) -> keras.layers.Layer:
    """`from_config(get_config())` rebuilds a layer with the very same config."""
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config, (clone.get_config(), config)
    serialized = keras.saving.serialize_keras_object(layer)
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is type(layer)
    assert revived.get_config() == config
    return clone


def check_keras_save_reload(
    layer: keras.layers.Layer,
    inputs: dict[str, Any] | list[Any],
    tmp_path: os.PathLike,
    call: Callable[[keras.layers.Layer, Any], Any] | None = None,
    atol: float = 1e-6,
) -> None:
    """Wraps `layer` in a model, saves it as `.keras` and checks the reload gives equal outputs.

    `inputs` is a list of numpy arrays passed positionally to the layer.
    """
    call = call or (lambda lyr, xs: lyr(*xs))
    symbolic = [keras.Input(shape=np.shape(x)[1:], dtype=np.asarray(x).dtype.name) for x in inputs]
    outputs = call(layer, symbolic)
    model = keras.Model(symbolic, outputs)
    expected = model(list(inputs))
    path = os.path.join(str(tmp_path), "layer.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    actual = reloaded(list(inputs))
    for e, a in zip(tf.nest.flatten(expected), tf.nest.flatten(actual)):
        np.testing.assert_allclose(np.asarray(e), np.asarray(a), atol=atol)


def check_gradients_flow(layer: keras.layers.Layer, fn: Callable[[], tf.Tensor]) -> None:
    """Every trainable weight of `layer` gets a finite, non-zero gradient from `fn()`."""
    with tf.GradientTape() as tape:
        out = fn()
        loss = tf.reduce_sum(tf.square(tf.cast(out, tf.float32)))
    weights = layer.trainable_weights
    assert weights, f"{layer.name} has no trainable weights"
    grads = tape.gradient(loss, [w.value for w in weights])
    for w, g in zip(weights, grads):
        assert g is not None, f"no gradient reaches {w.path}"
        g = np.asarray(tf.convert_to_tensor(g))
        assert np.all(np.isfinite(g)), f"non-finite gradient for {w.path}"
        assert np.any(g != 0), f"zero gradient for {w.path}"
