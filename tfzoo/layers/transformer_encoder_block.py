"""Transformer encoder block: bidirectional self-attention and feed-forward."""

from __future__ import annotations

import keras

from tfzoo.layers.feed_forward import FeedForward
from tfzoo.layers.initializers import clone_initializer
from tfzoo.layers.multi_head_attention import MultiHeadAttention
from tfzoo.layers.residual import residual


@keras.saving.register_keras_serializable(package="tfzoo")
class TransformerEncoderBlock(keras.layers.Layer):
    """An encoder block, pre-norm (BERT-style stacks of today) or post-norm (BERT, 2017).

    Args:
        num_heads: int. Attention heads.
        intermediate_dim: int. Hidden size of the feed-forward.
        dropout: float. Dropout on the residual branches and attention weights.
            Defaults to 0.
        activation: str. "gelu", "relu" or "swiglu". Defaults to "gelu".
        norm_first: bool. Pre-norm when True. Defaults to True.
        layer_norm_epsilon: float. Defaults to 1e-5.
        rotary: bool. Rotary positions in self-attention. Defaults to False.
        use_bias: bool. Biases in the projections. Defaults to True.
        kernel_initializer: initializer for the kernels. Defaults to
            "glorot_uniform".

    Example:
    >>> import numpy as np
    >>> from tfzoo.layers.masks import padding_mask
    >>> x = np.random.rand(2, 5, 16).astype("float32")
    >>> block = TransformerEncoderBlock(num_heads=4, intermediate_dim=32)
    >>> tuple(block(x, attention_mask=padding_mask(np.array([5, 3]), 5)).shape)
    (2, 5, 16)
    """

    def __init__(
        self,
        num_heads: int,
        intermediate_dim: int,
        dropout: float = 0.0,
        activation: str = "gelu",
        norm_first: bool = True,
        layer_norm_epsilon: float = 1e-5,
        rotary: bool = False,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.activation = activation
        self.norm_first = norm_first
        self.layer_norm_epsilon = layer_norm_epsilon
        self.rotary = rotary
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.feed_forward = FeedForward(
            intermediate_dim=intermediate_dim,
            activation=activation,
            dropout=dropout,
            use_bias=use_bias,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name="feed_forward",
        )
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy)
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="self_attention_norm"
        )
        self.feed_forward_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="feed_forward_norm"
        )

    def build(self, input_shape):
        hidden_dim = input_shape[-1]
        if hidden_dim % self.num_heads:
            raise ValueError(f"hidden_dim {hidden_dim} is not divisible by num_heads {self.num_heads}.")
        self.self_attention = MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=hidden_dim // self.num_heads,
            dropout=self.dropout,
            use_bias=self.use_bias,
            rotary=self.rotary,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name="self_attention",
        )
        self.self_attention.build(input_shape)
        self.attention_norm.build(input_shape)
        self.feed_forward.build(input_shape)
        self.feed_forward_norm.build(input_shape)
        self.built = True

    def call(self, x, *, positions=None, attention_mask=None, attention_bias=None, training=None):
        """x: (B, T, C); attention_mask: bool broadcastable to (B, H, T, T), e.g. a padding mask."""
        x = residual(
            x,
            lambda h: self.self_attention(
                h,
                positions=positions,
                attention_mask=attention_mask,
                attention_bias=attention_bias,
                training=training,
            ),
            self.attention_norm,
            self.dropout_layer,
            self.norm_first,
            training,
        )
        return residual(
            x,
            lambda h: self.feed_forward(h, training=training),
            self.feed_forward_norm,
            self.dropout_layer,
            self.norm_first,
            training,
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "activation": self.activation,
                "norm_first": self.norm_first,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "rotary": self.rotary,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
