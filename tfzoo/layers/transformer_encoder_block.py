"""Transformer encoder block: bidirectional self-attention and feed-forward."""

from __future__ import annotations

import keras

from tfzoo.layers.transformer_block import TransformerBlock


@keras.saving.register_keras_serializable(package="tfzoo")
class TransformerEncoderBlock(TransformerBlock):
    """An encoder block, pre-norm (BERT-style stacks of today) or post-norm (BERT, 2017).

    Args: those of `TransformerBlock` (`num_heads`, `intermediate_dim`,
        `dropout`, `activation`, `norm_first`, `layer_norm_epsilon`, `rotary`,
        `use_bias`, `norm`, `scale_queries`, `kernel_initializer`) and of `keras.layers.Layer`.

    Example:
    >>> import numpy as np
    >>> from tfzoo.layers.masks import padding_mask
    >>> x = np.random.rand(2, 5, 16).astype("float32")
    >>> block = TransformerEncoderBlock(num_heads=4, intermediate_dim=32)
    >>> tuple(block(x, attention_mask=padding_mask(np.array([5, 3]), 5)).shape)
    (2, 5, 16)
    """

    def build(self, input_shape):
        self.attention_norm = self._build_self_attention(input_shape)
        self._build_feed_forward(input_shape)
        self.built = True

    def call(
        self,
        x,
        *,
        positions=None,
        attention_mask=None,
        attention_bias=None,
        training=None,
        return_attention_scores: bool = False,
    ):
        """x: (B, T, C); attention_mask: bool broadcastable to (B, H, T, T), e.g. a padding mask.

        Returns `x`, or `(x, weights)` with `return_attention_scores` (float32 (B, H, T, T)).
        """
        scores = []

        def attend(h):
            out = self.self_attention(
                h,
                positions=positions,
                attention_mask=attention_mask,
                attention_bias=attention_bias,
                training=training,
                return_attention_scores=return_attention_scores,
            )
            if return_attention_scores:
                out, weights = out
                scores.append(weights)
            return out

        x = self._sublayer(x, attend, self.attention_norm, training)
        x = self._feed_forward_sublayer(x, training)
        return (x, scores[0]) if return_attention_scores else x

    def compute_output_shape(self, input_shape):
        return input_shape
