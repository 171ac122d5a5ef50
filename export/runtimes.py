"""Runtime adapters: the exported artefacts (and the Keras model) behind one small interface.

    runtime = load_runtime(workdir, "tflite", quantization="int8")
    sequences, sequence_lengths, scores = runtime.generate(token_ids, lengths, max_new_tokens=32)
    logits, cache = runtime.prefill(token_ids, positions, runtime.init_cache(batch_size))
    logits, cache = runtime.decode(next_ids, next_positions, cache)

Every runtime takes and returns numpy arrays: `token_ids` int (B, P)
right-padded, `lengths` int (B,); `generate` returns `sequences` int32
(B, max_length), `sequence_lengths` int32 (B,) and `scores` float32 (B,).
Knobs are keyword arguments named as in the `generate` signature
(`length_penalty`, `repetition_penalty`, `no_repeat_ngram_size`,
`temperature`, `top_k`, `top_p`, `seed`); as in `tfzoo.decoding.Generator`,
a knob that the strategy does not use is ignored. `strategy` picks
`generate` (the exported strategy, default) or `generate_<strategy>`.

Encoder-decoder exports (`info["kind"] == "seq2seq"`) take `source_ids`
(B, S) right-padded and `source_lengths` (B,) as keyword arguments of
`generate` and `encode`; captioner exports take `image` (B, H, W, C), float
in [0, 1] or uint8 (scaled by 1/255 here). For these, `token_ids`/`lengths`
(the decoder prompt) default to the start token. `encode(...)` returns the
encoder state (`encoder_output`, `cross_k_<i>`, `cross_v_<i>`, and
`source_lengths` for seq2seq), which `prefill`/`decode` take as `context`:

    context = runtime.encode(source_ids=source_ids, source_lengths=source_lengths)
    logits, cache = runtime.prefill(start_ids, positions, runtime.init_cache(batch), context)

`saved_model` needs TensorFlow; `tflite` needs only `ai_edge_litert` and
numpy; `onnx` only `onnxruntime` and numpy. `KerasRuntime` runs the trained
model itself through `tfzoo.decoding` (the reference of the parity checks).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from export.errors import ExportError, RuntimeInputError
from export.runtime_inputs import check_image, check_prompts, check_sources

RUNTIMES = ("saved_model", "tflite", "onnx")
REPORT_FILENAME = "report.json"
EXPORT_DIRNAME = "export"

# Knob name -> (numpy dtype, default): the same defaults as `tfzoo.decoding.generator.KNOBS`.
KNOB_DEFAULTS: dict[str, tuple[type, Any]] = {
    "length_penalty": (np.float32, 1.0),
    "repetition_penalty": (np.float32, 1.0),
    "no_repeat_ngram_size": (np.int32, 0),
    "temperature": (np.float32, 1.0),
    "top_k": (np.int32, 0),
    "top_p": (np.float32, 1.0),
    "seed": (np.int32, 0),
}


class Runtime:
    """Base of the adapters: `generate`, `encode`, `prefill`, `decode` and `init_cache` on numpy arrays.

    Subclasses implement `_input_dtypes(signature)` and `_run(signature, inputs)`.

    Args:
        info: dict. The `model` section of `report.json` (max_length,
            strategy, strategies, num_layers, num_heads, head_dim, kind, ...).
    """

    name = ""

    def __init__(self, info: dict):
        self.info = info
        self.max_length = int(info["max_length"])
        self.strategy = info["strategy"]
        self.strategies = dict(info["strategies"])  # strategy -> signature name
        self.num_layers = int(info["num_layers"])
        self.num_heads = int(info["num_heads"])
        self.head_dim = int(info["head_dim"])
        self.vocabulary_size = int(info["vocabulary_size"])
        self.kind = info.get("kind", "decoder")
        self.max_source_length = int(info.get("max_source_length") or info.get("max_sequence_length") or 0)
        self.image_shape = tuple(info["image_shape"]) if info.get("image_shape") else None
        self.start_id = int(info.get("start_id", (info.get("eos_ids") or [0])[0]))

    def _input_dtypes(self, signature: str) -> dict[str, np.dtype]:
        raise NotImplementedError

    def _run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _call(self, signature: str, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        dtypes = self._input_dtypes(signature)
        missing = sorted(set(dtypes) - set(inputs))
        if missing:
            raise RuntimeInputError(f"signature {signature!r} needs inputs {missing}")
        arrays = {key: np.asarray(inputs[key]).astype(dtype) for key, dtype in dtypes.items()}
        return {key: np.asarray(value) for key, value in self._run(signature, arrays).items()}

    def conditions(self, source_ids=None, source_lengths=None, image=None) -> dict[str, np.ndarray]:
        """The checked conditioning inputs of this export's kind (empty for decoder-only models)."""
        if self.kind == "seq2seq":
            if image is not None:
                raise RuntimeInputError("this is an encoder-decoder export: it takes source_ids, not image")
            source_ids, source_lengths = check_sources(source_ids, source_lengths, self.max_source_length)
            return {"source_ids": source_ids, "source_lengths": source_lengths}
        if self.kind == "captioner":
            if source_ids is not None or source_lengths is not None:
                raise RuntimeInputError("this is an image-captioning export: it takes image, not source_ids")
            return {"image": check_image(image, self.image_shape)}
        if source_ids is not None or source_lengths is not None or image is not None:
            raise RuntimeInputError("this is a decoder-only export: it takes no source_ids or image")
        return {}

    def start_prompts(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """The decoder prompts of a conditional model: the start token, one per row."""
        return np.full((batch_size, 1), self.start_id, np.int32), np.ones((batch_size,), np.int32)

    def generate(
        self,
        token_ids=None,
        lengths=None,
        max_new_tokens: int = 64,
        *,
        strategy: str | None = None,
        source_ids=None,
        source_lengths=None,
        image=None,
        **knobs,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Runs the in-graph decode loop; returns `(sequences, sequence_lengths, scores)`.

        Args:
            token_ids: int (B, P): right-padded prompts (for seq2seq and
                captioner exports: the decoder prompt; None for the start token).
            lengths: int (B,): prompt lengths in [1, P].
            max_new_tokens: int >= 0. Most tokens to add per row (the graph
                clamps it to the room each row has left under `max_length`).
            strategy: str or None. None for the exported strategy, or one the export carries.
            source_ids: int (B, S) right-padded sources (seq2seq exports).
            source_lengths: int (B,) in [1, S], at most `max_sequence_length` (seq2seq exports).
            image: (B, H, W, C) float in [0, 1] or uint8 (captioner exports).
            **knobs: the strategy's knobs (see the module docstring).
        """
        strategy = strategy or self.strategy
        if strategy not in self.strategies:
            raise RuntimeInputError(
                f"this export has no {strategy!r} strategy; it has {', '.join(self.strategies)} "
                f"(re-export with --strategy={strategy})"
            )
        signature = self.strategies[strategy]
        conditions = self.conditions(source_ids, source_lengths, image)
        if conditions and token_ids is None:
            token_ids, lengths = self.start_prompts(len(next(iter(conditions.values()))))
        token_ids, lengths = check_prompts(token_ids, lengths)
        for key, value in conditions.items():
            if len(value) != len(token_ids):
                raise RuntimeInputError(f"{key} has {len(value)} rows but token_ids has {len(token_ids)}")
        if lengths.max() >= self.max_length:
            raise RuntimeInputError(
                f"a prompt of {int(lengths.max())} tokens leaves no room under the exported "
                f"max_length={self.max_length}"
            )
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 0:
            raise RuntimeInputError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
        inputs: dict[str, Any] = {"token_ids": token_ids, "lengths": lengths, "max_new_tokens": max_new_tokens}
        inputs.update(conditions)
        accepted = set(self._input_dtypes(signature))
        for key, value in knobs.items():
            if key == "min_new_tokens":  # a decoder knob that the exported signatures do not take
                if value:
                    raise RuntimeInputError(f"min_new_tokens={value} is not available in exported models; use 0")
                continue
            if key not in KNOB_DEFAULTS:
                raise RuntimeInputError(f"unknown decoding option {key!r}; valid: {', '.join(KNOB_DEFAULTS)}")
            if key in accepted:  # else a knob of another strategy: ignored, as by `Generator`
                inputs[key] = value
        for key in accepted - set(inputs):
            inputs[key] = KNOB_DEFAULTS[key][1]
        outputs = self._call(signature, inputs)
        return outputs["sequences"], outputs["sequence_lengths"], outputs["scores"]

    def encode(self, source_ids=None, source_lengths=None, image=None) -> dict[str, np.ndarray]:
        """Runs the encoder once; returns the `context` of `prefill`/`decode` (see the module docstring)."""
        if self.kind == "decoder":
            raise RuntimeInputError("this is a decoder-only export: it has no encoder")
        conditions = self.conditions(source_ids, source_lengths, image)
        context = self._encode(conditions)
        if self.kind == "seq2seq":
            context["source_lengths"] = conditions["source_lengths"]
        return context

    def _encode(self, conditions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._call("encode", conditions)

    def init_cache(self, batch_size: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """An empty KV cache: per layer `(k, v)`, each float32 (B, num_heads, max_length, head_dim)."""
        shape = (batch_size, self.num_heads, self.max_length, self.head_dim)
        return tuple((np.zeros(shape, np.float32), np.zeros(shape, np.float32)) for _ in range(self.num_layers))

    def _context_inputs(self, context: dict | None) -> dict[str, np.ndarray]:
        """The encoder state a step of this kind takes (`cross_k_<i>`, `cross_v_<i>`, `source_lengths`)."""
        if self.kind == "decoder":
            if context:
                raise RuntimeInputError("this is a decoder-only export: its steps take no encoder context")
            return {}
        if not context:
            raise RuntimeInputError(f"a {self.kind} export's steps need the context from encode(...)")
        names = [f"cross_{kv}_{i}" for i in range(self.num_layers) for kv in "kv"]
        if self.kind == "seq2seq":
            names.append("source_lengths")
        missing = [name for name in names if name not in context]
        if missing:
            raise RuntimeInputError(f"context lacks {', '.join(missing)}; pass what encode(...) returned")
        return {name: context[name] for name in names}

    def _step(self, signature: str, token_ids, positions, cache, context=None):
        inputs = {"token_ids": np.asarray(token_ids), "positions": np.asarray(positions)}
        if len(cache) != self.num_layers:
            raise RuntimeInputError(f"cache has {len(cache)} layers, the model has {self.num_layers}")
        for i, (keys, values) in enumerate(cache):
            inputs[f"past_k_{i}"] = keys
            inputs[f"past_v_{i}"] = values
        inputs.update(self._context_inputs(context))
        outputs = self._call(signature, inputs)
        cache = tuple((outputs[f"present_k_{i}"], outputs[f"present_v_{i}"]) for i in range(self.num_layers))
        return outputs["logits"], cache

    def prefill(self, token_ids, positions, cache, context: dict | None = None):
        """Runs tokens (B, T) at positions (B, T) against `cache`; returns `(logits (B, T, V), cache)`.

        `context`: what `encode(...)` returned (seq2seq and captioner exports only).
        """
        return self._step("prefill", token_ids, positions, cache, context)

    def decode(self, token_ids, positions, cache, context: dict | None = None):
        """One token per row: token_ids (B, 1) at positions (B, 1); returns `(logits (B, 1, V), cache)`."""
        return self._step("decode", token_ids, positions, cache, context)


class SavedModelRuntime(Runtime):
    """Runs the SavedModel's signatures with `tf.saved_model.load` (TensorFlow, no tfzoo)."""

    name = "saved_model"

    def __init__(self, path: str, info: dict):
        super().__init__(info)
        import tensorflow as tf  # noqa: PLC0415

        try:  # registers the ops of in-graph wordpiece, sentencepiece and bpe tokenizers (serving_default)
            import tensorflow_text  # noqa: F401, PLC0415
        except ImportError:
            pass
        self._tf = tf
        self.path = path
        self.loaded = tf.saved_model.load(path)
        self._dtypes = {}
        for key, function in self.loaded.signatures.items():
            specs = function.structured_input_signature[1]
            self._dtypes[key] = {name: spec.dtype.as_numpy_dtype for name, spec in specs.items()}

    def _input_dtypes(self, signature: str) -> dict[str, np.dtype]:
        return {k: v for k, v in self._dtypes[signature].items() if v is not object}

    def _run(self, signature, inputs):
        tf = self._tf
        outputs = self.loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
        return {key: value.numpy() for key, value in outputs.items()}

    def complete(self, prompts, max_new_tokens: int = 64) -> tuple[list[str], np.ndarray]:
        """`serving_default`: prompt strings (seq2seq: source strings; captioner: images) -> (texts, scores)."""
        tf = self._tf
        if self.kind == "captioner":
            first = {"image": tf.constant(check_image(prompts, self.image_shape))}
        else:
            key = "sources" if self.kind == "seq2seq" else "prompts"
            first = {key: tf.constant(list(prompts), tf.string)}
        outputs = self.loaded.signatures["serving_default"](
            **first, max_new_tokens=tf.constant(max_new_tokens, tf.int32)
        )
        return [s.decode("utf-8") for s in outputs["completions"].numpy()], outputs["scores"].numpy()


class TFLiteRuntime(Runtime):
    """Runs a `.tflite` file's signatures with `ai_edge_litert` (no TensorFlow needed)."""

    name = "tflite"

    def __init__(self, path: str, info: dict, num_threads: int | None = None):
        super().__init__(info)
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

        self.path = path
        self.interpreter = Interpreter(model_path=path, num_threads=num_threads)
        self._runners = {}
        self._dtypes = {}
        for key in self.interpreter.get_signature_list():
            runner = self.interpreter.get_signature_runner(key)
            self._runners[key] = runner
            self._dtypes[key] = {name: d["dtype"] for name, d in runner.get_input_details().items()}

    def _input_dtypes(self, signature):
        return self._dtypes[signature]

    def _run(self, signature, inputs):
        return self._runners[signature](**inputs)


_ONNX_TYPES = {"tensor(int32)": np.int32, "tensor(float)": np.float32, "tensor(int64)": np.int64}


class OnnxRuntime(Runtime):
    """Runs the ONNX files (one per signature) with onnxruntime's CPU provider."""

    name = "onnx"

    def __init__(self, files: dict[str, str], info: dict, num_threads: int | None = None):
        super().__init__(info)
        import onnxruntime  # noqa: PLC0415

        options = onnxruntime.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        self.files = dict(files)
        self.sessions = {
            key: onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            for key, path in files.items()
        }
        self._dtypes = {
            key: {i.name: _ONNX_TYPES[i.type] for i in session.get_inputs()} for key, session in self.sessions.items()
        }

    def _input_dtypes(self, signature):
        return self._dtypes[signature]

    def _run(self, signature, inputs):
        session = self.sessions[signature]
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, inputs)))


