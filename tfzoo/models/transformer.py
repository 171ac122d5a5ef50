"""Transformer: the encoder-decoder of "Attention Is All You Need", with a cached decoder.

Reads top down: shared token embedding (scaled by sqrt(hidden_dim)) + positions
-> `num_layers` encoder blocks -> memory; target embedding -> `num_layers`
decoder blocks (causal self-attention, cross-attention over the memory,
feed-forward) -> logits tied to the same embedding. Sinusoidal positions are
added to both embeddings; relative positions (T5 buckets) are one
bidirectional bias shared by the encoder blocks and one causal bias shared by
the decoder blocks (cross-attention has none, as in T5).

Source and target share one vocabulary (one tokenizer learned on both
languages): the zoo saves one `tokenizer/` per workdir, and sharing lets the
encoder, the decoder and the output projection use one table (Press & Wolf,
2017; Vaswani et al., 2017 with a shared BPE vocabulary).

Cached decoding: `init_cache` holds the decoder's self-attention keys/values,
`cross_attention_cache(memory)` projects the memory into every layer's
cross-attention keys/values once per source, and `call_with_cache` runs a few
target tokens against both. `init_decoding_cache`/`decoding_step` package the
three into the single cache pytree that `tfzoo.decoding.generate` tiles and
reorders for beams.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from tfzoo.layers.kv_cache import init_cache
from tfzoo.layers.masks import causal_mask
from tfzoo.layers.relative_position_bias import RelativePositionBias
from tfzoo.layers.sinusoidal_position_encoding import SinusoidalPositionEncoding
from tfzoo.layers.token_embedding import TokenEmbedding
from tfzoo.layers.transformer_decoder_block import TransformerDecoderBlock
from tfzoo.layers.transformer_encoder_block import TransformerEncoderBlock
from tfzoo.models.arguments import ArgumentsConfig, check_architecture

POSITIONS = ("sinusoidal", "relative")


@keras.saving.register_keras_serializable(package="tfzoo")


class Transformer(ArgumentsConfig, keras.Model):
    """Encoder-decoder Transformer for sequence-to-sequence tasks.

    `model({"source_ids": (B, S), "target_ids": (B, T)})` returns float32
    logits (B, T, vocabulary_size) with teacher forcing: target position t sees
    target tokens 0..t and every real source token. Sources are right-padded;
    their length comes from `"source_lengths"` (B,) when given, else from the
    tokens that are not `pad_id`. Padding never changes any output.

    Args:
        vocabulary_size: int. Number of token ids, shared by source and target.
        num_layers: int. Number of encoder blocks and of decoder blocks.
        num_heads: int. Attention heads per block.
        hidden_dim: int. Width of the residual streams; divisible by `num_heads`
            (and even with sinusoidal positions).
        intermediate_dim: int. Hidden size of each feed-forward.
        max_sequence_length: int. Longest source and longest target (incl. the
            start token) the model accepts; longer inputs raise ValueError.
        position: str. "sinusoidal" or "relative". Defaults to "sinusoidal".
        dropout: float. Dropout rate. Defaults to 0.
        activation: str. Feed-forward activation: "relu", "gelu", "swiglu".
            Defaults to "relu".
        norm_first: bool. Pre-norm blocks plus a final norm per stack when True;
            post-norm (the 2017 model) when False. Defaults to True.
        tie_embeddings: bool. Reuse the token embedding as the output
            projection. Defaults to True.
        layer_norm_epsilon: float. Defaults to 1e-5.
        pad_id: int. The padding token id. Defaults to 0.

    Example:
    >>> import numpy as np
    >>> model = Transformer(vocabulary_size=40, num_layers=2, num_heads=2, hidden_dim=16,
    ...                     intermediate_dim=32, max_sequence_length=16)
    >>> inputs = {"source_ids": np.array([[5, 6, 7, 0]]), "target_ids": np.array([[3, 8, 9]])}
    >>> tuple(model(inputs).shape)
    (1, 3, 40)

    References:
        Vaswani et al., "Attention Is All You Need", 2017.
        Raffel et al., "Exploring the Limits of Transfer Learning with a Unified
        Text-to-Text Transformer", 2020 (relative position buckets).
    """

    def __init__(
        self,
        vocabulary_size: int,
        num_layers: int,
        num_heads: int,
        hidden_dim: int,
        intermediate_dim: int,
        max_sequence_length: int,
        position: str = "sinusoidal",
        dropout: float = 0.0,
        activation: str = "relu",
        norm_first: bool = True,
        tie_embeddings: bool = True,
        layer_norm_epsilon: float = 1e-5,
        pad_id: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_architecture(
            vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim, max_sequence_length, position, POSITIONS
        )
        if not 0 <= pad_id < vocabulary_size:
            raise ValueError(f"pad_id must be in [0, {vocabulary_size}), got {pad_id}.")
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.max_sequence_length = max_sequence_length
        self.position = position
        self.dropout = dropout
        self.activation = activation
        self.norm_first = norm_first
        self.tie_embeddings = tie_embeddings
        self.layer_norm_epsilon = layer_norm_epsilon
        self.pad_id = pad_id
        self.head_dim = hidden_dim // num_heads

        # Vaswani et al.: embeddings ~ hidden_dim**-0.5, multiplied by sqrt(hidden_dim) on lookup,
        # so tokens and sinusoids have the same scale and the tied logits start small.
        self.token_embedding = TokenEmbedding(
            vocabulary_size,
            hidden_dim,
            tie_weights=tie_embeddings,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=hidden_dim**-0.5),
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        self.position_embedding = None
        self.encoder_position_bias = self.decoder_position_bias = None
        if position == "sinusoidal":
            self.position_embedding = SinusoidalPositionEncoding(
                hidden_dim, dtype=self.dtype_policy, name="position_embedding"
            )
        else:
            self.encoder_position_bias = RelativePositionBias(
                num_heads, bidirectional=True, dtype=self.dtype_policy, name="encoder_position_bias"
            )
            self.decoder_position_bias = RelativePositionBias(
                num_heads, bidirectional=False, dtype=self.dtype_policy, name="decoder_position_bias"
            )
        self.embedding_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="embedding_dropout")
        block_args = dict(
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            activation=activation,
            norm_first=norm_first,
            layer_norm_epsilon=layer_norm_epsilon,
            dtype=self.dtype_policy,
        )
        self.encoder_blocks = [
            TransformerEncoderBlock(**block_args, name=f"encoder_block_{i}") for i in range(num_layers)
        ]
        self.decoder_blocks = [
            TransformerDecoderBlock(**block_args, cross_attention=True, name=f"decoder_block_{i}")
            for i in range(num_layers)
        ]
        self.encoder_norm = self.decoder_norm = None
        if norm_first:
            self.encoder_norm = keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="encoder_norm"
            )
            self.decoder_norm = keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="decoder_norm"
            )

    def build(self, input_shape=None):
        hidden_shape = (None, None, self.hidden_dim)
        self.token_embedding.build((None, None))
        for bias in (self.encoder_position_bias, self.decoder_position_bias):
            if bias is not None:
                bias.build((None, None), (None, None))
        for block in self.encoder_blocks:
            block.build(hidden_shape)
        for block in self.decoder_blocks:
            block.build(hidden_shape, hidden_shape)
        for norm in (self.encoder_norm, self.decoder_norm):
            if norm is not None:
                norm.build(hidden_shape)
        self.built = True

    # --- shared pieces -------------------------------------------------------------------------

    def _check_length(self, what: str, length) -> None:
        if isinstance(length, int) and length > self.max_sequence_length:
            raise ValueError(
                f"{what} length {length} exceeds the model's max_sequence_length {self.max_sequence_length}."
            )

    def _embed(self, token_ids, positions, training):
        x = self.token_embedding(token_ids)  # (B, T, C); ids clamped to the vocabulary
        x = x * ops.cast(math.sqrt(self.hidden_dim), x.dtype)
        if self.position_embedding is not None:
            x = x + ops.cast(self.position_embedding(positions), x.dtype)
        return self.embedding_dropout(x, training=training)

    def _logits(self, x):
        if self.decoder_norm is not None:
            x = self.decoder_norm(x)
        return self.token_embedding(x, reverse=True)  # (B, T, V) float32

    def compute_source_mask(self, source_ids, source_lengths=None):
        """bool (B, S): True on real source tokens (slot < length, or token != pad_id without lengths)."""
        if source_lengths is None:
            return ops.not_equal(ops.cast(source_ids, "int32"), self.pad_id)
        slots = ops.expand_dims(ops.arange(ops.shape(source_ids)[1], dtype="int32"), 0)  # (1, S)
        return ops.less(slots, ops.expand_dims(ops.cast(source_lengths, "int32"), -1))  # (B, S)

    # --- encoder ------------------------------------------------------------------------------

    def encode(self, source_ids, source_lengths=None, training=None):
        """Encodes right-padded `source_ids` (B, S) into the memory (B, S, hidden_dim).

        Args:
            source_ids: int (B, S). Source tokens, right-padded.
            source_lengths: int (B,), optional. Real tokens per row; without it
                every token that is not `pad_id` is real.
            training: bool. Whether dropout is active.

        Raises:
            ValueError: S is known and longer than `max_sequence_length`.
        """
        self._check_length("source", source_ids.shape[1])
        source_mask = self.compute_source_mask(source_ids, source_lengths)  # (B, S)
        positions = ops.expand_dims(ops.arange(ops.shape(source_ids)[1], dtype="int32"), 0)  # (1, S)
        x = self._embed(source_ids, positions, training)
        attention_mask = source_mask[:, None, None, :]  # (B, 1, 1, S): padding is never a key
        bias = None if self.encoder_position_bias is None else self.encoder_position_bias(positions, positions)
        for block in self.encoder_blocks:
            x = block(x, positions=positions, attention_mask=attention_mask, attention_bias=bias, training=training)
        if self.encoder_norm is not None:
            x = self.encoder_norm(x)
        return x  # (B, S, C)

    # --- teacher forcing ----------------------------------------------------------------------

    def call(self, inputs, training=None):
        """Logits (B, T, V) for `inputs` = {"source_ids", "target_ids"[, "source_lengths"]}."""
        if not isinstance(inputs, dict) or not {"source_ids", "target_ids"} <= set(inputs):
            raise ValueError(
                "Transformer inputs must be a dict with 'source_ids' and 'target_ids' (and optionally "
                f"'source_lengths'), got {sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__}."
            )
        source_ids, target_ids = inputs["source_ids"], inputs["target_ids"]
        self._check_length("target", target_ids.shape[1])
        source_mask = self.compute_source_mask(source_ids, inputs.get("source_lengths"))
        memory = self.encode(source_ids, inputs.get("source_lengths"), training=training)
        positions = ops.expand_dims(ops.arange(ops.shape(target_ids)[1], dtype="int32"), 0)  # (1, T)
        x = self._embed(target_ids, positions, training)
        self_mask = causal_mask(positions, positions)  # (1, 1, T, T)
        self_bias = None if self.decoder_position_bias is None else self.decoder_position_bias(positions, positions)
        cross_mask = source_mask[:, None, None, :]  # (B, 1, 1, S)
        for block in self.decoder_blocks:
            x = block(
                x,
                memory,
                positions=positions,
                self_attention_mask=self_mask,
                self_attention_bias=self_bias,
                cross_attention_mask=cross_mask,
                training=training,
            )
        return self._logits(x)

    # --- cached decoding ----------------------------------------------------------------------

    def init_cache(self, batch_size, max_length: int):
        """Empty decoder self-attention cache: per layer `(k, v)`, each (B, num_heads, max_length, head_dim)."""
        self._check_length("cache", max_length)
        return tuple(
            (
                init_cache(batch_size, self.num_heads, max_length, self.head_dim),
                init_cache(batch_size, self.num_heads, max_length, self.head_dim),
            )
            for _ in range(self.num_layers)
        )

    def cross_attention_cache(self, memory):
        """Every decoder layer's cross-attention `(k, v)`, each (B, num_heads, S, head_dim), computed once."""
        return tuple(
            block.cross_attention_layer.project_key_value(memory)
            for block in self.decoder_blocks
        )

    def call_with_cache(self, token_ids, positions, cache, memory, source_mask, training=False):
        """Runs target tokens (B, T) at `positions` (B, T); returns `(logits (B, T, V), cache)`.

        Args:
            token_ids: int (B, T). New target tokens.
            positions: int (B, T). Their positions; rows may differ.
            cache: the self-attention cache from `init_cache` (or a previous call).
            memory: the encoder output (B, S, C), or its cross-attention keys and
                values from `cross_attention_cache(memory)` (then nothing is
                projected again).
            source_mask: bool (B, S) from `compute_source_mask`.
            training: bool. Whether dropout is active. Defaults to False.
        """
        cross = memory if isinstance(memory, (tuple, list)) else self.cross_attention_cache(memory)
        positions = ops.cast(positions, "int32")
        max_length = cache[0][0].shape[2]
        key_positions = ops.expand_dims(ops.arange(max_length, dtype="int32"), 0)  # (1, M)
        x = self._embed(token_ids, positions, training)
        self_mask = causal_mask(positions, key_positions)  # (B, 1, T, M)
        self_bias = None
        if self.decoder_position_bias is not None:
            self_bias = self.decoder_position_bias(positions, key_positions)  # (B, H, T, M)
        cross_mask = ops.cast(source_mask, "bool")[:, None, None, :]  # (B, 1, 1, S)
        new_cache = []
        for block, layer_cache, layer_cross in zip(self.decoder_blocks, cache, cross):
            x, layer_cache = block(
                x,
                layer_cross,  # precomputed cross-attention (k, v): nothing is projected again
                positions=positions,
                self_attention_mask=self_mask,
                self_attention_bias=self_bias,
                cache=layer_cache,
                cross_attention_mask=cross_mask,
                training=training,
            )
            new_cache.append(layer_cache)
        return self._logits(x), tuple(new_cache)

    def init_decoding_cache(self, source_ids, source_lengths, max_length: int):
        """Encodes the sources and returns the cache pytree for `decoding_step` (batch on axis 0).

        `{"self": init_cache(B, max_length), "cross": cross_attention_cache(memory),
        "source_mask": (B, S) bool}`; `tfzoo.decoding.generate` tiles and reorders
        every leaf for beams.
        """
        memory = self.encode(source_ids, source_lengths)
        return {
            "self": self.init_cache(ops.shape(source_ids)[0], max_length),
            "cross": self.cross_attention_cache(memory),
            "source_mask": self.compute_source_mask(source_ids, source_lengths),
        }

    def decoding_step(self, token_ids, positions, cache):
        """`step_fn` for `tfzoo.decoding.generate`: `(token_ids, positions, cache) -> (logits, cache)`."""
        logits, self_cache = self.call_with_cache(
            token_ids, positions, cache["self"], cache["cross"], cache["source_mask"]
        )
        return logits, {**cache, "self": self_cache}
