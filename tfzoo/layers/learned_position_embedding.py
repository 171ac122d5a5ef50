"""Learned absolute position embedding (GPT-2/BERT), looked up by explicit positions."""

from __future__ import annotations

import keras
from keras import ops

from tfzoo.layers.clamp import clamp


@keras.saving.register_keras_serializable(package="tfzoo")
class LearnedPositionEmbedding(keras.layers.Layer):
    """A trainable `(max_sequence_length, hidden_dim)` table indexed by integer positions.

    Positions are clamped to `[0, max_sequence_length - 1]` inside the graph before the
    lookup: TFLite does not bounds-check a gather, so an out-of-range position must never
    reach it. Positions past the table therefore reuse its last row.

    Args:
        max_sequence_length: int. Number of positions in the table.
        hidden_dim: int. Size of each position vector.
        initializer: str or initializer. Initializer of the table.
            Defaults to `"glorot_uniform"`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:
    >>> embed = LearnedPositionEmbedding(max_sequence_length=16, hidden_dim=8)
    >>> embed(keras.ops.arange(5)[None, :]).shape
    TensorShape([1, 5, 8])
    """

    def __init__(
        self,
        max_sequence_length: int,
        hidden_dim: int,
        initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        for arg, value in (("max_sequence_length", max_sequence_length), ("hidden_dim", hidden_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"LearnedPositionEmbedding: {arg} must be a positive int, got {value!r}")
        self.max_sequence_length = max_sequence_length
        self.hidden_dim = hidden_dim
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.max_sequence_length, self.hidden_dim),
            initializer=self.initializer,
            trainable=True,
        )
        self.built = True

    def call(self, positions):
        positions = clamp(ops.cast(positions, "int32"), 0, self.max_sequence_length - 1)  # (B, T)
        table = ops.cast(self.embeddings, self.compute_dtype)  # (L, C)
        return ops.take(table, positions, axis=0)  # (B, T, C)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "max_sequence_length": self.max_sequence_length,
                "hidden_dim": self.hidden_dim,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config
