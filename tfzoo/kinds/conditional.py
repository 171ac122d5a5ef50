"""`ConditionalGenerator`: `tfzoo.decoding.Generator` for the kinds whose decoder attends to an encoder."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfzoo.decoding.generator import Generator
from tfzoo.decoding.validation import DecodingError


class ConditionalGenerator(Generator):
    """`tfzoo.decoding.Generator` for encoder-decoder and image models.

    The compiled loop encodes the conditioning inputs once
    (`kind.init_decoding_cache`, i.e. `model.init_decoding_cache`), then runs
    `tfzoo.decoding.generate` with `model.decoding_step` (as training-time
    translation does, `tfzoo.training.tasks.Seq2SeqTask.translate`);
    `signature()` puts the kind's conditions before `token_ids` (the decoder
    prompt, normally the start token), `lengths` and the knobs.

    Args:
        kind: a `tfzoo.kinds.base.EncoderKind` bound to its model.
        **settings: `max_length` (at most the model's `max_sequence_length`),
            `strategy`, `beam_size`, `eos_ids`, `banned_ids`, `pad_id`,
            `length_penalty_form`, `return_beams`, `jit_compile`: as for `Generator`
            (`grow_cache` is for decoder-only models: not taken here).

    Example:
    >>> from tfzoo.kinds import kind_of
    >>> from tfzoo.models.transformer import Transformer
    >>> model = Transformer(vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=8,
    ...                     intermediate_dim=16, max_sequence_length=8)
    >>> generator = kind_of(model).generator(max_length=8, eos_ids=(1,))
    >>> sorted(generator.signature())[:3]
    ['lengths', 'max_new_tokens', 'no_repeat_ngram_size']
    """

    def __init__(self, kind, **settings: Any):
        if settings.get("grow_cache"):
            raise DecodingError(f"grow_cache is for decoder-only models, not a {kind.name} model")
        self.kind = kind
        super().__init__(kind.model, **settings)

    def _check_model(self, model) -> None:
        pass  # the kind already checked the model's class

    def condition_specs(self, batch_size: int | None = None) -> dict[str, tf.TensorSpec]:
        return self.kind.condition_specs(batch_size)

    def _start(self, batch_size, conditions):
        cache = self.kind.init_decoding_cache(self.kind.prepare(conditions), self.max_length)
        return self.kind.model.decoding_step, cache
