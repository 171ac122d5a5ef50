"""SpecAugment: random time and frequency masks over log-mel features, in training only.

Each utterance gets `freq_masks` bands of 0..`freq_mask_bins` mel bins and
`time_masks` spans of 0..`time_mask_frames` frames set to zero (the mean of
the normalised features); widths and starts are uniform, time spans start
inside the utterance's real frames. Without `training=True` (inference, the
validation pass, every export) the layer returns its input unchanged, so
exported graphs hold no random op.

Time masks are short on purpose: the utterances here are 1-3 s of a few
words (~30 frames each), and a mask that hides a whole word would make the
transcript a guess.
"""

from __future__ import annotations

import keras
import tensorflow as tf

ARGUMENTS = ("freq_masks", "freq_mask_bins", "time_masks", "time_mask_frames", "seed")


@keras.saving.register_keras_serializable(package="tfzoo")
class SpecAugment(keras.layers.Layer):
    """Masks features (B, T, M) with a frame mask (B, T) in training; the identity otherwise.

    Args:
        freq_masks: int. Frequency bands masked per utterance. Defaults to 2.
        freq_mask_bins: int. Widest band (mel bins). Defaults to 12.
        time_masks: int. Time spans masked per utterance. Defaults to 2.
        time_mask_frames: int. Longest span (frames). Defaults to 10.
        seed: int or None. Seed of the masks' random stream. Defaults to None.

    Example:
    >>> import numpy as np
    >>> layer = SpecAugment(freq_masks=1, freq_mask_bins=4, time_masks=1, time_mask_frames=3, seed=0)
    >>> x, mask = np.ones((2, 20, 16), "float32"), np.ones((2, 20), bool)
    >>> bool((layer(x, mask) == x).numpy().all()), bool((layer(x, mask, training=True) == 0).numpy().any())
    (True, True)

    References:
        Park et al., "SpecAugment: A Simple Data Augmentation Method for Automatic Speech Recognition", 2019.
    """

    def __init__(
        self,
        freq_masks: int = 2,
        freq_mask_bins: int = 12,
        time_masks: int = 2,
        time_mask_frames: int = 10,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        arguments = locals()
        for name in ARGUMENTS[:4]:
            if isinstance(arguments[name], bool) or not isinstance(arguments[name], int) or arguments[name] < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {arguments[name]!r}.")
        for name in ARGUMENTS:
            setattr(self, name, arguments[name])
        self.seed_generator = keras.random.SeedGenerator(seed)

    def get_config(self) -> dict:
        return {**super().get_config(), **{name: getattr(self, name) for name in ARGUMENTS}}

    def _bands(self, count: int, widest: int, limit, size: int, batch):
        """bool (B, size): True inside `count` random spans of 0..widest positions starting below limit - width."""
        positions = tf.range(size)[None, None, :]  # (1, 1, size)
        width = keras.random.randint((batch, count, 1), 0, widest + 1, seed=self.seed_generator)  # (B, K, 1)
        room = tf.maximum(limit[:, None, None] - width, 1)  # (B, K, 1)
        start = tf.cast(
            keras.random.uniform((batch, count, 1), seed=self.seed_generator) * tf.cast(room, tf.float32), tf.int32
        )
        inside = (positions >= start) & (positions < start + width)  # (B, K, size)
        return tf.reduce_any(inside, axis=1)  # (B, size)

    def call(self, features, mask, training=None):
        """`features` (B, T, M) with bands and spans zeroed when training; `mask` (B, T) marks the real frames."""
        if not training or (self.freq_masks == 0 and self.time_masks == 0):
            return features
        batch, frames, bins = tf.shape(features)[0], tf.shape(features)[1], features.shape[-1]
        keep = tf.ones_like(features, dtype=tf.bool)
        if self.freq_masks and self.freq_mask_bins:
            limit = tf.fill([batch], bins)
            keep &= ~self._bands(self.freq_masks, self.freq_mask_bins, limit, bins, batch)[:, None, :]
        if self.time_masks and self.time_mask_frames:
            valid = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)  # (B,)
            keep &= ~self._bands(self.time_masks, self.time_mask_frames, valid, frames, batch)[:, :, None]
        return features * tf.cast(keep, features.dtype)

    def compute_output_shape(self, input_shape, mask_shape=None):
        return input_shape