class KerasRuntime(Runtime):
    """The trained Keras model behind the same interface: the decode loops and steps the export traces.

    Args:
        model: keras.Model (`GPT`, `Transformer` or `Captioner`).
        info: dict. As for the other runtimes (max_length, strategy,
            strategies, beam_size, eos_ids, banned_ids, pad_id, ...).
        jit_compile: bool. Compile with XLA. Defaults to False.
    """

    name = "keras"

    def __init__(self, model, info: dict, jit_compile: bool = False):
        super().__init__(info)
        import tensorflow as tf  # noqa: PLC0415

        from export.model_kinds import model_kind  # noqa: PLC0415

        self.model = model
        self.model_kind = kind = model_kind(model)
        self.generators = {
            strategy: kind.generator(
                max_length=self.max_length,
                strategy=strategy,
                beam_size=int(info["beam_size"]),
                eos_ids=tuple(info["eos_ids"]),
                banned_ids=tuple(info["banned_ids"]),
                pad_id=int(info["pad_id"]),
                jit_compile=jit_compile,
            )
            for strategy in self.strategies
        }
        self._step_function = tf.function(kind.step, jit_compile=jit_compile, autograph=False)
        self._encode_function = tf.function(kind.encode, autograph=False) if kind.has_encoder else None
        self._tf = tf

    def generate(self, token_ids=None, lengths=None, max_new_tokens: int = 64, *, strategy=None,
                 source_ids=None, source_lengths=None, image=None, **knobs):  # fmt: skip
        strategy = strategy or self.strategy
        if strategy not in self.generators:
            raise RuntimeInputError(f"no {strategy!r} strategy; have {', '.join(self.generators)}")
        conditions = self.conditions(source_ids, source_lengths, image)
        if conditions and token_ids is None:
            token_ids, lengths = self.start_prompts(len(next(iter(conditions.values()))))
        token_ids, lengths = check_prompts(token_ids, lengths)
        outputs = self.generators[strategy](token_ids, lengths, max_new_tokens=max_new_tokens, **knobs, **conditions)
        return outputs["sequences"], outputs["sequence_lengths"], outputs["scores"]

    def _encode(self, conditions):
        tf = self._tf
        outputs = self._encode_function({k: tf.constant(v) for k, v in conditions.items()})
        return {key: value.numpy() for key, value in outputs.items()}

    def _step(self, signature, token_ids, positions, cache, context=None):
        tf = self._tf
        positions = np.clip(np.asarray(positions, np.int32), 0, self.max_length - 1)
        cache = tuple((tf.constant(k), tf.constant(v)) for k, v in cache)
        context = {k: tf.constant(v) for k, v in self._context_inputs(context).items()}
        logits, cache = self._step_function(
            tf.constant(np.asarray(token_ids, np.int32)), tf.constant(positions), cache, context
        )
        return logits.numpy(), tuple((k.numpy(), v.numpy()) for k, v in cache)


