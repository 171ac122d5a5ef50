"""LengthRegulator: each token's vector repeated for its duration in frames (FastSpeech), in gather ops.

Reads top down: durations (B, N) -> their running sums, the frame where each
token ends -> for every output frame t the token covering it (the number of
tokens that ended at or before t) -> `gather` of the token vectors -> frames
past the total duration are zero and masked. No ragged `repeat`: the output
has a fixed `max_frames` width, so the graph has static shapes (XLA, TFLite)
and a batch of different lengths is one tensor.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfzoo")
class LengthRegulator(keras.layers.Layer):
    """Token vectors (B, N, C) and durations (B, N) -> frame vectors (B, max_frames, C) and frame mask (B, max_frames).

    Durations are whole frames (negative counts as 0); frames beyond
    `max_frames` are cut off.

    Args:
        max_frames: int. Width of the output (longest utterance in frames).

    Example:
    >>> import numpy as np
    >>> hidden = np.arange(3, dtype="float32")[None, :, None]  # (1, 3, 1)
    >>> frames, mask = LengthRegulator(max_frames=6)(hidden, np.array([[2, 0, 3]]))
    >>> frames.numpy()[0, :, 0].tolist(), mask.numpy()[0].tolist()
    ([0.0, 0.0, 2.0, 2.0, 2.0, 0.0], [True, True, True, True, True, False])

    References:
        Ren et al., "FastSpeech: Fast, Robust and Controllable Text to Speech", 2019.
    """

    def __init__(self, max_frames: int, **kwargs):
        super().__init__(**kwargs)
        if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1:
            raise ValueError(f"max_frames must be a positive integer, got {max_frames!r}.")
        self.max_frames = max_frames

    def get_config(self) -> dict:
        return {**super().get_config(), "max_frames": self.max_frames}

    def call(self, hidden, durations):
        durations = tf.maximum(tf.cast(durations, tf.int32), 0)  # (B, N)
        ends = tf.cumsum(durations, axis=1)  # (B, N): first frame after each token
        frames = tf.range(self.max_frames)  # (T,)
        ended = tf.expand_dims(ends, 1) <= tf.reshape(frames, [1, -1, 1])  # (B, T, N)
        index = tf.reduce_sum(tf.cast(ended, tf.int32), axis=2)  # (B, T): the token covering frame t
        index = tf.minimum(index, tf.shape(hidden)[1] - 1)
        expanded = tf.gather(hidden, index, batch_dims=1)  # (B, T, C)
        mask = tf.expand_dims(frames, 0) < ends[:, -1:]  # (B, T)
        return expanded * tf.expand_dims(tf.cast(mask, expanded.dtype), -1), mask

    def compute_output_shape(self, hidden_shape, durations_shape=None):
        return (hidden_shape[0], self.max_frames, hidden_shape[2]), (hidden_shape[0], self.max_frames)
