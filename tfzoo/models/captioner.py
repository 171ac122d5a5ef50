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

import math

import keras
import numpy as np
from keras import ops

from tfzoo.layers.kv_cache import init_cache
from tfzoo.layers.learned_position_embedding import LearnedPositionEmbedding
from tfzoo.layers.masks import causal_mask
from tfzoo.layers.sinusoidal_position_encoding import SinusoidalPositionEncoding
from tfzoo.layers.token_embedding import TokenEmbedding
from tfzoo.layers.transformer_decoder_block import TransformerDecoderBlock
from tfzoo.models.vit_encoder import POSITIONS, ImageShapeError, ViTEncoder
from tfzoo.models.arguments import ArgumentsConfig, check_positive_ints

__all__ = ["Captioner", "ImageShapeError", "POSITIONS"]


@keras.saving.register_keras_serializable(package="tfzoo")


class Captioner(ArgumentsConfig, keras.Model):
    """Image-to-text model: ViT encoder + Transformer decoder with cross-attention.

    `model({"image": (B, S, S, C), "target_ids": (B, T)})` returns float32
    logits (B, T, vocabulary_size) with teacher forcing: caption position t
    sees caption tokens 0..t and every image patch. Images are channels-last
    floats in [0, 1] (uint8 images are scaled by 1/255); any other height,
    width or channel count raises `ImageShapeError` (a ValueError).

    Args:
        vocabulary_size: int. Number of caption token ids.
        num_layers: int. Encoder blocks and decoder blocks (as many of each).
        num_heads: int. Attention heads per block.
        hidden_dim: int. Width of both residual streams; divisible by
            `num_heads` (by 4 with sinusoidal positions).
        intermediate_dim: int. Hidden size of each feed-forward.
        max_sequence_length: int. Longest caption (incl. the start token).
        image_size: int. Height and width of the square images. Defaults to 32.
        patch_size: int. Patch height and width; divides `image_size`. Defaults to 4.
        num_channels: int. Image channels. Defaults to 3.
        position: str. "learned" (a table over patches and one over caption
            positions) or "sinusoidal" (2-D row/column sinusoids for patches,
            1-D for the caption). Defaults to "learned".
        dropout: float. Dropout rate. Defaults to 0.
        activation: str. Feed-forward activation: "gelu", "relu", "swiglu".
            Defaults to "gelu".
        norm_first: bool. Pre-norm blocks plus final norms. Defaults to True.
        tie_embeddings: bool. Reuse the token embedding as the output
            projection. Defaults to True.
        layer_norm_epsilon: float. Defaults to 1e-5.
        pad_id: int. The padding token id. Defaults to 0.

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

    def __init__(
        self,
        vocabulary_size: int,
        num_layers: int,
        num_heads: int,
        hidden_dim: int,
        intermediate_dim: int,
        max_sequence_length: int,
        image_size: int = 32,
        patch_size: int = 4,
        num_channels: int = 3,
        position: str = "learned",
        dropout: float = 0.0,
        activation: str = "gelu",
        norm_first: bool = True,
        tie_embeddings: bool = True,
        layer_norm_epsilon: float = 1e-5,
        pad_id: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_ints(vocabulary_size=vocabulary_size, max_sequence_length=max_sequence_length)
        if not 0 <= pad_id < vocabulary_size:
            raise ValueError(f"pad_id must be in [0, {vocabulary_size}), got {pad_id}.")
        # The encoder checks the shared settings (sizes, heads, position).
        self.encoder = ViTEncoder(
            image_size=image_size,
            patch_size=patch_size,
            num_channels=num_channels,
            num_layers=num_layers,
            num_heads=num_heads,
            hidden_dim=hidden_dim,
            intermediate_dim=intermediate_dim,
            position=position,
            dropout=dropout,
            activation=activation,
            norm_first=norm_first,
            layer_norm_epsilon=layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="encoder",
        )
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.max_sequence_length = max_sequence_length
        self.image_size = image_size
        self.patch_size = patch_size
        self.num_channels = num_channels
        self.position = position
        self.dropout = dropout
        self.activation = activation
        self.norm_first = norm_first
        self.tie_embeddings = tie_embeddings
        self.layer_norm_epsilon = layer_norm_epsilon
        self.pad_id = pad_id
        self.head_dim = hidden_dim // num_heads
        self.num_patches = self.encoder.num_patches

        self.token_embedding = TokenEmbedding(
            vocabulary_size,
            hidden_dim,
            tie_weights=tie_embeddings,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=hidden_dim**-0.5),
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        if position == "learned":
            self.position_embedding = LearnedPositionEmbedding(
                max_sequence_length, hidden_dim, dtype=self.dtype_policy, name="position_embedding"
            )
        else:
            self.position_embedding = SinusoidalPositionEncoding(
                hidden_dim, dtype=self.dtype_policy, name="position_embedding"
            )
        self.embedding_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="embedding_dropout")
        self.decoder_blocks = [
            TransformerDecoderBlock(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                dropout=dropout,
                activation=activation,
                norm_first=norm_first,
                layer_norm_epsilon=layer_norm_epsilon,
                cross_attention=True,
                dtype=self.dtype_policy,
                name=f"decoder_block_{i}",
            )
            for i in range(num_layers)
        ]
        self.decoder_norm = (
            keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="decoder_norm")
            if norm_first
            else None
        )

    def build(self, input_shape=None):
        hidden_shape = (None, None, self.hidden_dim)
        memory_shape = (None, self.num_patches, self.hidden_dim)
        self.encoder.build((None, self.image_size, self.image_size, self.num_channels))
        self.token_embedding.build((None, None))
        self.position_embedding.build((None, None))
        for block in self.decoder_blocks:
            block.build(hidden_shape, memory_shape)
        if self.decoder_norm is not None:
            self.decoder_norm.build(hidden_shape)
        self.built = True

    # --- shared pieces -------------------------------------------------------------------------

    def _embed(self, token_ids, positions, training):
        if isinstance(token_ids.shape[1], int) and token_ids.shape[1] > self.max_sequence_length:
            raise ValueError(
                f"caption length {token_ids.shape[1]} exceeds the model's max_sequence_length "
                f"{self.max_sequence_length}."
            )
        x = self.token_embedding(token_ids)  # (B, T, C); ids clamped to the vocabulary
        x = x * ops.cast(math.sqrt(self.hidden_dim), x.dtype)
        x = x + ops.cast(self.position_embedding(positions), x.dtype)
        return self.embedding_dropout(x, training=training)

    def _logits(self, x):
        if self.decoder_norm is not None:
            x = self.decoder_norm(x)
        return self.token_embedding(x, reverse=True)  # (B, T, V) float32

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
        if isinstance(inputs, dict) and "image" in inputs:
            self.encoder.check_image_shape(_shape(inputs["image"]))
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs, training=None):
        """Logits (B, T, V) for `inputs` = {"image": (B, S, S, C), "target_ids": (B, T)}."""
        if not isinstance(inputs, dict) or not {"image", "target_ids"} <= set(inputs):
            raise ValueError(
                "Captioner inputs must be a dict with 'image' and 'target_ids', got "
                f"{sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__}."
            )
        memory = self.encode(inputs["image"], training=training)
        target_ids = inputs["target_ids"]
        positions = ops.expand_dims(ops.arange(ops.shape(target_ids)[1], dtype="int32"), 0)  # (1, T)
        x = self._embed(target_ids, positions, training)
        self_mask = causal_mask(positions, positions)  # (1, 1, T, T)
        for block in self.decoder_blocks:
            x = block(x, memory, positions=positions, self_attention_mask=self_mask, training=training)
        return self._logits(x)

    # --- cached decoding ----------------------------------------------------------------------

    def init_cache(self, batch_size, max_length: int):
        """Empty decoder self-attention cache: per layer `(k, v)`, each (B, num_heads, max_length, head_dim)."""
        if max_length > self.max_sequence_length:
            raise ValueError(f"cache length {max_length} exceeds max_sequence_length {self.max_sequence_length}.")
        return tuple(
            (
                init_cache(batch_size, self.num_heads, max_length, self.head_dim),
                init_cache(batch_size, self.num_heads, max_length, self.head_dim),
            )
            for _ in range(self.num_layers)
        )

    def cross_attention_cache(self, memory):
        """Every decoder layer's cross-attention `(k, v)`, each (B, num_heads, N, head_dim), computed once."""
        return tuple(block.cross_attention_layer.project_key_value(memory) for block in self.decoder_blocks)

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
        cross = memory if isinstance(memory, (tuple, list)) else self.cross_attention_cache(memory)
        positions = ops.cast(positions, "int32")
        max_length = cache[0][0].shape[2]
        key_positions = ops.expand_dims(ops.arange(max_length, dtype="int32"), 0)  # (1, M)
        x = self._embed(token_ids, positions, training)
        self_mask = causal_mask(positions, key_positions)  # (B, 1, T, M)
        new_cache = []
        for block, layer_cache, layer_cross in zip(self.decoder_blocks, cache, cross):
            x, layer_cache = block(
                x,
                tuple(layer_cross),
                positions=positions,
                self_attention_mask=self_mask,
                cache=layer_cache,
                training=training,
            )
            new_cache.append(layer_cache)
        return self._logits(x), tuple(new_cache)

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
        memory = self.encode(image)
        positions = ops.expand_dims(ops.arange(ops.shape(target_ids)[1], dtype="int32"), 0)  # (1, T)
        x = self._embed(target_ids, positions, training=False)
        self_mask = causal_mask(positions, positions)
        scores = {"self": [], "cross": []}
        for block in self.decoder_blocks:
            x, block_scores = block(
                x, memory, positions=positions, self_attention_mask=self_mask, return_attention_scores=True
            )
            scores["self"].append(block_scores["self"])
            scores["cross"].append(block_scores["cross"])
        return {**scores, "logits": self._logits(x)}


def _shape(x) -> tuple:
    """Static shape of a tensor, array or nested list (None for unknown dimensions)."""
    shape = getattr(x, "shape", None)
    return tuple(shape) if shape is not None else np.shape(x)