def read_report(workdir: str) -> dict:
    """The `report.json` of `workdir/export`; raises `ExportError` when there is no export."""
    path = os.path.join(workdir, EXPORT_DIRNAME, REPORT_FILENAME)
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except FileNotFoundError:
        raise ExportError(f"no export in {workdir}: run `python -m export --workdir={workdir}` first") from None
    except (OSError, json.JSONDecodeError) as error:
        raise ExportError(f"cannot read {path}: {error}") from None


def load_runtime(
    workdir: str, runtime: str, *, quantization: str = "none", num_threads: int | None = None
) -> Runtime:
    """Loads an exported artefact of `workdir/export` as a `Runtime`.

    Args:
        workdir: str. The run folder (holds `export/report.json`).
        runtime: str. "saved_model", "tflite" or "onnx".
        quantization: str. TFLite variant: "none" (fp32), "fp16" or "int8". Defaults to "none".
        num_threads: int or None. Threads for TFLite and onnxruntime (None: their default).

    Raises:
        ExportError: unknown runtime, no export, or the export lacks that artefact.

    Example:
    >>> runtime = load_runtime("runs/gpt_char", "onnx")  # doctest: +SKIP
    >>> sequences, sequence_lengths, scores = runtime.generate([[5, 6, 0], [7, 8, 9]], [2, 3], 16)  # doctest: +SKIP
    """
    if runtime not in RUNTIMES:
        raise ExportError(f"unknown runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")
    report = read_report(workdir)
    export_dir = os.path.join(workdir, EXPORT_DIRNAME)
    key = runtime if runtime != "tflite" or quantization == "none" else f"tflite_{quantization}"
    artefact = report.get("artefacts", {}).get(key)
    if artefact is None:
        have = ", ".join(sorted(report.get("artefacts", {}))) or "none"
        raise ExportError(f"the export in {export_dir} has no {key} artefact (it has: {have})")
    info = report["model"]
    if runtime == "saved_model":
        return SavedModelRuntime(os.path.join(export_dir, artefact["path"]), info)
    if runtime == "tflite":
        return TFLiteRuntime(os.path.join(export_dir, artefact["path"]), info, num_threads=num_threads)
    files = {signature: os.path.join(export_dir, entry["path"]) for signature, entry in artefact["files"].items()}
    return OnnxRuntime(files, info, num_threads=num_threads)
