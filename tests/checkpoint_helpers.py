"""A small compiled Keras model with every kind of training state, for the checkpoint tests.

Example:
>>> model = small_model(seed=0)  # doctest: +SKIP
>>> model.optimizer.iterations.numpy()  # doctest: +SKIP
0
"""

from __future__ import annotations

import keras
import ml_collections

from tfzoo.training.losses import MaskedSparseCrossEntropy
from tfzoo.training.optimizer import make_optimizer

OPTIMIZER_CONFIG = ml_collections.ConfigDict(
    dict(
        learning_rate=1e-2,
        min_learning_rate=1e-3,
        warmup_steps=2,
        train_steps=20,
        weight_decay=0.1,
        beta1=0.9,
        beta2=0.99,
        clip_norm=1.0,
    )
)


def small_model(seed: int, hidden_dim: int = 8, num_layers: int = 1) -> keras.Model:
    """A small token model with every kind of state: kernels, biases, norms, dropout seeds."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(13, hidden_dim)(inputs)
    for _ in range(num_layers):
        x = keras.layers.LayerNormalization()(x)
        x = keras.layers.Dropout(0.2)(keras.layers.Dense(hidden_dim, activation="relu")(x))
    model = keras.Model(inputs, keras.layers.Dense(13)(x))
    optimizer = make_optimizer(OPTIMIZER_CONFIG, model)
    optimizer.build(model.trainable_variables)
    model.compile(optimizer=optimizer, loss=MaskedSparseCrossEntropy(), jit_compile=False)
    return model
