"""Transformer decoder block: causal self-attention, optional cross-attention, feed-forward."""

from __future__ import annotations

import keras

from tfzoo.layers.transformer_block import TransformerBlock


@keras.saving.register_keras_serializable(package="tfzoo")
class TransformerDecoderBlock(TransformerBlock):
    """A decoder block, pre-norm (GPT-2) or post-norm (the 2017 Transformer).

    Pre-norm: `x = x + attn(norm(x))`, then the same for cross-attention (if
    any) and the feed-forward. Post-norm: `x = norm(x + attn(x))`. The masks and
    position biases come from the caller (built once per forward pass from
    positions); with `cache=(k, v)` the block returns `(x, cache)`.

    Args:
        cross_attention: bool. Add a cross-attention sublayer over an encoder
            output. Defaults to False.
        **kwargs: the arguments of `TransformerBlock` (`num_heads`,
            `intermediate_dim`, `dropout`, `activation`, `norm_first`,
            `layer_norm_epsilon`, `rotary`, `use_bias`, `norm`, `scale_queries`, `kernel_initializer`)
            and of `keras.layers.Layer`.

    Example:
    >>> import numpy as np
    >>> from tfzoo.layers.masks import causal_mask
    >>> x = np.random.rand(2, 5, 16).astype("float32")
    >>> positions = np.arange(5)[None]
    >>> block = TransformerDecoderBlock(num_heads=4, intermediate_dim=32)
    >>> tuple(block(x, self_attention_mask=causal_mask(positions, positions)).shape)
    (2, 5, 16)
    """

    def __init__(self, num_heads: int, intermediate_dim: int, cross_attention: bool = False, **kwargs):
        super().__init__(num_heads, intermediate_dim, **kwargs)
        self.cross_attention = cross_attention

    def build(self, x_shape, encoder_output_shape=None):
        self.self_attention_norm = self._build_self_attention(x_shape)
        if self.cross_attention:
            self.cross_attention_layer = self._attention("cross_attention", self._head_dim(x_shape), False)
            self.cross_attention_layer.build(x_shape, encoder_output_shape or x_shape)
            self.cross_attention_norm = self._norm("cross_attention_norm", x_shape)
        self._build_feed_forward(x_shape)
        self.built = True

    def call(
        self,
        x,
        encoder_output=None,
        *,
        positions=None,
        self_attention_mask=None,
        self_attention_bias=None,
        cache=None,
        grow_cache: bool = False,
        cache_writes: dict | None = None,
        cross_attention_mask=None,
        training=None,
        return_attention_scores: bool = False,
    ):
        """x: (B, T, C); encoder_output: (B, S, C), or its precomputed `(k, v)`, when `cross_attention`.

        Returns `x`, or `(x, cache)` with a cache; with `return_attention_scores`
        also a dict of float32 weights: `"self"` (B, H, T, Tk) and, with
        cross-attention, `"cross"` (B, H, T, S), as the last element. `cache_writes`: the
        fixed cache's slot masks (`tfzoo.layers.kv_cache.cache_writes`), made once for all blocks.
        """
        if self.cross_attention and encoder_output is None:
            raise ValueError("this block has cross-attention: pass `encoder_output`.")
        scores = {}

        def self_attend(h):
            nonlocal cache
            out = self.self_attention(
                h,
                positions=positions,
                attention_mask=self_attention_mask,
                attention_bias=self_attention_bias,
                cache=cache,
                grow_cache=grow_cache,
                cache_writes=cache_writes,
                training=training,
                return_attention_scores=return_attention_scores,
            )
            if return_attention_scores:
                *out, scores["self"] = out
                out = out[0] if len(out) == 1 else tuple(out)
            if cache is not None:
                out, cache = out
            return out

        def cross_attend(h):
            out = self.cross_attention_layer(
                h,
                encoder_output,
                attention_mask=cross_attention_mask,
                training=training,
                return_attention_scores=return_attention_scores,
            )
            if return_attention_scores:
                out, scores["cross"] = out
            return out

        x = self._sublayer(x, self_attend, self.self_attention_norm, training)
        if self.cross_attention:
            x = self._sublayer(x, cross_attend, self.cross_attention_norm, training)
        x = self._feed_forward_sublayer(x, training)
        results = (x,) if cache is None else (x, cache)
        if return_attention_scores:
            results += (scores,)
        return results[0] if len(results) == 1 else results

    def compute_output_shape(self, x_shape, encoder_output_shape=None):
        return x_shape

    def get_config(self):
        config = super().get_config()
        config["cross_attention"] = self.cross_attention
        return config
