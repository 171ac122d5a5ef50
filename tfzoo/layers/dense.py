"""A dense projection of the last axis that converts to one TFLite FULLY_CONNECTED, and its matmul.

Keras's `Dense` multiplies a (B, T, C) input through `tf.tensordot`, whose reshapes take their
shapes from the input at run time: TFLite gets SHAPE, 2 GATHER, 2 REDUCE_PROD, CONCATENATION,
PACK, RESHAPE, FULLY_CONNECTED and RESHAPE for each projection (10 ops; 20 per GPT block's
feed-forward). An einsum over the last axis converts to one FULLY_CONNECTED that keeps the leading
axes. The arithmetic is the same matmul: the results differ by float rounding at most.
"""

from __future__ import annotations

import keras
from keras import ops

_LEADING = "abdefghi"  # the leading axes; "c" and "u" are the contracted and output axes


def last_axis_matmul(x, kernel, transpose_kernel: bool = False):
    """`x` (..., C) times `kernel` (C, U) on the last axis: (..., U); `kernel` (U, C) with `transpose_kernel`.

    An einsum, so that a converter sees one matmul of the last axis (TFLite: one FULLY_CONNECTED,
    whose weight layout is (U, C): the transposed kernel needs no TRANSPOSE op).

    Example:
    >>> import numpy as np
    >>> x, w = np.ones((2, 3, 4), "float32"), np.ones((4, 5), "float32")
    >>> tuple(last_axis_matmul(x, w).shape), tuple(last_axis_matmul(x, w.T, transpose_kernel=True).shape)
    ((2, 3, 5), (2, 3, 5))
    """
    rank = len(x.shape)
    if not 1 <= rank <= len(_LEADING) + 1:
        raise ValueError(f"last_axis_matmul: input rank must be 1 to {len(_LEADING) + 1}, got shape {x.shape}")
    lead = _LEADING[: rank - 1]
    weights = "uc" if transpose_kernel else "cu"
    return ops.einsum(f"{lead}c,{weights}->{lead}u", x, kernel)


@keras.saving.register_keras_serializable(package="tfzoo")
class LastAxisDense(keras.layers.Layer):
    """`x @ kernel + bias` on the last axis, with `keras.layers.Dense`'s weights (`kernel` (C, U), then `bias`).

    Made where a block projects (B, T, C) hidden states (`FeedForward`): the weights, their names and
    their order are those of `Dense(units, use_bias=...)`, so `.keras` files and checkpoints written
    with `Dense` load unchanged, and weight decay (which decays variables named `kernel`) treats it alike.

    Args:
        units: int. Output width U.
        use_bias: bool. Add the learned bias. Defaults to True.
        kernel_initializer: str or initializer. Defaults to "glorot_uniform".
        bias_initializer: str or initializer. Defaults to "zeros".
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:
    >>> import numpy as np
    >>> layer = LastAxisDense(8, name="intermediate_dense")
    >>> tuple(layer(np.zeros((2, 3, 4), "float32")).shape), [w.name for w in layer.weights]
    ((2, 3, 8), ['kernel', 'bias'])
    """

    def __init__(
        self,
        units: int,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(f"LastAxisDense: units must be a positive int, got {units!r}")
        self.units = units
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(f"LastAxisDense: the last input axis must be known, got shape {input_shape}")
        self.kernel = self.add_weight(name="kernel", shape=(input_dim, self.units), initializer=self.kernel_initializer)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.units,), initializer=self.bias_initializer)
        self.built = True

    def call(self, x):
        y = last_axis_matmul(x, self.kernel)  # (..., U)
        return y if self.bias is None else y + self.bias

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
