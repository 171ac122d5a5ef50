"""`KerasRuntime`: the trained Keras model behind the runtime interface (the reference of the parity checks)."""

from __future__ import annotations

import numpy as np

from tfzoo.kinds import kind_of
from tfzoo.runtime_errors import RuntimeInputError
from tfzoo.runtime_inputs import check_prompts
from tfzoo.runtimes.base import Runtime


class KerasRuntime(Runtime):
    """The trained Keras model behind the same interface: the decode loops and steps the export traces.

    Args:
        model: keras.Model (`GPT`, `Transformer`, `Captioner`; a BERT model: `embed`, `classify` only).
        info: dict. As for the other runtimes (max_length, strategy,
            strategies, beam_size, eos_ids, banned_ids, pad_id, ...).
        jit_compile: bool. Compile with XLA. Defaults to False.
    """

    name = "keras"
    takes_min_new_tokens = True

    def __init__(self, model, info: dict, jit_compile: bool = False):
        super().__init__(info)
        import tensorflow as tf  # noqa: PLC0415 (imported only when needed)

        self.model = model
        self.model_kind = kind = kind_of(model)  # the kind bound to the model: its model side too
        self.generators = {
            strategy: kind.generator(
                max_length=self.max_length,
                strategy=strategy,
                beam_size=int(info["beam_size"]),
                eos_ids=tuple(info["eos_ids"]),
                banned_ids=tuple(info["banned_ids"]),
                pad_id=int(info["pad_id"]),
                jit_compile=jit_compile,
                sequence_shapes=info.get("sequence_shapes"),
            )
            for strategy in self.strategies
        }
        # reduce_retracing: the cache's slot count grows by blocks (`Runtime._grown_cache`); one trace serves all.
        self._step_function = tf.function(kind.step, jit_compile=jit_compile, autograph=False, reduce_retracing=True)
        self._encode_function = tf.function(kind.encode, autograph=False) if kind.has_encoder else None
        self._encoder_functions = {}  # embed, classify (encoder kind), synthesize (tts): traced on first use
        self._tf = tf

    def _input_dtypes(self, signature):
        if signature not in self.model_kind.signatures:
            raise RuntimeInputError(f"the Keras runtime runs {signature!r} through its own method")
        specs = self.model_kind.signature_specs()[signature]
        return {name: spec.dtype.as_numpy_dtype for name, spec in specs.items()}

    def _run(self, signature, inputs):
        tf = self._tf
        if signature not in self._encoder_functions:
            self._encoder_functions[signature] = tf.function(getattr(self.model_kind, signature), autograph=False)
        outputs = self._encoder_functions[signature]({k: tf.constant(v) for k, v in inputs.items()})
        return {key: value.numpy() for key, value in outputs.items()}

    def generate(
        self,
        token_ids=None,
        lengths=None,
        max_new_tokens: int = 64,
        *,
        strategy=None,
        **inputs,
    ):
        strategy = strategy or self.strategy
        if strategy not in self.generators:
            raise RuntimeInputError(f"no {strategy!r} strategy; have {', '.join(self.generators)}")
        tables = self.sequence_tables(inputs)
        conditions, knobs = self.split_inputs(inputs)
        if conditions and token_ids is None:
            token_ids, lengths = self.start_prompts(len(next(iter(conditions.values()))))
        token_ids, lengths = check_prompts(token_ids, lengths)
        outputs = self.generators[strategy](
            token_ids, lengths, max_new_tokens=max_new_tokens, **knobs, **conditions, **tables
        )
        return outputs["sequences"], outputs["sequence_lengths"], outputs["scores"]

    def _encode(self, conditions):
        tf = self._tf
        outputs = self._encode_function({k: tf.constant(v) for k, v in conditions.items()})
        return {key: value.numpy() for key, value in outputs.items()}

    def _step(self, signature, token_ids, positions, cache, context=None):
        tf = self._tf
        positions = np.clip(np.asarray(positions, np.int32), 0, self.max_length - 1)
        cache = self._grown_cache(signature, positions, cache)
        cache = tuple((tf.constant(k), tf.constant(v)) for k, v in cache)
        context = {k: tf.constant(v) for k, v in self._context_inputs(context).items()}
        logits, cache = self._step_function(
            tf.constant(np.asarray(token_ids, np.int32)), tf.constant(positions), cache, context
        )
        return logits.numpy(), tuple((k.numpy(), v.numpy()) for k, v in cache)
