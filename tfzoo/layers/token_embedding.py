"""Token embedding whose reverse is the output projection (tied or not)."""

from __future__ import annotations

import keras
from keras import ops

from tfzoo.layers.clamp import clamp
from tfzoo.layers.dense import last_axis_matmul


@keras.saving.register_keras_serializable(package="tfzoo")
class TokenEmbedding(keras.layers.Layer):
    """Looks tokens up, and with `reverse=True` turns hidden states into float32 logits.

    Token ids are clamped to the vocabulary inside the graph (TFLite does not
    bounds-check gathers). With `tie_weights` the logits use the embedding table
    itself (`x @ embeddings^T`); otherwise a separate `output_kernel` (a
    variable named `kernel`, so weight decay treats it like any projection).

    Args:
        vocabulary_size: int. Number of token ids.
        hidden_dim: int. Embedding width.
        tie_weights: bool. Reuse the table as the output projection. Defaults to True.
        embeddings_initializer: initializer of the table. Defaults to "uniform".
        output_initializer: initializer of the untied output kernel. Defaults to
            "glorot_uniform".

    Example:
    >>> import numpy as np
    >>> layer = TokenEmbedding(vocabulary_size=10, hidden_dim=4)
    >>> x = layer(np.array([[1, 2, 99]]))
    >>> tuple(x.shape), tuple(layer(x, reverse=True).shape)
    ((1, 3, 4), (1, 3, 10))
    """

    def __init__(
        self,
        vocabulary_size: int,
        hidden_dim: int,
        tie_weights: bool = True,
        embeddings_initializer="uniform",
        output_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.hidden_dim = hidden_dim
        self.tie_weights = tie_weights
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.output_initializer = keras.initializers.get(output_initializer)

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            shape=(self.vocabulary_size, self.hidden_dim), initializer=self.embeddings_initializer, name="embeddings"
        )
        self.output_kernel = None
        if not self.tie_weights:
            self.output_kernel = self.add_weight(
                shape=(self.hidden_dim, self.vocabulary_size), initializer=self.output_initializer, name="kernel"
            )
        self.built = True

    def call(self, inputs, reverse: bool = False):
        """`inputs`: token ids (B, T), or hidden states (B, T, C) with `reverse=True`."""
        if reverse:
            # One matmul of the last axis against the table (V, C) itself: no transpose, one FULLY_CONNECTED.
            kernel = self.embeddings if self.tie_weights else self.output_kernel
            logits = last_axis_matmul(inputs, ops.cast(kernel, inputs.dtype), transpose_kernel=self.tie_weights)
            return ops.cast(logits, "float32")  # (B, T, V)
        token_ids = clamp(ops.cast(inputs, "int32"), 0, self.vocabulary_size - 1)  # (B, T)
        return ops.take(self.embeddings, token_ids, axis=0)  # (B, T, C)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "hidden_dim": self.hidden_dim,
                "tie_weights": self.tie_weights,
                "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
                "output_initializer": keras.initializers.serialize(self.output_initializer),
            }
        )
        return config
