"""ViTEncoder: a Vision Transformer backbone that turns an image into a sequence of patch features.

Reads top down: non-overlapping `patch_size` x `patch_size` patches are
embedded by one strided convolution (a Dense on each flattened patch) ->
2-D positions are added (a learned table over the patch grid, or the
concatenation of a row and a column sinusoid) -> `num_layers` bidirectional
encoder blocks -> final norm (pre-norm). The output is the memory a decoder
cross-attends to, one vector per patch in row-major order.
"""

from __future__ import annotations

import keras
from keras import ops

from tfzoo.layers.encoder_stack import EncoderStack
from tfzoo.layers.positions import EMBEDDING_POSITIONS, make_position_embedding
from tfzoo.models.arguments import ArgumentsConfig, check_heads, check_positive_arguments, stack_arguments

POSITIONS = EMBEDDING_POSITIONS


class ImageShapeError(ValueError):
    """An image does not have the (batch, image_size, image_size, num_channels) shape the model expects."""


@keras.saving.register_keras_serializable(package="tfzoo")
class ViTEncoder(ArgumentsConfig, keras.layers.Layer):
    """Vision Transformer encoder: images (B, S, S, channels) -> patch features (B, N, hidden_dim).

    Images are channels-last floats in [0, 1]; uint8 images are scaled by
    1/255. `N = (image_size // patch_size) ** 2` patches in row-major order.

    Args:
        image_size: int. Height and width of the (square) images.
        patch_size: int. Height and width of a patch; divides `image_size`.
        num_channels: int. Image channels. Defaults to 3.
        num_layers: int. Encoder blocks. Defaults to 2.
        num_heads: int. Attention heads per block. Defaults to 4.
        hidden_dim: int. Width of the patch features; divisible by `num_heads`
            (and by 4 with sinusoidal positions). Defaults to 128.
        intermediate_dim: int. Hidden size of each feed-forward. Defaults to 512.
        position: str. "learned" (one vector per patch) or "sinusoidal" (half
            the channels encode the row, half the column). Defaults to "learned".
        dropout: float. Dropout rate. Defaults to 0.
        activation: str. Feed-forward activation. Defaults to "gelu".
        norm_first: bool. Pre-norm blocks plus a final norm. Defaults to True.
        layer_norm_epsilon: float. Defaults to 1e-5.
        use_bias: bool. Biases in the blocks' projections and layer norms. Defaults to True.
        norm: str. "layer" or "rms" (`tfzoo.layers.norms`). Defaults to "layer".
        scale_queries: bool. Attention logits scaled by 1/sqrt(head_dim). Defaults to True.
        head_dim: int, optional. Width of each head; None for hidden_dim / num_heads.

    Example:
    >>> import numpy as np
    >>> encoder = ViTEncoder(image_size=16, patch_size=4, num_layers=1, num_heads=2,
    ...                      hidden_dim=16, intermediate_dim=32)
    >>> tuple(encoder(np.zeros((2, 16, 16, 3), "float32")).shape)
    (2, 16, 16)

    References:
        Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for
        Image Recognition at Scale", 2021.
    """

    def __init__(
        self,
        image_size: int,
        patch_size: int,
        num_channels: int = 3,
        num_layers: int = 2,
        num_heads: int = 4,
        hidden_dim: int = 128,
        intermediate_dim: int = 512,
        position: str = "learned",
        dropout: float = 0.0,
        activation: str = "gelu",
        norm_first: bool = True,
        layer_norm_epsilon: float = 1e-5,
        use_bias: bool = True,
        norm: str = "layer",
        scale_queries: bool = True,
        head_dim: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        arguments = locals()
        check_positive_arguments(
            arguments,
            ("image_size", "patch_size", "num_channels", "num_layers", "num_heads", "hidden_dim", "intermediate_dim"),
        )
        if image_size % patch_size:
            raise ValueError(f"patch_size ({patch_size}) must divide image_size ({image_size}).")
        check_heads(hidden_dim, num_heads, head_dim)
        if position not in POSITIONS:
            raise ValueError(f"unknown image position {position!r}; choose one of {', '.join(POSITIONS)}.")
        if position == "sinusoidal" and hidden_dim % 4:
            raise ValueError(f"2-D sinusoidal positions need hidden_dim divisible by 4, got {hidden_dim}.")
        self.keep_arguments(arguments)
        self.grid_size = image_size // patch_size
        self.num_patches = self.grid_size**2

        # A convolution with stride = kernel = patch is a Dense on each flattened patch.
        self.patch_embedding = keras.layers.Conv2D(
            hidden_dim,
            kernel_size=patch_size,
            strides=patch_size,
            padding="valid",
            dtype=self.dtype_policy,
            name="patch_embedding",
        )
        # A learned vector per patch, or a row and a column sinusoid of half the width each.
        self.position_embedding = make_position_embedding(
            position,
            max_length=self.num_patches,
            dim=hidden_dim if position == "learned" else hidden_dim // 2,
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype=self.dtype_policy,
        )
        self.embedding_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="embedding_dropout")
        # blocks, final_norm
        self.encoder_stack = EncoderStack(self, **stack_arguments(self), block_name="encoder_block")

    def build(self, input_shape=None):
        self.patch_embedding.build((None, self.image_size, self.image_size, self.num_channels))
        self.position_embedding.build((None, None))
        self.encoder_stack.build((None, self.num_patches, self.hidden_dim))
        self.built = True

    def check_image_shape(self, shape) -> None:
        """Raises `ImageShapeError` unless `shape` is (batch, image_size, image_size, num_channels)."""
        expected = (self.image_size, self.image_size, self.num_channels)
        got = tuple(shape)
        known = len(got) == 4 and all(g is None or g == e for g, e in zip(got[1:], expected, strict=True))
        if not known:
            raise ImageShapeError(
                f"expected images of shape (batch, {expected[0]}, {expected[1]}, {expected[2]}) "
                f"(height, width, channels), got {got}."
            )

    def patch_positions(self):
        """The 2-D position embedding of every patch: (1, N, hidden_dim), row-major."""
        patches = ops.expand_dims(ops.arange(self.num_patches, dtype="int32"), 0)  # (1, N)
        if self.position == "learned":
            return self.position_embedding(patches)
        rows = ops.floor_divide(patches, self.grid_size)
        columns = patches - rows * self.grid_size
        return ops.concatenate([self.position_embedding(rows), self.position_embedding(columns)], axis=-1)

    def call(self, images, training=None):
        """Patch features (B, N, hidden_dim) of images (B, image_size, image_size, num_channels)."""
        self.check_image_shape(images.shape)
        scale = 1.0 / 255.0 if keras.backend.standardize_dtype(images.dtype) == "uint8" else 1.0
        images = ops.cast(images, self.compute_dtype) * scale  # (B, S, S, channels) in [0, 1]
        x = self.patch_embedding(images)  # (B, G, G, C)
        x = ops.reshape(x, (-1, self.num_patches, self.hidden_dim))  # (B, N, C), row-major
        x = x + ops.cast(self.patch_positions(), x.dtype)
        x = self.embedding_dropout(x, training=training)
        return self.encoder_stack(x, training=training)  # (B, N, C)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_patches, self.hidden_dim)
