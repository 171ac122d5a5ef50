"""`ExportModule`: the model's generation signatures as `tf.function`s, ready to save and convert.

Signatures (docs/contract.md, "The `generate` signature"), the same in every format:

- `generate`: the decode loop of the exported strategy (`tfzoo.decoding.Generator`),
  inputs `token_ids` (B, P) right-padded, `lengths` (B,), `max_new_tokens`,
  the strategy's knobs, and `stop_sequences`, `banned_sequences` (int32 tables of a fixed
  shape padded with -1: `tfzoo.decoding.sequences`) (`Generator.signature()`); outputs `sequences`
  (B, max_length), `sequence_lengths` (B,), `scores` (B,). Any prompt width P
  is accepted: prompts are padded (or cut) to `max_length` inside the graph.
- `generate_<strategy>` for the other parity strategies (greedy, and beam when
  the export is sampled), so that the greedy and beam paths of one export are
  both measured and usable. Same inputs as that strategy's `generate`.
- `prefill` (B, T) and `decode` (B, 1): `token_ids`, `positions` and per layer
  `past_k_<i>`, `past_v_<i>` (B, num_heads, S, head_dim) in, S dynamic (any slot count up
  to `max_length`: slot s holds position s; a token at position p is written to slot p,
  dropped when p >= S); `logits` (B, T, V) and `present_k_<i>`, `present_v_<i>` (the same S) out.
  A step attends over the S slots it is given, so a caller that feeds the slots in use (the
  runtimes grow S in blocks, `tfzoo.runtimes.base.CACHE_BLOCK`) pays for the tokens held, not
  for `max_length`; feeding `max_length` slots gives the same logits.
- `serving_default` (SavedModel only): `prompts` string (B,) and
  `max_new_tokens` in; `completions` string (B,) (the generated text, without
  the prompt) and `scores` out. The tokenizer runs in the graph
  (`export.tokenizer_ops`); for wordpiece, sentencepiece and bpe it uses
  tensorflow-text ops, so loading that SavedModel needs `import tensorflow_text`.

Encoder-decoder and image models (model kinds `seq2seq`, `captioner`: `tfzoo.kinds`) add their
conditioning inputs to `generate` (`source_ids` (B, S) and `source_lengths`
(B,), or `image` (B, H, W, C) float32), and an `encode` signature (those
inputs in; `encoder_output` and per decoder layer `cross_k_<i>`, `cross_v_<i>`
(B, num_heads, S, head_dim) out; S = `max_sequence_length` for seq2seq, the
number of patches for the captioner). Their `prefill` and `decode` also take the
`cross_k_<i>`, `cross_v_<i>` (and `source_lengths` for seq2seq). Their
`serving_default` takes `sources` string (B,) (seq2seq) or `image` (captioner)
and `max_new_tokens`, and returns `completions` (the translation or caption)
and `scores`; the decoder prompt is the start token.

A kind with a `start_signature` (the `asr` kind: `transcribe`) also gets that
signature: the exported strategy's decode loop from the start token, its
conditions and knobs in (no `token_ids`, `lengths`), the `generate` outputs out.

Inputs are guarded in the graph, since TFLite does not bounds-check gathers:
token ids are clamped by the model, lengths to [1, width], positions to
[0, max_length - 1] and `max_new_tokens` to the room left by `generate`.
Variables stay variables (tracked by the module): the SavedModel keeps them in
`variables/`, and the converters freeze them.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from export.tokenizer_ops import TokenizerOps
from tfzoo.decoding.generator import Generator
from tfzoo.decoding.graph_ops import clamp
from tfzoo.decoding.knobs import KNOBS_BY_NAME, strategy_knobs
from tfzoo.decoding.sequences import DEFAULT_SHAPES
from tfzoo.kinds import ModelKind, kind_of

GENERATE_OUTPUTS = ("sequences", "sequence_lengths", "scores")


def generate_signature_name(strategy: str, exported_strategy: str) -> str:
    """`generate` for the exported strategy, `generate_<strategy>` for the others."""
    return "generate" if strategy == exported_strategy else f"generate_{strategy}"


def parity_strategies(strategy: str) -> tuple[str, ...]:
    """The strategies an export of `strategy` carries: itself first, then greedy and beam."""
    return tuple(dict.fromkeys((strategy, "greedy", "beam")))


class ExportModule(tf.Module):
    """The signatures of one model, as `tf.function`s with fixed input signatures.

    Args:
        model: keras.Model with `init_cache(batch, max_length)` and
            `call_with_cache(token_ids, positions, cache)` (e.g. `GPT`).
        max_length: int. Width of `sequences` and of the KV cache.
        strategy: str. The strategy of `generate`: "beam", "greedy" or "sample".
        beam_size: int. Beams of the beam strategy.
        eos_ids: sequence of int. Ids that end a row.
        banned_ids: sequence of int. Ids never generated.
        pad_id: int. Padding id of prompts and outputs.
        tokenizer: a tfzoo `Tokenizer` (or a char/byte/bpe `tokenizer.json`
            dict) or None. Adds `serving_default` when given; any type in
            `export.tokenizer_ops.SUPPORTED_TYPES`.
        strategies: sequence of str or None. Generate strategies to export
            (the first must be `strategy`; empty: no `generate`); defaults to
            `parity_strategies(strategy)`.
        steps: bool. Export `prefill` and `decode` (and `encode` for models
            with an encoder). Defaults to True.
        start_id: int. The decoder prompt of `serving_default` for models with
            an encoder (their start token). Defaults to the first `eos_ids`.
        kind: `tfzoo.kinds.ModelKind` bound to `model`, or None. Defaults to `tfzoo.kinds.kind_of(model)`.
        sequence_shapes: dict. The fixed shapes of the `stop_sequences` and `banned_sequences` inputs
            of every `generate*` signature (int32, padded with -1; `tfzoo.decoding.sequences`).
            Defaults to `DEFAULT_SHAPES` (4 x 16 and 16 x 16).
        jit_compile: bool. Compile the decode loops of `generate*` and
            `serving_default` with XLA (input preparation and the tokenizer
            stay outside, so one compilation serves every prompt width of a
            batch size): the SavedModel's `generate` then runs ~15x faster in
            TensorFlow. `portable_function` gives the same signatures without
            XLA, for tf2onnx and the TFLite converter; there (and everywhere
            when False) a decoder-only model's `generate` decodes with a
            growing cache and runs the prefill on the prompt's width, so a step
            costs the tokens held, not `max_length`. `prefill` and `decode` are
            never compiled (`prefill` would recompile for every prompt length)
            and keep the fixed-size cache of their signature. Defaults to False.

    Example:
    >>> from tfzoo.models.gpt import GPT
    >>> model = GPT(vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=8,
    ...             intermediate_dim=16, max_sequence_length=16)
    >>> module = ExportModule(model, max_length=16, strategy="greedy", eos_ids=(1,))
    >>> sorted(module.signatures())
    ['decode', 'generate', 'generate_beam', 'prefill']
    """

    def __init__(
        self,
        model,
        *,
        max_length: int,
        strategy: str = "beam",
        beam_size: int = 4,
        eos_ids: Sequence[int] = (),
        banned_ids: Sequence[int] = (),
        pad_id: int = 0,
        tokenizer=None,
        strategies: Sequence[str] | None = None,
        steps: bool = True,
        jit_compile: bool = False,
        start_id: int | None = None,
        kind: ModelKind | None = None,
        sequence_shapes: dict | None = None,
    ):
        super().__init__(name="tfzoo_export")
        self.sequence_shapes = dict(DEFAULT_SHAPES if sequence_shapes is None else sequence_shapes)
        self.model_variables = [v.value for v in model.variables]  # tracked: saved under variables/
        self._keras_variables = _Untracked(list(model.variables))
        self.max_length = int(max_length)
        self.strategy = strategy
        self.jit_compile = jit_compile
        self.num_layers = int(model.num_layers)
        self.num_heads = int(model.num_heads)
        self.head_dim = int(model.head_dim)
        self.vocabulary_size = int(model.vocabulary_size)
        self.kind = kind = kind or kind_of(model)
        self.start_id = int(start_id if start_id is not None else (tuple(eos_ids) or (pad_id,))[0])
        strategies = parity_strategies(strategy) if strategies is None else tuple(strategies)
        if strategies and strategies[0] != strategy:
            raise ValueError(f"strategies must start with the exported strategy {strategy!r}, got {strategies}")

        def generator(name: str, grow_cache: bool = False):
            return kind.generator(
                max_length=self.max_length,
                strategy=name,
                beam_size=beam_size,
                eos_ids=eos_ids,
                banned_ids=banned_ids,
                pad_id=pad_id,
                jit_compile=False,
                grow_cache=grow_cache,
                sequence_shapes=self.sequence_shapes,
            )

        generators = {name: generator(name) for name in strategies}
        # Without XLA (TFLite, ONNX, `jit_compile=False`) decoder-only models decode with a growing
        # cache: each step costs the tokens held, not `max_length` (tfzoo.layers.kv_cache).
        growing = {} if kind.has_encoder else {name: generator(name, grow_cache=True) for name in strategies}
        self._cores = _Untracked({})  # (strategy, grow_cache, jit_compile) -> the decode loop, shared
        builders = {}  # signature name -> build(jit) -> tf.function
        for name, generator in generators.items():
            builders[generate_signature_name(name, strategy)] = self._generate_builder(generator, growing.get(name))
        if steps:
            if kind.has_encoder:
                builders["encode"] = self._encode_builder()
            builders["prefill"] = self._step_builder(None)
            builders["decode"] = self._step_builder(1)
        if kind.start_signature and strategies:
            builders[kind.start_signature] = self._start_builder(generators[strategy], growing.get(strategy))
        if tokenizer is not None and strategies:
            builders["serving_default"] = self._serving_builder(tokenizer, generators[strategy])
        self._builders = _Untracked(builders)  # `_cores` is filled by the builders when they run
        self._portable = _Untracked({})
        self._functions = {}
        for name, build in builders.items():
            self._functions[name] = build(jit_compile)
            setattr(self, name, self._functions[name])  # tracked: restorable as `loaded.<name>` too

    def signatures(self, names: Sequence[str] | None = None) -> dict[str, tf.types.experimental.ConcreteFunction]:
        """Concrete functions by signature name (all, or `names`)."""
        names = list(self._functions) if names is None else list(names)
        return {name: self._functions[name].get_concrete_function() for name in names}

    @property
    def signature_names(self) -> list[str]:
        return list(self._functions)

    def function(self, name: str) -> tf.types.experimental.PolymorphicFunction:
        """The saved `tf.function` of a signature."""
        return self._functions[name]

    def portable_function(self, name: str) -> tf.types.experimental.PolymorphicFunction:
        """The signature as one plain graph (no XLA, no nested function call), e.g. for tf2onnx."""
        if not self.jit_compile:
            return self._functions[name]
        if name not in self._portable.value:
            self._portable.value[name] = self._builders.value[name](False)
        return self._portable.value[name]

    def weights(self) -> dict[str, np.ndarray]:
        """The model's weights by the input names of `stateless_function` (`weight_<i>`, in `model.variables` order)."""
        return {f"weight_{i}": np.asarray(v.numpy()) for i, v in enumerate(self._keras_variables.value)}

    def stateless_function(self, name: str) -> tf.types.experimental.PolymorphicFunction:
        """`portable_function(name)` with the model's weights as extra inputs `weight_<i>` (see `weights`).

        Nothing is captured, so a converter has no variables to freeze: freezing GPT-2-small's
        498 MB of weights into constants made tf2onnx peak at 12 GB for one signature.
        """
        function = self.portable_function(name)
        return self.stateless(function.python_function, function.input_signature)

    def stateless(self, python_function, input_signature) -> tf.types.experimental.PolymorphicFunction:
        """`python_function` (which reads the model's weights) as a `tf.function` taking them as inputs.

        The inputs are `input_signature` followed by `weight_<i>` (see `weights`): what
        `stateless_function` does for a signature, for any function of the model (e.g. the ONNX
        Runtime GenAI decoder of `export.genai_export`).
        """
        specs = list(input_signature)
        variables = self._keras_variables.value
        weight_specs = [tf.TensorSpec(v.shape, v.dtype, name=f"weight_{i}") for i, v in enumerate(variables)]
        count = len(specs)

        def stateless(*args):
            with keras.StatelessScope(state_mapping=list(zip(variables, args[count:]))):
                return python_function(*args[:count])

        return tf.function(stateless, input_signature=specs + weight_specs, autograph=False)

    def _pad_prompts(self, token_ids, lengths, static: bool = True):
        """Prompts of any width -> (B, max_length) right-padded, lengths in [1, min(width, max_length)].

        `static=False` (a growing cache): cut to `max_length` but not padded to it (at least one
        column), so that the prefill runs the prompt's width only.
        """
        token_ids = tf.cast(token_ids, tf.int32)[:, : self.max_length]
        width = tf.shape(token_ids)[1]
        if static:
            token_ids = tf.pad(token_ids, [[0, 0], [0, self.max_length - width]])
            token_ids = tf.reshape(token_ids, [-1, self.max_length])  # static width for the decoder
        else:
            token_ids = tf.pad(token_ids, [[0, 0], [0, tf.maximum(1 - width, 0)]])
        lengths = clamp(tf.cast(lengths, tf.int32), 1, tf.maximum(width, 1))
        return token_ids, lengths

    @staticmethod
    def _core(python_function, jit_compile: bool):
        """`python_function` inline (traced into the caller's graph) or as an XLA-compiled call."""
        if jit_compile:
            return tf.function(python_function, jit_compile=True, autograph=False)
        return python_function

    def _decode_loop(self, generator: Generator, jit_compile: bool):
        """The generator's loop, one per (strategy, jit): `generate` and `serving_default` share its compilation."""
        key = (generator.strategy, generator.grow_cache, jit_compile)
        if key not in self._cores.value:
            self._cores.value[key] = self._core(generator.function.python_function, jit_compile)
        return self._cores.value[key]

    def _generate_builder(self, generator: Generator, growing: Generator | None = None):
        specs = generator.signature()
        names = list(specs)

        def build(jit_compile: bool):
            chosen = generator if jit_compile or growing is None else growing
            run = self._decode_loop(chosen, jit_compile)

            def generate(*args):
                inputs = dict(zip(names, args))
                token_ids, lengths = inputs.pop("token_ids"), inputs.pop("lengths")
                token_ids, lengths = self._pad_prompts(token_ids, lengths, static=not chosen.grow_cache)
                outputs = run(token_ids, lengths, **inputs)
                return {key: outputs[key] for key in GENERATE_OUTPUTS}

            return tf.function(generate, input_signature=list(specs.values()), autograph=False)

        return build

    def _start_builder(self, generator: Generator, growing: Generator | None = None):
        """`generate` from the start token: the kind's conditions and the knobs in, no decoder prompt."""
        order = list(generator.signature())  # the `generate` inputs, in order
        specs = {k: v for k, v in generator.signature().items() if k not in ("token_ids", "lengths")}
        names, first = list(specs), list(self.kind.condition_specs())[0]
        generate = self._generate_builder(generator, growing)

        def build(jit_compile: bool):
            run = generate(jit_compile)

            def start(*args):
                inputs = dict(zip(names, args))
                batch = tf.shape(inputs[first])[0]
                inputs["token_ids"], inputs["lengths"] = tf.fill([batch, 1], self.start_id), tf.ones([batch], tf.int32)
                return run(*(inputs[name] for name in order))

            return tf.function(start, input_signature=list(specs.values()), autograph=False)

        return build

    def _encode_builder(self):
        specs = self.kind.condition_specs()
        names = list(specs)

        def encode(*args):
            return self.kind.encode(dict(zip(names, args)))

        def build(jit_compile: bool):
            del jit_compile  # one call of the encoder: nothing to gain
            return tf.function(encode, input_signature=list(specs.values()), autograph=False)

        return build

    def _step_builder(self, length: int | None):
        cache_spec = [None, self.num_heads, None, self.head_dim]  # slots dynamic: what the caller holds
        specs = [tf.TensorSpec([None, length], tf.int32, name="token_ids")]
        specs.append(tf.TensorSpec([None, length], tf.int32, name="positions"))
        for i in range(self.num_layers):
            specs.append(tf.TensorSpec(cache_spec, tf.float32, name=f"past_k_{i}"))
            specs.append(tf.TensorSpec(cache_spec, tf.float32, name=f"past_v_{i}"))
        context_specs = self.kind.context_specs()
        specs.extend(context_specs.values())
        context_names = list(context_specs)
        num_layers = self.num_layers
        max_length = self.max_length
        kind = self.kind

        def step(token_ids, positions, *rest):
            past, context = rest[: 2 * num_layers], dict(zip(context_names, rest[2 * num_layers :]))
            cache = tuple((past[2 * i], past[2 * i + 1]) for i in range(num_layers))
            positions = clamp(tf.cast(positions, tf.int32), 0, max_length - 1)
            logits, cache = kind.step(token_ids, positions, cache, context)
            outputs = {"logits": logits}
            for i, (keys, values) in enumerate(cache):
                outputs[f"present_k_{i}"] = keys
                outputs[f"present_v_{i}"] = values
            return outputs

        def build(jit_compile: bool):
            del jit_compile  # see the class docstring
            return tf.function(step, input_signature=specs, autograph=False)

        return build

    def _serving_builder(self, tokenizer, generator):
        tokenizer = TokenizerOps(tokenizer)
        self.tokenizer_tables = tokenizer.trackable  # tracked: the SavedModel keeps tensorflow-text's resources
        defaults = {name: KNOBS_BY_NAME[name] for name in strategy_knobs(self.strategy) if name != "max_new_tokens"}
        max_prompt = self.max_length - 1  # room for at least one new token
        kind, start = self.kind, self.start_id
        specs = [kind.serving_input_spec(), tf.TensorSpec([], tf.int32, name="max_new_tokens")]

        def build(jit_compile: bool):
            run = self._decode_loop(generator, jit_compile)

            def serving_default(inputs, max_new_tokens):
                knobs = {key: tf.constant(knob.default, knob.dtype) for key, knob in defaults.items()}
                token_ids, lengths, conditions = kind.serving_prompts(tokenizer, inputs, max_prompt, start)
                token_ids, lengths = self._pad_prompts(token_ids, lengths)
                outputs = run(token_ids, lengths, max_new_tokens=max_new_tokens, **knobs, **conditions)
                completions = tokenizer.decode(outputs["sequences"], lengths, outputs["sequence_lengths"])
                return {"completions": completions, "scores": outputs["scores"]}

            return tf.function(serving_default, input_signature=specs, autograph=False)

        return build


class _Untracked:
    """Holds a value out of `tf.Module`'s sight, so that it is not saved with the module."""

    def __init__(self, value):
        self.value = value
