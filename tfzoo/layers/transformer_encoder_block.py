"""Transformer encoder block: bidirectional self-attention and feed-forward."""

from __future__ import annotations

import keras

from tfzoo.layers.residual import residual
from tfzoo.layers.transformer_block import TransformerBlock


@keras.saving.register_keras_serializable(package="tfzoo")
class TransformerEncoderBlock(TransformerBlock):
    """An encoder block, pre-norm (BERT-style stacks of today) or post-norm (BERT, 2017).

    Args: those of `TransformerBlock` (`num_heads`, `intermediate_dim`,
        `dropout`, `activation`, `norm_first`, `layer_norm_epsilon`, `rotary`,
        `use_bias`, `kernel_initializer`) and of `keras.layers.Layer`.

    Example:
    >>> import numpy as np
    >>> from tfzoo.layers.masks import padding_mask
    >>> x = np.random.rand(2, 5, 16).astype("float32")
    >>> block = TransformerEncoderBlock(num_heads=4, intermediate_dim=32)
    >>> tuple(block(x, attention_mask=padding_mask(np.array([5, 3]), 5)).shape)
    (2, 5, 16)
    """

    def build(self, input_shape):
        head_dim = self._head_dim(input_shape)
        self.self_attention = self._attention("self_attention", head_dim, self.rotary)
        self.self_attention.build(input_shape)
        self.attention_norm = self._norm("self_attention_norm", input_shape)
        self.feed_forward.build(input_shape)
        self.feed_forward_norm = self._norm("feed_forward_norm", input_shape)
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

        x = residual(x, attend, self.attention_norm, self.dropout_layer, self.norm_first, training)
        x = residual(
            x,
            lambda h: self.feed_forward(h, training=training),
            self.feed_forward_norm,
            self.dropout_layer,
            self.norm_first,
            training,
        )
        return (x, scores[0]) if return_attention_scores else x

    def compute_output_shape(self, input_shape):
        return input_shape
