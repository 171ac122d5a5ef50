"""The decoder every generating model shares: token embedding + positions -> blocks -> final norm -> logits.

GPT is this stack alone; the Transformer and the Captioner add an encoder
whose output (the memory) the blocks cross-attend to. The stack runs whole
sequences (teacher forcing, `attention_scores`) and a few tokens at a time
against a fixed-size KV cache (`init_cache`, `call_with_cache`,
`cross_attention_cache`), which the in-graph decoders and the exported
`prefill`/`decode` signatures use.

`DecoderStack` is not a Keras layer: it makes its layers as attributes of
the model that owns it (`token_embedding`, `position_embedding`,
`<prefix>position_bias`, `embedding_dropout`, `<prefix>blocks`, and
`final_norm` or `<prefix>norm`), so the weights keep the model's own names in
`.keras` files, checkpoints and `init_from`.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from tfzoo.layers.kv_cache import cache_slots, cache_writes, init_cache
from tfzoo.layers.masks import causal_mask
from tfzoo.layers.positions import build_position_layers, check_length, make_position_embedding
from tfzoo.layers.stack_layers import make_stack_layers, source_positions
from tfzoo.layers.token_embedding import TokenEmbedding
from tfzoo.layers.transformer_decoder_block import TransformerDecoderBlock


class DecoderStack:
    """Token embedding + positions -> causal decoder blocks (cross-attending when given a memory) -> logits.

    Args:
        owner: keras.Model. The model whose attributes the layers become.
        vocabulary_size, hidden_dim, max_sequence_length, tie_embeddings: the
            owner's arguments of the same names.
        what: str. What the tokens are, for length errors ("input", "target", "caption").
        cross_attention: bool. Blocks cross-attend to a memory. Defaults to False.
        scale_embeddings: bool. Multiply token embeddings by sqrt(hidden_dim) (Vaswani et al.).
        scale_output: bool. Multiply the final hidden states by hidden_dim**-0.5 before the
            output projection (T5's rescale for its tied embeddings). Defaults to False.
        embeddings_initializer, output_initializer: initializers of the token
            table and of the untied output kernel; None for the layer's defaults.
        position_initializer: initializer of a learned position table; None for
            the layer's default (glorot uniform, far larger than GPT's 0.02).
        **stack_arguments: the arguments of `stack_layers.make_stack_layers`
            (`num_layers`, `num_heads`, `intermediate_dim`, `position`, `dropout`,
            `activation`, `norm_first`, `layer_norm_epsilon`, and optionally
            `prefix` ("" for GPT: `blocks`, `position_bias`, `final_norm`;
            "decoder_": `decoder_blocks`, ...) and `kernel_initializer`).

    Example:
    >>> import keras, numpy as np
    >>> class Tiny(keras.Model):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.decoder_stack = DecoderStack(self, vocabulary_size=10, num_layers=1, num_heads=2,
    ...             hidden_dim=8, intermediate_dim=16, max_sequence_length=8, position="learned", dropout=0.0,
    ...             activation="gelu", norm_first=True, tie_embeddings=True, layer_norm_epsilon=1e-5)
    ...     def call(self, token_ids):
    ...         return self.decoder_stack(token_ids)
    >>> tuple(Tiny()(np.zeros((1, 3), "int32")).shape)
    (1, 3, 10)
    """

    def __init__(
        self,
        owner,
        *,
        vocabulary_size: int,
        hidden_dim: int,
        max_sequence_length: int,
        tie_embeddings: bool,
        what: str = "input",
        cross_attention: bool = False,
        scale_embeddings: bool = False,
        scale_output: bool = False,
        embeddings_initializer=None,
        output_initializer=None,
        position_initializer=None,
        **stack_arguments,
    ):
        self.num_layers = stack_arguments["num_layers"]
        self.num_heads = stack_arguments["num_heads"]
        self.hidden_dim = hidden_dim
        self.head_dim = stack_arguments.get("head_dim") or hidden_dim // self.num_heads
        self.max_sequence_length = max_sequence_length
        self.what = what
        self.cross_attention = cross_attention
        self.scale = math.sqrt(hidden_dim) if scale_embeddings else None
        self.output_scale = hidden_dim**-0.5 if scale_output else None
        policy = owner.dtype_policy
        initializers = {"embeddings_initializer": embeddings_initializer, "output_initializer": output_initializer}
        owner.token_embedding = TokenEmbedding(
            vocabulary_size,
            hidden_dim,
            tie_weights=tie_embeddings,
            **{key: value for key, value in initializers.items() if value is not None},
            dtype=policy,
            name="token_embedding",
        )
        owner.position_embedding = make_position_embedding(
            stack_arguments["position"],
            max_length=max_sequence_length,
            dim=hidden_dim,
            initializer=position_initializer,
            dtype=policy,
        )
        owner.embedding_dropout = keras.layers.Dropout(
            stack_arguments["dropout"], dtype=policy, name="embedding_dropout"
        )
        self.token_embedding = owner.token_embedding
        self.position_embedding = owner.position_embedding
        self.embedding_dropout = owner.embedding_dropout
        if cross_attention:
            stack_arguments["cross_attention"] = True
        self.position_bias, self.blocks, self.final_norm = make_stack_layers(
            owner, TransformerDecoderBlock, bidirectional=False, **stack_arguments
        )

    def build(self, memory_shape=None) -> None:
        """Builds every layer; `memory_shape` (B, S, C) for cross-attending blocks."""
        hidden_shape = (None, None, self.hidden_dim)
        self.token_embedding.build((None, None))
        build_position_layers(self.position_embedding, self.position_bias)
        for block in self.blocks:
            if self.cross_attention:
                block.build(hidden_shape, memory_shape or hidden_shape)
            else:
                block.build(hidden_shape)
        if self.final_norm is not None:
            self.final_norm.build(hidden_shape)

    # --- pieces -------------------------------------------------------------------------------

    def embed(self, token_ids, positions, training=None):
        """Token embeddings (+ absolute positions), dropped out: (B, T, C). Checks T against the longest input."""
        self.check_length(self.what, token_ids.shape[1])
        x = self.token_embedding(token_ids)  # (B, T, C); ids clamped to the vocabulary
        if self.scale is not None:
            x = x * ops.cast(self.scale, x.dtype)
        if self.position_embedding is not None:
            x = x + ops.cast(self.position_embedding(positions), x.dtype)
        return self.embedding_dropout(x, training=training)

    def logits(self, x):
        """Final norm and the output projection: float32 logits (B, T, V)."""
        if self.final_norm is not None:
            x = self.final_norm(x)
        logits = self.token_embedding(x, reverse=True)  # float32 (B, T, V)
        if self.output_scale is not None:
            # On the logits, not on x: scaling x right after the RMS norm gave a frozen export graph that
            # failed to import ("_output_shapes attribute inconsistent" on the norm's Mul, TF 2.21).
            logits = logits * self.output_scale
        return logits

    def check_length(self, what: str, length) -> None:
        """ValueError when a static `length` exceeds `max_sequence_length`."""
        check_length(what, length, self.max_sequence_length)

    # --- running ------------------------------------------------------------------------------

    def run(
        self,
        token_ids,
        positions,
        key_positions,
        *,
        memory=None,
        memory_mask=None,
        cache=None,
        grow_cache: bool = False,
        training=None,
        scores=None,
        logits_at=None,
    ):
        """Runs the blocks; returns logits, or `(logits, cache)` with a cache.

        Args:
            token_ids: int (B, T). Tokens.
            positions: int (B|1, T). Their positions.
            key_positions: int (B|1, Tk). Positions of the keys (T, or the cache slots).
            memory: the encoder output (B, S, C), or per layer its `(k, v)` from
                `cross_attention_cache`; None without cross-attention.
            memory_mask: bool (B, S), True on memory slots that may be attended; None for all.
            cache: per layer `(k, v)` self-attention cache, or None for a whole sequence.
            grow_cache: bool. `cache` is growing: keys are appended, and keys at negative
                `key_positions` (padding) are hidden.
            training: bool. Whether dropout is active.
            scores: dict of lists to append each block's attention weights to ("self", "cross"), or None.
            logits_at: int (B,) or None. Only the logits of token `logits_at[b]` of each row, (B, 1, V):
                a prefill that needs the next token's logits skips the output projection of the
                others (a third of a GPT-2-small prefill's matmul work). None: every token's.
        """
        x = self.embed(token_ids, positions, training)
        self_mask = causal_mask(positions, key_positions)  # (B|1, 1, T, Tk)
        if grow_cache:
            self_mask = ops.logical_and(self_mask, ops.expand_dims(ops.expand_dims(key_positions >= 0, 1), 1))
        self_bias = None if self.position_bias is None else self.position_bias(positions, key_positions)
        cross_mask = None if memory_mask is None else ops.cast(memory_mask, "bool")[:, None, None, :]
        writes = None  # a fixed cache's slot masks, made once for every layer's keys and values
        if cache is not None and not grow_cache:
            writes = cache_writes(positions, key_positions, cache[0][0].dtype)
        per_layer = memory if isinstance(memory, (tuple, list)) else [memory] * len(self.blocks)
        new_cache = []
        for i, block in enumerate(self.blocks):
            layer_memory = per_layer[i]
            if isinstance(layer_memory, (tuple, list)):
                layer_memory = tuple(layer_memory)  # a precomputed (k, v): nothing is projected again
            inputs = (x,) if memory is None else (x, layer_memory)
            out = block(
                *inputs,
                positions=positions,
                self_attention_mask=self_mask,
                self_attention_bias=self_bias,
                cache=None if cache is None else cache[i],
                grow_cache=grow_cache,
                cache_writes=writes,
                cross_attention_mask=cross_mask,
                training=training,
                return_attention_scores=scores is not None,
            )
            if scores is not None:
                *out, block_scores = out
                for kind, weights in block_scores.items():
                    scores.setdefault(kind, []).append(weights)
                out = out[0] if len(out) == 1 else tuple(out)
            if cache is None:
                x = out
            else:
                x, layer_cache = out
                new_cache.append(layer_cache)
        if logits_at is not None:
            # One GATHER over the flattened tokens (take_along_axis traced to slices TFLite lacks).
            batch, width = ops.shape(x)[0], ops.shape(x)[1]
            rows = ops.arange(batch, dtype="int32") * width + ops.cast(logits_at, "int32")  # (B,)
            x = ops.expand_dims(ops.take(ops.reshape(x, (-1, x.shape[-1])), rows, axis=0), 1)  # (B, 1, C)
        logits = self.logits(x)
        return logits if cache is None else (logits, tuple(new_cache))

    def __call__(self, token_ids, *, memory=None, memory_mask=None, training=None):
        """Logits (B, T, V) of a whole sequence at positions 0..T-1 (teacher forcing)."""
        positions = source_positions(token_ids)
        return self.run(token_ids, positions, positions, memory=memory, memory_mask=memory_mask, training=training)

    def attention_scores(self, token_ids, *, memory=None, memory_mask=None) -> dict:
        """{"self": per layer (B, H, T, T)[, "cross": per layer (B, H, T, S)], "logits": (B, T, V)}."""
        positions = source_positions(token_ids)
        scores = {}
        logits = self.run(token_ids, positions, positions, memory=memory, memory_mask=memory_mask, scores=scores)
        return {**scores, "logits": logits}

    # --- cached decoding ----------------------------------------------------------------------

    def init_cache(self, batch_size, max_length: int, grow: bool = False):
        """An empty KV cache: per layer `(k, v)`, each (B, num_heads, max_length, head_dim) float32.

        With `grow`, a growing cache (`tfzoo.layers.kv_cache`): `{"layers": per layer (k, v) with 0
        slots, "positions": int32 (B, 0)}`; each `call_with_cache` appends its tokens and their
        positions (a negative position marks a padding token, which no query attends to). For graphs
        that run without XLA; `max_length` is still checked against the model.
        """
        self.check_length("cache", max_length)
        slots = 0 if grow else max_length
        layers = tuple(
            (
                init_cache(batch_size, self.num_heads, slots, self.head_dim),
                init_cache(batch_size, self.num_heads, slots, self.head_dim),
            )
            for _ in range(self.num_layers)
        )
        if grow:
            return {"layers": layers, "positions": ops.zeros((batch_size, 0), dtype="int32")}
        return layers

    def cross_attention_cache(self, memory):
        """Every layer's cross-attention `(k, v)`, each (B, num_heads, S, head_dim), computed once per memory."""
        return tuple(block.cross_attention_layer.project_key_value(memory) for block in self.blocks)

    def call_with_cache(
        self, token_ids, positions, cache, memory=None, memory_mask=None, training=False, logits_at=None
    ):
        """Runs tokens (B, T) at `positions` (B, T) against `cache`; returns `(logits, cache)`.

        Keys and values of the new tokens are written into the cache at their
        positions (a growing cache from `init_cache(..., grow=True)`: appended, with
        their positions); each query attends to the cache slots at or before its own
        position, so rows of a batch may sit at different positions. `memory`
        is the encoder output or its `cross_attention_cache` (then nothing is
        projected again). `logits_at`: see `run`.
        """
        if memory is not None and not isinstance(memory, (tuple, list)):
            memory = self.cross_attention_cache(memory)
        positions = ops.cast(positions, "int32")
        if isinstance(cache, dict):  # growing: the slots hold the tokens run so far, at these positions
            key_positions = ops.concatenate([ops.cast(cache["positions"], "int32"), positions], axis=1)  # (B, S+T)
            logits, layers = self.run(
                token_ids,
                positions,
                key_positions,
                memory=memory,
                memory_mask=memory_mask,
                cache=cache["layers"],
                grow_cache=True,
                training=training,
                logits_at=logits_at,
            )
            return logits, {"layers": layers, "positions": key_positions}
        slots = cache_slots(cache[0][0])  # M: static, or dynamic (the exported prefill/decode)
        key_positions = ops.expand_dims(ops.arange(slots, dtype="int32"), 0)  # (1, M)
        return self.run(
            token_ids,
            positions,
            key_positions,
            memory=memory,
            memory_mask=memory_mask,
            cache=cache,
            training=training,
            logits_at=logits_at,
        )
