"""ViTEncoder: a Vision Transformer backbone that turns an image (or a clip) into a sequence of patch features.

Reads top down: non-overlapping `patch_size` x `patch_size` patches are
embedded by one strided convolution (a Dense on each flattened patch) ->
2-D positions are added (a learned table over the patch grid, or the
concatenation of a row and a column sinusoid) -> `num_layers` bidirectional
encoder blocks -> final norm (pre-norm). The output is the memory a decoder
cross-attends to, one vector per patch in row-major order.

Clips (`num_frames` set; ViViT's tubelets): `tubelet_size` consecutive frames
are stacked on the channel axis and embedded by the same convolution, so a
token is a `tubelet_size` x `patch_size` x `patch_size` space-time tubelet;
its position is the 2-D position of its patch plus a learned (or 1-D
sinusoidal) embedding of its time slot. Tokens are time-major: every patch
of the first tubelet, then of the second, ...
"""

from __future__ import annotations

import keras
from keras import ops

from tfzoo.layers.encoder_stack import EncoderStack
from tfzoo.layers.positions import EMBEDDING_POSITIONS, make_position_embedding
from tfzoo.models.arguments import ArgumentsConfig, check_heads, check_positive_arguments, stack_arguments

POSITIONS = EMBEDDING_POSITIONS


class ImageShapeError(ValueError):
    """An image (or clip) does not have the shape the model expects: (batch, [num_frames,] size, size, channels)."""


