"""GPT: a decoder-only Transformer language model with a KV cache.

Reads top down: token embedding (+ absolute positions) -> `num_layers` decoder
blocks -> final norm -> logits tied to the token embedding. Relative positions
(T5 buckets) and ALiBi become one attention bias shared by all blocks; rotary
positions are applied inside each block's attention.
"""

from __future__ import annotations

import keras
from keras import ops

from tfzoo.layers.alibi_bias import AlibiBias
from tfzoo.layers.kv_cache import init_cache
from tfzoo.layers.learned_position_embedding import LearnedPositionEmbedding
from tfzoo.layers.masks import causal_mask
from tfzoo.layers.relative_position_bias import RelativePositionBias
from tfzoo.layers.sinusoidal_position_encoding import SinusoidalPositionEncoding
from tfzoo.layers.token_embedding import TokenEmbedding
from tfzoo.layers.transformer_decoder_block import TransformerDecoderBlock
from tfzoo.models.arguments import ArgumentsConfig, check_architecture

POSITIONS = ("learned", "sinusoidal", "relative", "rotary", "alibi")


@keras.saving.register_keras_serializable(package="tfzoo")


class GPT(ArgumentsConfig, keras.Model):
    """Decoder-only Transformer language model.

    `model(token_ids)` returns float32 logits (B, T, vocabulary_size) for a
    whole sequence; `call_with_cache` runs the same network a few tokens at a
    time against a fixed-size KV cache (`init_cache`), which is what the
    in-graph decoders and the exported `prefill`/`decode` signatures use.

    Args:
        vocabulary_size: int. Number of token ids.
        num_layers: int. Number of decoder blocks.
        num_heads: int. Attention heads per block.
        hidden_dim: int. Width of the residual stream; divisible by `num_heads`.
        intermediate_dim: int. Hidden size of each feed-forward.
        max_sequence_length: int. Longest sequence (prompt plus generation) the
            model is meant for; the size of the learned position table.
        position: str. One of "learned", "sinusoidal", "relative", "rotary",
            "alibi". Defaults to "learned".
        dropout: float. Dropout rate. Defaults to 0.
        activation: str. Feed-forward activation: "gelu" (exact), "gelu_tanh"
            (GPT-2's tanh approximation), "relu", "swiglu". Defaults to "gelu".
        norm_first: bool. Pre-norm blocks (GPT-2) when True. Defaults to True.
        tie_embeddings: bool. Reuse the token embedding as the output
            projection. Defaults to True.
        layer_norm_epsilon: float. Defaults to 1e-5.
        pad_id: int. The padding token id (recorded for decoding and export;
            the forward pass does not depend on it). Defaults to 0. GPT-2 has
            no padding token: a converted GPT-2 (`tfzoo.convert`) pads with its
            end-of-text id, 50256 (Hugging Face's `pad_token_id = eos_token_id`).

    Example:
    >>> import numpy as np
    >>> model = GPT(vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=16,
    ...             intermediate_dim=32, max_sequence_length=32)
    >>> tuple(model(np.zeros((1, 8), "int32")).shape)
    (1, 8, 50)

    GPT-2 itself is `GPT(vocabulary_size=50257, num_layers=12, num_heads=12,
    hidden_dim=768, intermediate_dim=3072, max_sequence_length=1024,
    activation="gelu_tanh", layer_norm_epsilon=1e-5)` (configs/gpt2_small.py);
    `python -m tfzoo.convert gpt2` loads its pretrained weights.

    References:
        Radford et al., "Language Models are Unsupervised Multitask Learners", 2019.
    """

    def __init__(
        self,
        vocabulary_size: int,
        num_layers: int,
        num_heads: int,
        hidden_dim: int,
        intermediate_dim: int,
        max_sequence_length: int,
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
        check_architecture(
            vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim, max_sequence_length, position, POSITIONS
        )
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

        init = keras.initializers.TruncatedNormal(stddev=0.02)
        self.token_embedding = TokenEmbedding(
            vocabulary_size,
            hidden_dim,
            tie_weights=tie_embeddings,
            embeddings_initializer=init,
            output_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        self.position_embedding = None
        self.position_bias = None
        if position == "learned":
            self.position_embedding = LearnedPositionEmbedding(
                max_sequence_length, hidden_dim, dtype=self.dtype_policy, name="position_embedding"
            )
        elif position == "sinusoidal":
            self.position_embedding = SinusoidalPositionEncoding(
                hidden_dim, dtype=self.dtype_policy, name="position_embedding"
            )
        elif position == "relative":
            self.position_bias = RelativePositionBias(
                num_heads, bidirectional=False, dtype=self.dtype_policy, name="position_bias"
            )
        elif position == "alibi":
            self.position_bias = AlibiBias(num_heads, dtype=self.dtype_policy, name="position_bias")
        self.embedding_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="embedding_dropout")
        self.blocks = [
            TransformerDecoderBlock(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                dropout=dropout,
                activation=activation,
                norm_first=norm_first,
                layer_norm_epsilon=layer_norm_epsilon,
                rotary=position == "rotary",
                kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                dtype=self.dtype_policy,
                name=f"block_{i}",
            )
            for i in range(num_layers)
        ]
        self.final_norm = (
            keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="final_norm")
            if norm_first
            else None
        )

    def build(self, input_shape=None):
        if self.built:  # e.g. built by a first `call_with_cache`
            return
        hidden_shape = (None, None, self.hidden_dim)
        self.token_embedding.build((None, None))
        if self.position_embedding is not None:
            self.position_embedding.build((None, None))
        if isinstance(self.position_bias, RelativePositionBias):  # ALiBi has no weights
            self.position_bias.build((None, None), (None, None))
        for block in self.blocks:
            block.build(hidden_shape)
        if self.final_norm is not None:
            self.final_norm.build(hidden_shape)
        self.built = True

    def _forward(self, token_ids, positions, key_positions, cache=None, training=None, scores=None):
        x = self.token_embedding(token_ids)  # (B, T, C); ids clamped to the vocabulary
        if self.position_embedding is not None:
            x = x + ops.cast(self.position_embedding(positions), x.dtype)
        x = self.embedding_dropout(x, training=training)
        mask = causal_mask(positions, key_positions)  # (B|1, 1, T, Tk)
        bias = None if self.position_bias is None else self.position_bias(positions, key_positions)
        new_cache = []
        for i, block in enumerate(self.blocks):
            out = block(
                x,
                positions=positions,
                self_attention_mask=mask,
                self_attention_bias=bias,
                cache=None if cache is None else cache[i],
                training=training,
                return_attention_scores=scores is not None,
            )
            if scores is not None:
                out, block_scores = out
                scores.append(block_scores["self"])
            if cache is None:
                x = out
            else:
                x, layer_cache = out
                new_cache.append(layer_cache)
        if self.final_norm is not None:
            x = self.final_norm(x)
        logits = self.token_embedding(x, reverse=True)  # (B, T, V) float32
        return logits if cache is None else (logits, tuple(new_cache))

    def call(self, token_ids, training=None):
        """Logits (B, T, V) for token ids (B, T) at positions 0..T-1."""
        positions = ops.expand_dims(ops.arange(ops.shape(token_ids)[1], dtype="int32"), 0)  # (1, T)
        return self._forward(token_ids, positions, positions, training=training)

    def attention_scores(self, token_ids) -> list:
        """Per layer, the causal self-attention weights (B, num_heads, T, T) of `model(token_ids)`.

        Example:
        >>> import numpy as np
        >>> model = GPT(vocabulary_size=10, num_layers=2, num_heads=2, hidden_dim=8,
        ...             intermediate_dim=16, max_sequence_length=8)
        >>> [tuple(w.shape) for w in model.attention_scores(np.ones((1, 4), "int32"))]
        [(1, 2, 4, 4), (1, 2, 4, 4)]
        """
        if not self.built:
            self.build((None, None))
        positions = ops.expand_dims(ops.arange(ops.shape(token_ids)[1], dtype="int32"), 0)  # (1, T)
        scores = []
        self._forward(token_ids, positions, positions, scores=scores)
        return scores

    def init_cache(self, batch_size, max_length: int):
        """An empty KV cache: per layer `(k, v)`, each (B, num_heads, max_length, head_dim) float32."""
        return tuple(
            (
                init_cache(batch_size, self.num_heads, max_length, self.head_dim),
                init_cache(batch_size, self.num_heads, max_length, self.head_dim),
            )
            for _ in range(self.num_layers)
        )

    def call_with_cache(self, token_ids, positions, cache, training=False):
        """Runs tokens (B, T) at `positions` (B, T) against `cache`; returns `(logits, cache)`.

        Keys and values of the new tokens are written into the cache at their
        positions; each query attends to the cache slots at or before its own
        position, so rows of a batch may sit at different positions.
        """
        if not self.built:
            self.build((None, None))
        max_length = cache[0][0].shape[2]
        key_positions = ops.expand_dims(ops.arange(max_length, dtype="int32"), 0)  # (1, M)
        return self._forward(token_ids, ops.cast(positions, "int32"), key_positions, cache=cache, training=training)
