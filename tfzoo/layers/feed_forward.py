"""Position-wise feed-forward network of a transformer block (GELU, ReLU, SwiGLU or T5 v1.1's gated GELU)."""

from __future__ import annotations

import math

import keras
from keras import ops

from tfzoo.layers.dense import LastAxisDense

ACTIVATIONS = ("gelu", "gelu_tanh", "relu", "swiglu", "geglu_tanh")
GATED = ("swiglu", "geglu_tanh")  # a second input projection, `gate_dense`, through the activation


def _gelu_tanh(h):
    """The tanh approximation of GELU that GPT-2 and T5 v1.1 were trained with ("gelu_new" in Hugging Face).

    `ops.gelu(approximate=True)`: `0.5 h (1 + tanh(sqrt(2 / pi) (h + 0.044715 h^3)))`, which the TFLite
    converter turns into one GELU op (written out by hand it was 9 ops).
    """
    return ops.gelu(h, approximate=True)


@keras.saving.register_keras_serializable(package="tfzoo")
class FeedForward(keras.layers.Layer):
    """Position-wise feed-forward network: `C -> intermediate_dim -> C`.

    With `activation="gelu"` or `"relu"` this is `act(x W1 + b1) W2 + b2` (GPT-2/BERT);
    GELU is the exact erf form. With `"swiglu"` it is `(silu(x W1) * (x W2)) W3`
    (Shazeer 2020, as in PaLM/LLaMA); with `"geglu_tanh"` it is `(gelu_tanh(x W1) * (x W2)) W3`
    (T5 v1.1 and flan-T5: Hugging Face's "gated-gelu"). Dropout is applied to the hidden activations, before
    the output projection (as in T5), so it composes with a block's own residual dropout.

    Args:
        intermediate_dim: int. Width of the hidden (intermediate) projection.
        activation: str. One of `"gelu"` (exact), `"gelu_tanh"` (the
            tanh approximation of GPT-2), `"relu"`, `"swiglu"`, `"geglu_tanh"`. Defaults to `"gelu"`.
        dropout: float. Dropout rate on the hidden activations, in `[0, 1)`. Defaults to `0.0`.
        use_bias: bool. Whether the dense projections have biases. Defaults to `True`.
        kernel_initializer: str or initializer. Initializer of the dense kernels.
            Defaults to `"glorot_uniform"`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:
    >>> ffn = FeedForward(intermediate_dim=64, activation="swiglu")
    >>> ffn(keras.ops.zeros((2, 5, 16))).shape
    TensorShape([2, 5, 16])

    References:
        - [Shazeer, GLU Variants Improve Transformer, 2020](https://arxiv.org/abs/2002.05202)
    """

    def __init__(
        self,
        intermediate_dim: int,
        activation: str = "gelu",
        dropout: float = 0.0,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(intermediate_dim, bool) or not isinstance(intermediate_dim, int) or intermediate_dim < 1:
            raise ValueError(f"FeedForward: intermediate_dim must be a positive int, got {intermediate_dim!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"FeedForward: unknown activation {activation!r}; expected one of {ACTIVATIONS}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"FeedForward: dropout must be in [0, 1), got {dropout!r}")
        self.intermediate_dim = intermediate_dim
        self.activation = activation
        self.dropout = dropout
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True

    def _dense(self, units: int, name: str) -> LastAxisDense:
        # Dense's weights, one TFLite FULLY_CONNECTED per projection (keras Dense: 10 ops on (B, T, C)).
        return LastAxisDense(
            units,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.get(keras.initializers.serialize(self.kernel_initializer)),
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, input_shape):
        hidden_dim = input_shape[-1]
        if hidden_dim is None:
            raise ValueError(f"FeedForward: the last input axis must be known, got shape {input_shape}")
        # (B, T, C) -> (B, T, intermediate_dim)
        self.intermediate_dense = self._dense(self.intermediate_dim, "intermediate_dense")
        self.intermediate_dense.build(input_shape)
        if self.activation in GATED:
            self.gate_dense = self._dense(self.intermediate_dim, "gate_dense")
            self.gate_dense.build(input_shape)
        # (B, T, intermediate_dim) -> (B, T, C)
        self.output_dense = self._dense(hidden_dim, "output_dense")
        self.output_dense.build((*input_shape[:-1], self.intermediate_dim))
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.built = True

    def call(self, x, training=None):
        h = self.intermediate_dense(x)  # (B, T, I)
        if self.activation == "swiglu":
            gate = self.gate_dense(x)  # (B, T, I)
            # silu written out: tf.nn.silu's custom gradient does not serialize into a SavedModel.
            h = gate * ops.sigmoid(gate) * h
        elif self.activation == "geglu_tanh":
            h = _gelu_tanh(self.gate_dense(x)) * h  # T5: act(wi_0 x) * wi_1 x
        elif self.activation == "gelu":
            # Exact GELU by hand: tf.nn.gelu(approximate=False) lowers to Erfc, which tf2onnx lacks.
            h = 0.5 * h * (1.0 + ops.erf(h * (1.0 / math.sqrt(2.0))))
        elif self.activation == "gelu_tanh":
            h = _gelu_tanh(h)
        else:
            h = ops.relu(h)
        h = self.dropout_layer(h, training=training)
        return self.output_dense(h)  # (B, T, C)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "intermediate_dim": self.intermediate_dim,
                "activation": self.activation,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