@keras.saving.register_keras_serializable(package="tfzoo")
class ViTEncoder(ArgumentsConfig, keras.layers.Layer):
    """Vision Transformer encoder: images (B, S, S, channels) -> patch features (B, N, hidden_dim).

    Images are channels-last floats in [0, 1]; uint8 images are scaled by
    1/255. `N = (image_size // patch_size) ** 2` patches in row-major order.
    With `num_frames`, the input is a clip (B, num_frames, S, S, channels)
    and `N = (num_frames // tubelet_size) * (image_size // patch_size) ** 2`
    tubelets, time-major.

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
        num_frames: int, optional. Frames of a clip; None (the default) for images.
        tubelet_size: int. Consecutive frames per token (clips only); divides
            `num_frames`. Defaults to 1.

    Example:
    >>> import numpy as np
    >>> encoder = ViTEncoder(image_size=16, patch_size=4, num_layers=1, num_heads=2,
    ...                      hidden_dim=16, intermediate_dim=32)
    >>> tuple(encoder(np.zeros((2, 16, 16, 3), "float32")).shape)
    (2, 16, 16)
    >>> clips = ViTEncoder(image_size=16, patch_size=4, num_layers=1, num_heads=2, hidden_dim=16,
    ...                    intermediate_dim=32, num_frames=4, tubelet_size=2)
    >>> tuple(clips(np.zeros((2, 4, 16, 16, 3), "float32")).shape)  # 2 time slots x 16 patches
    (2, 32, 16)

    References:
        Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for
        Image Recognition at Scale", 2021.
        Arnab et al., "ViViT: A Video Vision Transformer", 2021 (tubelet embedding).
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
        num_frames: int | None = None,
        tubelet_size: int = 1,
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
        check_positive_arguments(arguments, ("tubelet_size",) + (() if num_frames is None else ("num_frames",)))
        if (num_frames or 1) % tubelet_size:
            raise ValueError(f"tubelet_size ({tubelet_size}) must divide num_frames ({num_frames}).")
        if position not in POSITIONS:
            raise ValueError(f"unknown image position {position!r}; choose one of {', '.join(POSITIONS)}.")
        if position == "sinusoidal" and hidden_dim % 4:
            raise ValueError(f"2-D sinusoidal positions need hidden_dim divisible by 4, got {hidden_dim}.")
        self.keep_arguments(arguments)
        self.grid_size = image_size // patch_size
        self.num_time_slots = 1 if num_frames is None else num_frames // tubelet_size
        self.num_patches = self.num_time_slots * self.grid_size**2  # tokens: every patch of every time slot

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
            max_length=self.grid_size**2,
            dim=hidden_dim if position == "learned" else hidden_dim // 2,
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype=self.dtype_policy,
        )
        # Clips: one more vector per time slot (a learned table, or a 1-D sinusoid over the whole width).
        self.time_embedding = None
        if num_frames is not None:
            self.time_embedding = make_position_embedding(
                position,
                max_length=self.num_time_slots,
                dim=hidden_dim,
                initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                dtype=self.dtype_policy,
                name="time_embedding",
            )
        self.embedding_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="embedding_dropout")
        # blocks, final_norm
        self.encoder_stack = EncoderStack(self, **stack_arguments(self), block_name="encoder_block")

    def build(self, input_shape=None):
        self.patch_embedding.build((None, self.image_size, self.image_size, self.num_channels * self.tubelet_size))
        self.position_embedding.build((None, None))
        if self.time_embedding is not None:
            self.time_embedding.build((None, None))
        self.encoder_stack.build((None, self.num_patches, self.hidden_dim))
        self.built = True

    @property
    def input_shape_without_batch(self) -> tuple[int, ...]:
        """(image_size, image_size, num_channels), after `num_frames` for clips."""
        frame = (self.image_size, self.image_size, self.num_channels)
        return frame if self.num_frames is None else (self.num_frames, *frame)

    def check_image_shape(self, shape) -> None:
        """Raises `ImageShapeError` unless `shape` is (batch, [num_frames,] image_size, image_size, num_channels)."""
        expected = self.input_shape_without_batch
        got = tuple(shape)
        known = len(got) == len(expected) + 1 and all(g is None or g == e for g, e in zip(got[1:], expected))
        if not known:
            what, axes = (
                ("images", "height, width, channels")
                if self.num_frames is None
                else (
                    "clips",
                    "frames, height, width, channels",
                )
            )
            raise ImageShapeError(
                f"expected {what} of shape (batch, {', '.join(str(e) for e in expected)}) ({axes}), got {got}."
            )

    def patch_positions(self):
        """The position embedding of every token: (1, N, hidden_dim); 2-D row-major, time-major for clips."""
        patches = ops.expand_dims(ops.arange(self.grid_size**2, dtype="int32"), 0)  # (1, G*G)
        if self.position == "learned":
            space = self.position_embedding(patches)
        else:
            rows = ops.floor_divide(patches, self.grid_size)
            columns = patches - rows * self.grid_size
            space = ops.concatenate([self.position_embedding(rows), self.position_embedding(columns)], axis=-1)
        if self.time_embedding is None:
            return space
        slots = ops.expand_dims(ops.arange(self.num_time_slots, dtype="int32"), 0)  # (1, T')
        time = self.time_embedding(slots)  # (1, T', C)
        positions = ops.expand_dims(space, 1) + ops.expand_dims(time, 2)  # (1, T', G*G, C)
        return ops.reshape(positions, (1, self.num_patches, self.hidden_dim))

    def tubelets(self, clips):
        """Clips (B, T, S, S, channels) -> (B * T', S, S, tubelet_size * channels): each slot's frames stacked."""
        t, s, c = self.tubelet_size, self.image_size, self.num_channels
        x = ops.reshape(clips, (-1, self.num_time_slots, t, s, s, c))  # (B, T', t, S, S, c)
        x = ops.transpose(x, (0, 1, 3, 4, 2, 5))  # (B, T', S, S, t, c)
        return ops.reshape(x, (-1, s, s, t * c))

    def call(self, images, training=None):
        """Patch features (B, N, hidden_dim) of images (B, image_size, image_size, num_channels)."""
        self.check_image_shape(images.shape)
        scale = 1.0 / 255.0 if keras.backend.standardize_dtype(images.dtype) == "uint8" else 1.0
        images = ops.cast(images, self.compute_dtype) * scale  # (B, [T,] S, S, channels) in [0, 1]
        if self.num_frames is not None:
            images = self.tubelets(images)  # (B*T', S, S, t*channels)
        x = self.patch_embedding(images)  # (B[*T'], G, G, C)
        x = ops.reshape(x, (-1, self.num_patches, self.hidden_dim))  # (B, N, C), row-major (time-major)
        x = x + ops.cast(self.patch_positions(), x.dtype)
        x = self.embedding_dropout(x, training=training)
        return self.encoder_stack(x, training=training)  # (B, N, C)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_patches, self.hidden_dim)
