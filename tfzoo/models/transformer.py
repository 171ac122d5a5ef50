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

import keras
from keras import ops

from tfzoo.layers.encoder_stack import EncoderStack
from tfzoo.layers.stack_layers import source_positions
from tfzoo.models.arguments import check_pad_id
from tfzoo.models.stack_model import StackModel

POSITIONS = ("sinusoidal", "relative")


@keras.saving.register_keras_serializable(package="tfzoo")
class Transformer(StackModel):
    """Encoder-decoder Transformer for sequence-to-sequence tasks.

    `model({"source_ids": (B, S), "target_ids": (B, T)})` returns float32
    logits (B, T, vocabulary_size) with teacher forcing: target position t sees
    target tokens 0..t and every real source token. Sources are right-padded;
    their length comes from `"source_lengths"` (B,) when given, else from the
    tokens that are not `pad_id`. Padding never changes any output.

    Args:
        *args, **kwargs: the architecture arguments of `StackModel`
            (`vocabulary_size`, shared by source and target; `num_layers` of
            encoder blocks and of decoder blocks; `num_heads`, `hidden_dim` (even
            with sinusoidal positions), `intermediate_dim`, `max_sequence_length`
            (longest source and longest target incl. the start token),
            `position` ("sinusoidal", the default, or "relative"), `dropout`,
            `activation` (defaults to "relu"), `norm_first` (pre-norm plus a final
            norm per stack, the default; post-norm is the 2017 model),
            `layer_norm_epsilon`, `pad_id`,
            `norm` ("layer" or "rms"), `use_bias`, `scale_queries`).
        tie_embeddings: bool. The one token table of source and target is also
            the output projection. Defaults to True.
        scale_embeddings: bool. Multiply the token embeddings by sqrt(hidden_dim)
            on lookup (Vaswani et al.); T5 does not. Defaults to True.
        scale_decoder_output: bool. Multiply the decoder's final hidden states by
            hidden_dim**-0.5 before the output projection (T5 with tied
            embeddings). Defaults to False.
        decoder_start_id: int, optional. The token the decoder starts from (T5:
            the pad id, 0). None: the tokenizer's `<bos>`, else its end-of-text id.

    T5 is `position="relative", norm="rms", use_bias=False, scale_queries=False,
    scale_embeddings=False, norm_first=True, layer_norm_epsilon=1e-6,
    decoder_start_id=0`, with `activation="relu"` and `scale_decoder_output=True`
    (the original T5) or `activation="geglu_tanh"` and an untied head (T5 v1.1,
    flan-T5); `python -m tfzoo.convert t5` builds it from a Hugging Face folder.

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

    POSITIONS = POSITIONS
    DEFAULTS = {"position": "sinusoidal", "activation": "relu", "norm_first": True}

    def __init__(
        self,
        *args,
        tie_embeddings: bool = True,
        scale_embeddings: bool = True,
        scale_decoder_output: bool = False,
        decoder_start_id: int | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if decoder_start_id is not None:
            check_pad_id(decoder_start_id, self.vocabulary_size, "decoder_start_id")
        self.keep_arguments(locals())
        # The encoder embeds the source with the decoder's embedding (one table, one sinusoid).
        self.decoder_stack = self.make_cross_attending_decoder("target", scale_embeddings, scale_decoder_output)
        self.encoder_stack = EncoderStack(self, **self.stack_arguments(), prefix="encoder_")

    def build(self, input_shape=None):
        self.decoder_stack.build()
        self.encoder_stack.build()
        self.built = True

    def compute_source_mask(self, source_ids, source_lengths=None):
        """bool (B, S): True on real source tokens (slot < length, or token != pad_id without lengths)."""
        if source_lengths is None:
            return ops.not_equal(ops.cast(source_ids, "int32"), self.pad_id)
        slots = source_positions(source_ids)  # (1, S)
        return ops.less(slots, ops.expand_dims(ops.cast(source_lengths, "int32"), -1))  # (B, S)

    # --- encoder ------------------------------------------------------------------------------

    def encode(self, source_ids, source_lengths=None, training=None, scores=None):
        """Encodes right-padded `source_ids` (B, S) into the memory (B, S, hidden_dim).

        Args:
            source_ids: int (B, S). Source tokens, right-padded.
            source_lengths: int (B,), optional. Real tokens per row; without it
                every token that is not `pad_id` is real.
            training: bool. Whether dropout is active.
            scores: list, optional. Each encoder block's self-attention weights are appended to it.

        Raises:
            ValueError: S is known and longer than `max_sequence_length`.
        """
        self.decoder_stack.check_length("source", source_ids.shape[1])
        source_mask = self.compute_source_mask(source_ids, source_lengths)  # (B, S)
        positions = source_positions(source_ids)  # (1, S)
        x = self.decoder_stack.embed(source_ids, positions, training)
        # (B, 1, 1, S): padding is never a key
        return self.encoder_stack(x, positions, source_mask[:, None, None, :], training=training, scores=scores)

    # --- teacher forcing ----------------------------------------------------------------------

    def call(self, inputs, training=None):
        """Logits (B, T, V) for `inputs` = {"source_ids", "target_ids"[, "source_lengths"]}."""
        if not isinstance(inputs, dict) or not {"source_ids", "target_ids"} <= set(inputs):
            raise ValueError(
                "Transformer inputs must be a dict with 'source_ids' and 'target_ids' (and optionally "
                f"'source_lengths'), got {sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__}."
            )
        source_ids, target_ids = inputs["source_ids"], inputs["target_ids"]
        self.decoder_stack.check_length("target", target_ids.shape[1])
        source_mask = self.compute_source_mask(source_ids, inputs.get("source_lengths"))
        memory = self.encode(source_ids, inputs.get("source_lengths"), training=training)
        return self.decoder_stack(target_ids, memory=memory, memory_mask=source_mask, training=training)

    def attention_scores(self, source_ids, target_ids, source_lengths=None) -> dict:
        """Attention weights of a teacher-forced pass, for plots.

        Returns:
            {"encoder": per layer (B, H, S, S), "self": per layer (B, H, T, T),
            "cross": per layer (B, H, T, S), "logits": (B, T, V) as from `call`};
            every attention row sums to one (padded source keys get weight 0).

        Example:
        >>> import numpy as np
        >>> model = Transformer(vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=8,
        ...                     intermediate_dim=16, max_sequence_length=8)
        >>> scores = model.attention_scores(np.array([[5, 6, 0]]), np.array([[3, 7]]))
        >>> [tuple(scores[kind][0].shape) for kind in ("encoder", "self", "cross")]
        [(1, 2, 3, 3), (1, 2, 2, 2), (1, 2, 2, 3)]
        """
        source_ids, target_ids = ops.convert_to_tensor(source_ids, "int32"), ops.convert_to_tensor(target_ids, "int32")
        encoder_scores = []
        memory = self.encode(source_ids, source_lengths, scores=encoder_scores)
        source_mask = self.compute_source_mask(source_ids, source_lengths)
        scores = self.decoder_stack.attention_scores(target_ids, memory=memory, memory_mask=source_mask)
        return {"encoder": encoder_scores, **scores}

    # --- cached decoding ----------------------------------------------------------------------

    def init_cache(self, batch_size, max_length: int):
        """Empty decoder self-attention cache: per layer `(k, v)`, each (B, num_heads, max_length, head_dim)."""
        return self.decoder_stack.init_cache(batch_size, max_length)

    def cross_attention_cache(self, memory):
        """Every decoder layer's cross-attention `(k, v)`, each (B, num_heads, S, head_dim), computed once."""
        return self.decoder_stack.cross_attention_cache(memory)

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
        return self.decoder_stack.call_with_cache(token_ids, positions, cache, memory, source_mask, training=training)

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
