"""What the encoder and decoder blocks share: arguments, sublayer factories, config."""

from __future__ import annotations

import keras

from tfzoo.layers.feed_forward import FeedForward
from tfzoo.layers.initializers import clone_initializer
from tfzoo.layers.multi_head_attention import MultiHeadAttention
from tfzoo.layers.norms import check_norm, make_norm
from tfzoo.layers.residual import residual


class TransformerBlock(keras.layers.Layer):
    """Base of `TransformerEncoderBlock` and `TransformerDecoderBlock` (not used on its own).

    Holds the arguments both blocks take, builds the feed-forward and the
    residual dropout in `__init__`, and gives the subclasses one way to make
    an attention sublayer and a layer norm in `build()`.

    Args:
        num_heads: int. Attention heads.
        intermediate_dim: int. Hidden size of the feed-forward.
        dropout: float. Dropout on the residual branches and attention weights.
            Defaults to 0.
        activation: str. "gelu", "gelu_tanh", "relu" or "swiglu". Defaults to "gelu".
        norm_first: bool. Pre-norm when True. Defaults to True.
        layer_norm_epsilon: float. Defaults to 1e-5.
        rotary: bool. Rotary positions in self-attention. Defaults to False.
        use_bias: bool. Biases in the projections and layer norms. Defaults to True.
        norm: str. "layer" (layer norm) or "rms" (RMS norm: no mean, no bias; T5). Defaults to "layer".
        scale_queries: bool. Scale the attention logits by 1/sqrt(head_dim); T5 does
            not (its initialization folds the scale in). Defaults to True.
        head_dim: int, optional. Width of each attention head; None for the input
            width / num_heads.
        kernel_initializer: initializer for the kernels. Defaults to
            "glorot_uniform".
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
        norm: str = "layer",
        scale_queries: bool = True,
        head_dim: int | None = None,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_norm(norm)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.activation = activation
        self.norm_first = norm_first
        self.layer_norm_epsilon = layer_norm_epsilon
        self.rotary = rotary
        self.use_bias = use_bias
        self.norm = norm
        self.scale_queries = scale_queries
        self.head_dim = head_dim
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

    def _build_self_attention(self, input_shape) -> keras.layers.Layer:
        """Makes and builds `self.self_attention`; returns its built norm (the subclass names the attribute)."""
        self.self_attention = self._attention("self_attention", self._head_dim(input_shape), self.rotary)
        self.self_attention.build(input_shape)
        return self._norm("self_attention_norm", input_shape)

    def _build_feed_forward(self, input_shape) -> None:
        """Builds the feed-forward and makes its norm, `self.feed_forward_norm`."""
        self.feed_forward.build(input_shape)
        self.feed_forward_norm = self._norm("feed_forward_norm", input_shape)

    def _sublayer(self, x, fn, norm, training):
        """`x` plus the sublayer `fn` with this block's norm placement and residual dropout."""
        return residual(x, fn, norm, self.dropout_layer, self.norm_first, training)

    def _feed_forward_sublayer(self, x, training):
        return self._sublayer(x, lambda h: self.feed_forward(h, training=training), self.feed_forward_norm, training)

    def _head_dim(self, input_shape) -> int:
        if self.head_dim is not None:
            return self.head_dim
        hidden_dim = input_shape[-1]
        if hidden_dim % self.num_heads:
            raise ValueError(f"hidden_dim {hidden_dim} is not divisible by num_heads {self.num_heads}.")
        return hidden_dim // self.num_heads

    def _attention(self, name: str, head_dim: int, rotary: bool) -> MultiHeadAttention:
        return MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=head_dim,
            dropout=self.dropout,
            use_bias=self.use_bias,
            rotary=rotary,
            scale_queries=self.scale_queries,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def _norm(self, name: str, input_shape) -> keras.layers.Layer:
        norm = make_norm(
            self.norm, epsilon=self.layer_norm_epsilon, use_bias=self.use_bias, dtype=self.dtype_policy, name=name
        )
        norm.build(input_shape)
        return norm

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
                "norm": self.norm,
                "scale_queries": self.scale_queries,
                "head_dim": self.head_dim,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
