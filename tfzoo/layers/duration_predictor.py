"""DurationPredictor: how many frames each token lasts, as log(1 + frames), from the encoder's output.

FastSpeech's predictor: two (1-D convolution -> ReLU -> layer norm -> dropout)
layers and a linear projection to one value per token; padded tokens are zero
in and out.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfzoo")
class DurationPredictor(keras.layers.Layer):
    """Encoder output (B, N, C) and token mask (B, N) -> predicted log(1 + duration in frames) (B, N).

    Args:
        filters: int. Channels of the convolutions.
        kernel_size: int. Width of the convolutions (tokens). Defaults to 3.
        dropout: float. Dropout after each convolution (training only). Defaults to 0.
        layer_norm_epsilon: float. Defaults to 1e-5.

    Example:
    >>> import numpy as np
    >>> predictor = DurationPredictor(filters=8)
    >>> tuple(predictor(np.ones((2, 5, 4), "float32"), np.ones((2, 5), bool)).shape)
    (2, 5)

    References:
        Ren et al., "FastSpeech: Fast, Robust and Controllable Text to Speech", 2019.
    """

    def __init__(
        self, filters: int, kernel_size: int = 3, dropout: float = 0.0, layer_norm_epsilon: float = 1e-5, **kwargs
    ):
        super().__init__(**kwargs)
        for name, value in (("filters", filters), ("kernel_size", kernel_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
        self.filters, self.kernel_size, self.dropout, self.layer_norm_epsilon = (
            filters, kernel_size, dropout, layer_norm_epsilon,
        )  # fmt: skip
        policy = self.dtype_policy
        self.convolutions = [
            keras.layers.Conv1D(filters, kernel_size, padding="same", dtype=policy, name=f"conv_{i}") for i in (1, 2)
        ]
        self.norms = [keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, dtype=policy, name=f"norm_{i}")
                      for i in (1, 2)]  # fmt: skip
        self.dropout_layer = keras.layers.Dropout(dropout)
        self.projection = keras.layers.Dense(1, dtype=policy, name="projection")

    def build(self, input_shape):
        width = input_shape[-1]
        for convolution, norm in zip(self.convolutions, self.norms):
            convolution.build((None, None, width))
            norm.build((None, None, self.filters))
            width = self.filters
        self.projection.build((None, None, self.filters))
        self.built = True

    def get_config(self) -> dict:
        names = ("filters", "kernel_size", "dropout", "layer_norm_epsilon")
        return {**super().get_config(), **{name: getattr(self, name) for name in names}}

    def call(self, hidden, mask, training=None):
        keep = tf.expand_dims(tf.cast(mask, hidden.dtype), -1)  # (B, N, 1)
        x = hidden * keep
        for convolution, norm in zip(self.convolutions, self.norms):
            x = self.dropout_layer(norm(tf.nn.relu(convolution(x))), training=training) * keep  # (B, N, filters)
        return tf.squeeze(self.projection(x), -1) * tf.cast(mask, x.dtype)  # (B, N)

    def compute_output_shape(self, input_shape, mask_shape=None):
        return tuple(input_shape[:2])
