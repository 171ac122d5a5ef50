"""GPT: a decoder-only Transformer language model with a KV cache.

Reads top down: token embedding (+ absolute positions) -> `num_layers` decoder
blocks -> final norm -> logits tied to the token embedding. Relative positions
(T5 buckets) and ALiBi become one attention bias shared by all blocks; rotary
positions are applied inside each block's attention.
"""

from __future__ import annotations

import keras

from tfzoo.layers.decoder_stack import DecoderStack
from tfzoo.models.stack_model import StackModel

POSITIONS = StackModel.POSITIONS


@keras.saving.register_keras_serializable(package="tfzoo")
class GPT(StackModel):
    """Decoder-only Transformer language model.

    `model(token_ids)` returns float32 logits (B, T, vocabulary_size) for a
    whole sequence; `call_with_cache` runs the same network a few tokens at a
    time against a fixed-size KV cache (`init_cache`), which is what the
    in-graph decoders and the exported `prefill`/`decode` signatures use.

    Args:
        *args, **kwargs: the architecture arguments of `StackModel`
            (`vocabulary_size`, `num_layers`, `num_heads`, `hidden_dim`,
            `intermediate_dim`, `max_sequence_length`, `position` (any of
            "learned", "sinusoidal", "relative", "rotary", "alibi"; defaults to
            "learned"), `dropout`, `activation` (defaults to "gelu"), `norm_first`
            (pre-norm GPT-2, defaults to True), `layer_norm_epsilon`, `pad_id`).
            The forward pass does not depend on `pad_id` (it is recorded for
            decoding and export). GPT-2 has no padding token: a converted GPT-2
            (`tfzoo.convert`) pads with its end-of-text id, 50256 (Hugging Face's
            `pad_token_id = eos_token_id`).
        tie_embeddings: bool. Reuse the token embedding as the output
            projection. Defaults to True.

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

    def __init__(self, *args, tie_embeddings: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.keep_arguments(locals())
        # token_embedding, position_embedding / position_bias, embedding_dropout, blocks, final_norm
        self.decoder_stack = DecoderStack(
            self,
            **self.decoder_arguments(),
            embeddings_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            output_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            # Like the token table: Keras's default glorot table (std ~0.1 at 64 x 128) drowned the
            # token signal and cost 0.045 nats on nanoGPT's recipe (README, Benchmarks).
            position_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        )

    def build(self, input_shape=None):
        if self.built:  # e.g. built by a first `call_with_cache`
            return
        self.decoder_stack.build()
        self.built = True

    def call(self, token_ids, training=None):
        """Logits (B, T, V) for token ids (B, T) at positions 0..T-1."""
        return self.decoder_stack(token_ids, training=training)

    def attention_scores(self, token_ids) -> dict:
        """The causal self-attention weights of `model(token_ids)`, for plots.

        Returns:
            {"self": per layer (B, num_heads, T, T), "logits": (B, T, V) as from `call`}.

        Example:
        >>> import numpy as np
        >>> model = GPT(vocabulary_size=10, num_layers=2, num_heads=2, hidden_dim=8,
        ...             intermediate_dim=16, max_sequence_length=8)
        >>> [tuple(w.shape) for w in model.attention_scores(np.ones((1, 4), "int32"))["self"]]
        [(1, 2, 4, 4), (1, 2, 4, 4)]
        """
        self.build()
        return self.decoder_stack.attention_scores(token_ids)

    def init_cache(self, batch_size, max_length: int, grow: bool = False):
        """An empty KV cache: per layer `(k, v)`, each (B, num_heads, max_length, head_dim) float32.

        `grow=True`: a growing cache instead (`DecoderStack.init_cache`), for graphs without XLA.
        """
        return self.decoder_stack.init_cache(batch_size, max_length, grow)

    def call_with_cache(self, token_ids, positions, cache, training=False, logits_at=None):
        """Runs tokens (B, T) at `positions` (B, T) against `cache`; returns `(logits, cache)`.

        Keys and values of the new tokens are written into the cache at their
        positions; each query attends to the cache slots at or before its own
        position, so rows of a batch may sit at different positions. With
        `logits_at` (int (B,)), only token `logits_at[b]`'s logits: (B, 1, V).
        """
        self.build()
        return self.decoder_stack.call_with_cache(token_ids, positions, cache, training=training, logits_at=logits_at)
