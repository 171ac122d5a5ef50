"""Captioner: a ViT image encoder and a cached Transformer decoder that cross-attends to its patches.

Reads top down: image -> `ViTEncoder` (patch embedding, 2-D positions,
encoder blocks) -> memory (B, N, C), one vector per patch; caption tokens ->
token embedding (scaled by sqrt(hidden_dim)) + 1-D positions -> `num_layers`
`TransformerDecoderBlock`s (causal self-attention, cross-attention over the
patches, feed-forward) -> final norm -> logits tied to the token embedding.

Cached decoding mirrors `Transformer`: `init_cache` holds the decoder's
self-attention keys/values, `cross_attention_cache(memory)` projects the
patches into every layer's cross-attention keys/values once per image, and
`call_with_cache` runs a few caption tokens against both (the blocks take the
precomputed `(k, v)` pair in place of the memory). `init_decoding_cache` /
`decoding_step` package them for `tfzoo.decoding.generate`, which tiles and
reorders every leaf for beams. Every patch is real, so cross-attention has no mask.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from tfzoo.models.stack_model import StackModel
from tfzoo.models.vit_encoder import POSITIONS, ImageShapeError, ViTEncoder

__all__ = ["Captioner", "ImageShapeError", "POSITIONS"]


@keras.saving.register_keras_serializable(package="tfzoo")
class Captioner(StackModel):
    """Image-to-text model: ViT encoder + Transformer decoder with cross-attention.

    `model({"image": (B, S, S, C), "target_ids": (B, T)})` returns float32
    logits (B, T, vocabulary_size) with teacher forcing: caption position t
    sees caption tokens 0..t and every image patch. Images are channels-last
    floats in [0, 1] (uint8 images are scaled by 1/255); any other height,
    width or channel count raises `ImageShapeError` (a ValueError).

    Args:
        *args, **kwargs: the architecture arguments of `StackModel`, shared by
            the encoder and the decoder (`vocabulary_size` of the captions;
            `num_layers` encoder blocks and as many decoder blocks; `num_heads`,
            `hidden_dim` (divisible by 4 with sinusoidal positions),
            `intermediate_dim`, `max_sequence_length` (longest caption incl. the
            start token), `position` ("learned", the default: a table over
            patches and one over caption positions; or "sinusoidal": 2-D
            row/column sinusoids for patches, 1-D for the caption), `dropout`,
            `activation` (defaults to "gelu"), `norm_first` (defaults to True),
            `layer_norm_epsilon`, `pad_id`).
        image_size: int. Height and width of the square images. Defaults to 32.
        patch_size: int. Patch height and width; divides `image_size`. Defaults to 4.
        num_channels: int. Image channels. Defaults to 3.
        tie_embeddings: bool. Reuse the token embedding as the output
            projection. Defaults to True.
        num_frames: int, optional. Frames per clip: None (the default) for a
            Captioner of images; clips are `VideoCaptioner`'s
            (`tfzoo.models.video_captioner`), which sets it.
        tubelet_size: int. Consecutive frames per encoder token (clips only). Defaults to 1.

    Example:
    >>> import numpy as np
    >>> model = Captioner(vocabulary_size=30, num_layers=1, num_heads=2, hidden_dim=16,
    ...                   intermediate_dim=32, max_sequence_length=12, image_size=16)
    >>> inputs = {"image": np.zeros((1, 16, 16, 3), "float32"), "target_ids": np.array([[3, 8, 9]])}
    >>> tuple(model(inputs).shape)
    (1, 3, 30)

    References:
        Dosovitskiy et al., "An Image is Worth 16x16 Words", 2021.
        Vaswani et al., "Attention Is All You Need", 2017.
    """

    POSITIONS = POSITIONS
    input_name = "image"  # the key of the pictures in `call`'s inputs (`VideoCaptioner`: "video")

    def __init__(
        self,
        *args,
        image_size: int = 32,
        patch_size: int = 4,
        num_channels: int = 3,
        tie_embeddings: bool = True,
        num_frames: int | None = None,
        tubelet_size: int = 1,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if (num_frames is None) != (self.input_name == "image"):
            raise ValueError(
                f"{type(self).__name__} takes {self.input_name}s: "
                + ("use VideoCaptioner for clips (num_frames)" if num_frames is not None else "set num_frames")
            )
        self.keep_arguments(locals())
        # The encoder checks the image settings (sizes, patches, 2-D sinusoids, frames and tubelets).
        self.encoder = ViTEncoder(
            image_size=image_size,
            patch_size=patch_size,
            num_channels=num_channels,
            num_frames=num_frames,
            tubelet_size=tubelet_size,
            **self.stack_arguments(),
            dtype=self.dtype_policy,
            name="encoder",
        )
        self.num_patches = self.encoder.num_patches
        # token_embedding, position_embedding, embedding_dropout, decoder_blocks, decoder_norm
        self.decoder_stack = self.make_cross_attending_decoder("caption")

    def build(self, input_shape=None):
        self.encoder.build((None, *self.encoder.input_shape_without_batch))
        self.decoder_stack.build((None, self.num_patches, self.hidden_dim))
        self.built = True

    # --- encoder ------------------------------------------------------------------------------

    def encode(self, image, training=None):
        """Encodes images (B, image_size, image_size, num_channels) into the memory (B, N, hidden_dim).

        Raises:
            ImageShapeError: the image's height, width or channels differ from the model's.
        """
        self.encoder.check_image_shape(_shape(image))
        return self.encoder(image, training=training)

    # --- teacher forcing ----------------------------------------------------------------------

    def __call__(self, inputs, *args, **kwargs):
        # Checked before Keras wraps errors raised in `call`, so a wrong image gives a one-line message.
        if isinstance(inputs, dict) and self.input_name in inputs:
            self.encoder.check_image_shape(_shape(inputs[self.input_name]))
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs, training=None):
        """Logits (B, T, V) for `inputs` = {"image": (B, S, S, C), "target_ids": (B, T)}."""
        if not isinstance(inputs, dict) or not {self.input_name, "target_ids"} <= set(inputs):
            raise ValueError(
                f"{type(self).__name__} inputs must be a dict with '{self.input_name}' and 'target_ids', got "
                f"{sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__}."
            )
        memory = self.encode(inputs[self.input_name], training=training)
        return self.decoder_stack(inputs["target_ids"], memory=memory, training=training)

    # --- cached decoding ----------------------------------------------------------------------

    def init_cache(self, batch_size, max_length: int):
        """Empty decoder self-attention cache: per layer `(k, v)`, each (B, num_heads, max_length, head_dim)."""
        return self.decoder_stack.init_cache(batch_size, max_length)

    def cross_attention_cache(self, memory):
        """Every decoder layer's cross-attention `(k, v)`, each (B, num_heads, N, head_dim), computed once."""
        return self.decoder_stack.cross_attention_cache(memory)

    def call_with_cache(self, token_ids, positions, cache, memory, training=False):
        """Runs caption tokens (B, T) at `positions` (B, T); returns `(logits (B, T, V), cache)`.

        Args:
            token_ids: int (B, T). New caption tokens.
            positions: int (B, T). Their positions; rows may differ.
            cache: the self-attention cache from `init_cache` (or a previous call).
            memory: the encoder output (B, N, C), or its per-layer cross-attention
                `(k, v)` pairs from `cross_attention_cache(memory)`.
            training: bool. Whether dropout is active. Defaults to False.
        """
        return self.decoder_stack.call_with_cache(token_ids, positions, cache, memory, training=training)

    def init_decoding_cache(self, image, max_length: int):
        """Encodes the images and returns the cache pytree for `decoding_step` (batch on axis 0).

        `{"self": init_cache(B, max_length), "cross": cross_attention_cache(memory)}`.
        """
        memory = self.encode(image)
        return {"self": self.init_cache(ops.shape(memory)[0], max_length), "cross": self.cross_attention_cache(memory)}

    def decoding_step(self, token_ids, positions, cache):
        """`step_fn` for `tfzoo.decoding.generate`: `(token_ids, positions, cache) -> (logits, cache)`."""
        logits, self_cache = self.call_with_cache(token_ids, positions, cache["self"], cache["cross"])
        return logits, {**cache, "self": self_cache}

    # --- interpretability ---------------------------------------------------------------------

    def attention_scores(self, image, target_ids) -> dict:
        """Attention weights of a teacher-forced pass, for plots.

        Returns:
            {"self": per decoder layer (B, H, T, T), "cross": per decoder layer
            (B, H, T, N) over the patches in row-major order, "logits": (B, T, V)
            as from `call`}; every attention row sums to one.
        """
        return self.decoder_stack.attention_scores(target_ids, memory=self.encode(image))


def _shape(x) -> tuple:
    """Static shape of a tensor, array or nested list (None for unknown dimensions)."""
    shape = getattr(x, "shape", None)
    return tuple(shape) if shape is not None else np.shape(x)
