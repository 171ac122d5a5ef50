"""`Generator`: a model's whole decode loop as one compiled `tf.function`, ready to call or export."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tfzoo.decoding.generate import generate
from tfzoo.decoding.knobs import KNOB_TABLE, STRATEGIES, strategy_knobs
from tfzoo.decoding.sequences import SEQUENCE_OPTIONS, pad_sequences
from tfzoo.decoding.validation import DecodingError, validate_inputs, validate_static

# Run-time knobs: name -> (dtype, default), and the knobs of each strategy's exported signature; both read
# from the one knob table, `tfzoo.decoding.knobs`.
KNOBS: dict[str, tuple[tf.DType, Any]] = {knob.name: (tf.as_dtype(knob.dtype), knob.default) for knob in KNOB_TABLE}
STRATEGY_KNOBS: dict[str, tuple[str, ...]] = {strategy: strategy_knobs(strategy) for strategy in STRATEGIES}


XLA_MAX_WEIGHT_BYTES = 64 * 2**20
"""Above this many bytes of weights a decoder-only model decodes faster without XLA (`decoding_mode`)."""


def decoding_mode(model, jit_compile: bool | None = None) -> dict[str, bool]:
    """`jit_compile` and `grow_cache` for a decoder-only `Generator` of `model`: the faster pair on CPU.

    XLA fuses a small model's hundreds of small ops into a few kernels, but on CPU it runs a decode
    step's matrix-vector products more slowly than TensorFlow's own kernels: measured here (greedy,
    2 threads, prompt 32), XLA decodes 4-5x faster at 4 layers x 128 wide, about the same at 6 x 384
    (vocabulary 8192, 86 MB), and 3-4x slower at GPT-2-small size (498 MB, 1024 slots) than the graph
    without XLA over a growing cache, whose steps cost the tokens held. So: XLA below
    `XLA_MAX_WEIGHT_BYTES`, otherwise no XLA and a growing cache (same tokens either way).

    Args:
        model: keras.Model. A decoder-only model (`GPT`).
        jit_compile: bool or None. None chooses by size; False forces the graph without XLA (with
            the growing cache); True forces XLA (fixed-size cache).

    Example:
    >>> from tfzoo.models.gpt import GPT
    >>> model = GPT(vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=8,
    ...             intermediate_dim=16, max_sequence_length=16)
    >>> decoding_mode(model)
    {'jit_compile': True, 'grow_cache': False}
    """
    if jit_compile is None:
        size = sum(int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize for w in model.weights)
        jit_compile = size < XLA_MAX_WEIGHT_BYTES
    return {"jit_compile": bool(jit_compile), "grow_cache": not jit_compile}


class Generator:
    """Compiles `generate` for a model that has `init_cache` and `call_with_cache` (e.g. `GPT`).

    Static settings are fixed here; every knob is a scalar tensor input of
    `self.function`, so one trace serves all knob values. `__call__` checks
    its arguments (`DecodingError`) and runs the compiled function;
    `self.function.get_concrete_function(**self.signature())` is what an
    exporter traces (inputs named as in docs/contract.md's `generate` signature).

    Args:
        model: keras.Model with `init_cache(batch_size, max_length)` and
            `call_with_cache(token_ids, positions, cache) -> (logits, cache)`.
        max_length: int. Width of `sequences` (prompt + new tokens).
        strategy: str. "greedy", "sample" or "beam". Defaults to "greedy".
        beam_size: int. Defaults to 4.
        eos_ids: sequence of int. Defaults to none.
        banned_ids: sequence of int. Ids never emitted. Defaults to none.
        pad_id: int. Defaults to 0.
        length_penalty_form: str. "hf" or "gnmt". Defaults to "hf".
        return_beams: bool. Also return all beams (beam search). Defaults to False.
        jit_compile: bool. Compile with XLA. Defaults to True.
        grow_cache: bool. Decode with a growing cache (`model.init_cache(..., grow=True)`): each
            step costs the tokens held, not `max_length`. Dynamic shapes: needs `jit_compile=False`
            (what the TFLite and ONNX exports use). Defaults to False.
        sequence_shapes: dict or None. `{"stop_sequences": (S, T), "banned_sequences": (S, T)}`: the
            fixed shapes of those int32 inputs in `signature()` (an export's); None leaves them out of
            the signature. `__call__` takes them either way (`tfzoo.decoding.sequences`).

    `__call__` also takes `stop_sequences=` and `banned_sequences=`: lists of token-id lists (a row
    ends when its new tokens end with a stop sequence; a banned sequence never appears).

    Example:
    >>> from tfzoo.models.gpt import GPT
    >>> model = GPT(vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=8,
    ...             intermediate_dim=16, max_sequence_length=16)
    >>> generator = Generator(model, max_length=16, strategy="beam", beam_size=2, eos_ids=(1,))
    >>> out = generator([[5, 6, 7]], [3], max_new_tokens=4)
    >>> out["sequences"].shape
    (1, 16)
    """

    def __init__(
        self,
        model,
        *,
        max_length: int,
        strategy: str = "greedy",
        beam_size: int = 4,
        eos_ids: Sequence[int] = (),
        banned_ids: Sequence[int] = (),
        pad_id: int = 0,
        length_penalty_form: str = "hf",
        return_beams: bool = False,
        jit_compile: bool = True,
        grow_cache: bool = False,
        sequence_shapes: dict | None = None,
    ):
        self._check_model(model)
        if grow_cache and jit_compile:
            raise DecodingError("grow_cache=True has dynamic shapes, which XLA cannot compile: pass jit_compile=False")
        self.eos_ids, self.banned_ids = validate_static(
            strategy=strategy,
            beam_size=beam_size,
            max_length=max_length,
            eos_ids=eos_ids,
            banned_ids=banned_ids,
            pad_id=pad_id,
            length_penalty_form=length_penalty_form,
        )
        self.model = model
        self.max_length = max_length
        self.strategy = strategy
        self.beam_size = beam_size
        self.pad_id = pad_id
        self.length_penalty_form = length_penalty_form
        self.return_beams = return_beams
        self.jit_compile = jit_compile
        self.grow_cache = grow_cache
        self.sequence_shapes = {name: tuple(int(n) for n in shape) for name, shape in (sequence_shapes or {}).items()}
        settings = dict(
            max_length=max_length,
            strategy=strategy,
            beam_size=beam_size,
            eos_ids=self.eos_ids,
            banned_ids=self.banned_ids,
            pad_id=pad_id,
            length_penalty_form=length_penalty_form,
            return_beams=return_beams,
            grow_cache=grow_cache,
        )

        def run(token_ids, lengths, **inputs):
            # Knobs left out take their Python default, baked in when traced.
            knobs = {name: inputs.pop(name, default) for name, (_, default) in KNOBS.items()}
            knobs.update({name: inputs.pop(name, None) for name in SEQUENCE_OPTIONS})
            step_fn, cache = self._start(tf.shape(token_ids)[0], inputs)
            prefill_fn = self._prefill_fn()
            return generate(step_fn, cache, token_ids, lengths, prefill_fn=prefill_fn, **settings, **knobs)

        # reduce_retracing: after a second prompt shape, one trace serves every batch size and width.
        self.function = tf.function(run, jit_compile=jit_compile, autograph=False, reduce_retracing=True)

    # The hooks a conditional model (encoder-decoder, image) overrides: see `tfzoo.kinds`.
    def _check_model(self, model) -> None:
        for method in ("init_cache", "call_with_cache"):
            if not callable(getattr(model, method, None)):
                raise DecodingError(f"{type(model).__name__} has no {method}(); it cannot be decoded with a KV cache")

    def condition_specs(self, batch_size: int | None = None) -> dict[str, tf.TensorSpec]:
        """Specs of the inputs the decoder is conditioned on (none for a language model)."""
        return {}

    def _start(self, batch_size, conditions: dict) -> tuple[Any, Any]:
        """`(step_fn, cache)` for a batch: `model.call_with_cache` over a fresh cache."""
        if self.grow_cache:
            return self.model.call_with_cache, self.model.init_cache(batch_size, self.max_length, grow=True)
        return self.model.call_with_cache, self.model.init_cache(batch_size, self.max_length)

    def _prefill_fn(self):
        """The prefill computing only the last prompt token's logits, when the model's
        `call_with_cache` takes `logits_at` (GPT); else None (`generate` runs the step)."""
        if "logits_at" not in inspect.signature(self.model.call_with_cache).parameters:
            return None

        def prefill(token_ids, positions, cache, last):
            return self.model.call_with_cache(token_ids, positions, cache, logits_at=last)

        return prefill

    def signature(self, batch_size: int | None = None, prompt_length: int | None = None) -> dict[str, tf.TensorSpec]:
        """Input specs of `generate` for this strategy: conditions (if any), prompts, lengths, the knobs."""
        specs = dict(self.condition_specs(batch_size))
        specs["token_ids"] = tf.TensorSpec([batch_size, prompt_length], tf.int32, name="token_ids")
        specs["lengths"] = tf.TensorSpec([batch_size], tf.int32, name="lengths")
        for name in STRATEGY_KNOBS[self.strategy]:
            specs[name] = tf.TensorSpec([], KNOBS[name][0], name=name)
        for name, shape in self.sequence_shapes.items():
            specs[name] = tf.TensorSpec(shape, tf.int32, name=name)
        return specs

    def __call__(self, token_ids, lengths, **inputs) -> dict[str, np.ndarray]:
        """Checks the arguments, runs the compiled decoder and returns numpy outputs.

        Args:
            token_ids: int (B, P) right-padded prompts.
            lengths: int (B,) prompt lengths.
            **inputs: any of `KNOBS` (e.g. `max_new_tokens=32, top_k=5`), `stop_sequences` and
                `banned_sequences` (lists of token-id lists), and the conditions of a conditional
                model (`condition_specs()`).
        """
        conditions = {name: inputs.pop(name) for name in self.condition_specs() if name in inputs}
        tables = {}
        for name in SEQUENCE_OPTIONS:
            vocabulary = getattr(self.model, "vocabulary_size", None)
            table = pad_sequences(
                inputs.pop(name, None), self.sequence_shapes.get(name), name=name, vocabulary_size=vocabulary
            )
            if (table >= 0).any():  # else left out: no cost in the graph
                tables[name] = tf.constant(table, tf.int32)
        unknown = sorted(set(inputs) - set(KNOBS))
        if unknown:
            valid = ", ".join([*KNOBS, *SEQUENCE_OPTIONS])
            raise DecodingError(f"unknown decoding option {unknown[0]!r}; valid: {valid}")
        token_ids = np.asarray(token_ids)
        lengths = np.asarray(lengths)
        if token_ids.size and not np.issubdtype(token_ids.dtype, np.integer):
            raise DecodingError(f"token_ids must be integers, got dtype {token_ids.dtype}")
        values = {name: inputs.get(name, default) for name, (_, default) in KNOBS.items()}
        validate_inputs(token_ids=token_ids, lengths=lengths, max_length=self.max_length, **values)
        tensors = {name: tf.constant(values[name], dtype) for name, (dtype, _) in KNOBS.items()}
        for name, spec in self.condition_specs().items():
            if name not in conditions:
                raise DecodingError(f"missing input {name!r}")
            tensors[name] = tf.constant(conditions[name], spec.dtype)
        outputs = self.function(tf.constant(token_ids, tf.int32), tf.constant(lengths, tf.int32), **tensors, **tables)
        return {key: value.numpy() for key, value in outputs.items()}
