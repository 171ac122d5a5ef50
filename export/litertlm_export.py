"""LiteRT-LM bundles (`<name>.litertlm`) of decoder-only models, run by Google's `litert_lm.Engine`.

LiteRT-LM (PyPI `litert-lm-api`, packed with `litert-lm-builder`) runs its own prefill/decode
loop, sampler and tokenizer over a TFLite model with signatures of its own convention, so the
bundle carries a separate small graph (`litertlm_module`), not the export's `prefill`/`decode`.
What LiteRT-LM 0.18.1 needs (CPU), and how this module meets it:

- `prefill_<T>` for a few static lengths T (`prefill_lengths`: 8, 32, 128 capped by
  `max_length`; the engine splits a prompt into chunks and right-pads the last one) and
  `decode` (T = 1). Batch 1, every shape static: a dynamic batch or prefill length fails in the
  engine.
- Inputs `tokens` int32 [1, T] and `input_pos` int32 [1, T]; per layer `kv_cache_k_<i>`,
  `kv_cache_v_<i>` [1, num_heads, max_length + 1, head_dim] float32, with the same names as
  outputs (the whole cache in and out; the engine reads dim 2 as the context length). `decode`
  (and each `prefill_<T>`) also returns `logits` float32 [1, T, V]. `decode` writes its one slot
  with a dynamic-update-slice (`tfzoo.layers.kv_cache.slice_writes`), not by rewriting every slot.
- Padding: the engine right-pads a short chunk with token 0 **at position 0**. Written by
  position, those tokens would be summed into slot 0 of the cache. The graph spots them (a token
  whose position is not the chunk's first position plus its index) and writes them to the spare
  slot `max_length`, which no query attends to (a query at position p sees slots <= p, and
  real positions stop at `max_length - 1`).
- `LlmMetadata` (`llm_metadata`): stop tokens (the model's eos), `max_num_tokens`
  (`max_length`), the TOP_P sampler with k 1 (greedy: the engine's GREEDY and TOP_K types are
  not implemented), `suppress_tokens` (the export's banned ids), `generic_model`.
- A Hugging Face `tokenizer.json` of the run's tokenizer, same ids (`tfzoo.data.hf_tokenizer`).

`litertlm_artefacts` (called by `export.pipeline` for `--formats=litertlm`) converts the graph
with TFLite builtins only (`export.tflite_export.convert_tflite`: one bundle per `--quantization`
variant), packs each (`write_litertlm`: a temporary file renamed into place), then runs it in
LiteRT-LM's engine on the export's parity prompts and in its benchmark (`export.litertlm_engine`).

Example:
>>> prefill_lengths(24), prefill_lengths(1024)
((8, 24), (8, 32, 128))
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from export.errors import ExportError

if TYPE_CHECKING:
    import tensorflow as tf

PACKAGES = {"litert-lm-builder": "litert_lm_builder", "litert-lm-api": "litert_lm", "ai-edge-litert": "ai_edge_litert"}
PREFILL_LENGTHS = (8, 32, 128)
KV_NAMES = ("kv_cache_k_{}", "kv_cache_v_{}")


def prefill_lengths(max_length: int) -> tuple[int, ...]:
    """The static prefill lengths of a bundle: `PREFILL_LENGTHS` below `max_length`, then `max_length` if smaller.

    Example:
    >>> prefill_lengths(32), prefill_lengths(8), prefill_lengths(200)
    ((8, 32), (8,), (8, 32, 128))
    """
    lengths = [t for t in PREFILL_LENGTHS if t < max_length]
    lengths.append(min(max_length, PREFILL_LENGTHS[-1]))
    return tuple(sorted(set(lengths)))


def litertlm_filename(name: str, quantization: str = "none") -> str:
    """`<name>.litertlm` for float32, `<name>.<quantization>.litertlm` otherwise.

    Example:
    >>> litertlm_filename("gpt"), litertlm_filename("gpt", "int8")
    ('gpt.litertlm', 'gpt.int8.litertlm')
    """
    return f"{name}.litertlm" if quantization == "none" else f"{name}.{quantization}.litertlm"


def signature_names(module: tf.Module) -> list[str]:
    """The LiteRT-LM signatures of a `litertlm_module`: its `prefill_<T>` by length, then `decode`.

    Example:
    >>> import tensorflow as tf
    >>> module = tf.Module()
    >>> module.prefill_32, module.prefill_8, module.decode = None, None, None
    >>> signature_names(module)
    ['prefill_8', 'prefill_32', 'decode']
    """
    prefills = [name for name in vars(module) if name.startswith("prefill_")]
    return sorted(prefills, key=lambda name: int(name.split("_")[1])) + ["decode"]


def litertlm_module(
    model, *, max_length: int, prefill: Sequence[int] | None = None, route_padding: bool = True
) -> tf.Module:
    """A `tf.Module` with the bundle's signatures (`signature_names`) over `model`'s fixed cache.

    Args:
        model: a tfzoo decoder-only model (`GPT`): `call_with_cache(token_ids, positions, cache)`.
        max_length: int. Most tokens of prompt plus output; the cache has one slot more (the
            spare slot of the engine's padding).
        prefill: sequence of int or None. The prefill lengths; defaults to `prefill_lengths(max_length)`.
        route_padding: bool. Write the engine's padding tokens to the spare slot. Defaults to True;
            False only shows (in the tests) what the guard prevents.

    Returns:
        tf.Module whose attributes `prefill_<T>` and `decode` are `tf.function`s with static
        input signatures; the model's variables are tracked as `model_variables`.

    Example:
    >>> from tfzoo.models.gpt import GPT
    >>> model = GPT(vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=8,
    ...             intermediate_dim=16, max_sequence_length=16)
    >>> module = litertlm_module(model, max_length=16)
    >>> module.prefill_8.input_signature[0].shape.as_list()
    [1, 8]
    """
    import tensorflow as tf  # noqa: PLC0415 (the pipeline imports this module before TensorFlow)

    from tfzoo.decoding.graph_ops import clamp  # noqa: PLC0415 (TensorFlow only when needed)
    from tfzoo.layers.kv_cache import slice_writes  # noqa: PLC0415 (TensorFlow only when needed)

    num_layers = int(model.num_layers)
    num_heads = int(model.num_heads)
    head_dim = int(model.head_dim)
    cache_shape = [1, num_heads, max_length + 1, head_dim]  # slot max_length: the padding's
    if not model.built:
        model.build((None, None))  # the variables exist before they are tracked
    module = tf.Module(name="tfzoo_litertlm")
    module.model_variables = [v.value for v in model.variables]  # tracked: the converter freezes them

    def build(length: int):
        specs = [
            tf.TensorSpec([1, length], tf.int32, name="tokens"),
            tf.TensorSpec([1, length], tf.int32, name="input_pos"),
        ]
        for i in range(num_layers):
            specs += [tf.TensorSpec(cache_shape, tf.float32, name=name.format(i)) for name in KV_NAMES]

        def step(tokens, input_pos, *flat_cache):
            cache = tuple((flat_cache[2 * i], flat_cache[2 * i + 1]) for i in range(num_layers))
            input_pos = tf.cast(input_pos, tf.int32)
            contiguous = input_pos[:, :1] + tf.range(length, dtype=tf.int32)[None]  # (1, T)
            padding = tf.not_equal(input_pos, contiguous)  # the engine's padding: token 0 at position 0
            positions = clamp(input_pos, 0, max_length - 1)
            if route_padding:
                positions = tf.where(padding, tf.fill(tf.shape(positions), max_length), positions)  # (1, T)
            with slice_writes():  # decode writes its one slot in place (TFLite DYNAMIC_UPDATE_SLICE)
                logits, cache = model.call_with_cache(tokens, positions, cache)
            outputs = {"logits": tf.cast(logits, tf.float32)}  # (1, T, V)
            for i, (keys, values) in enumerate(cache):
                outputs[KV_NAMES[0].format(i)] = keys
                outputs[KV_NAMES[1].format(i)] = values
            return outputs

        return tf.function(step, input_signature=specs, autograph=False)

    for length in prefill_lengths(max_length) if prefill is None else sorted(set(prefill)):
        setattr(module, f"prefill_{int(length)}", build(int(length)))
    module.decode = build(1)
    return module


def save_litertlm_saved_model(module: tf.Module, directory: str) -> list[str]:
    """Saves the signatures of a `litertlm_module` as a SavedModel (for the TFLite converter); returns their names.

    Example:
    >>> names = save_litertlm_saved_model(litertlm_module(model, max_length=32), "/tmp/sm")  # doctest: +SKIP
    >>> convert_tflite("/tmp/sm", names)  # export.tflite_export  # doctest: +SKIP
    """
    import tensorflow as tf  # noqa: PLC0415 (imported only when needed)

    names = signature_names(module)
    signatures = {name: getattr(module, name).get_concrete_function() for name in names}
    options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)  # as the export's SavedModels
    tf.saved_model.save(module, directory, signatures=signatures, options=options)
    return names


def llm_metadata(*, eos_ids: Sequence[int], banned_ids: Sequence[int], max_length: int) -> bytes:
    """The serialized `LlmMetadata` proto of a bundle (greedy decoding, as the Keras reference).

    Example:
    >>> len(llm_metadata(eos_ids=[1], banned_ids=[0], max_length=32)) > 0
    True
    """
    from litert_lm_builder.runtime.proto import llm_metadata_pb2, sampler_params_pb2  # noqa: PLC0415 (optional extra)

    metadata = llm_metadata_pb2.LlmMetadata()
    for eos in eos_ids:
        metadata.stop_tokens.add().token_ids.ids.append(int(eos))
    metadata.max_num_tokens = int(max_length)
    metadata.sampler_params.type = sampler_params_pb2.SamplerParameters.TOP_P
    metadata.sampler_params.k = 1  # top-1 of TOP_P: greedy (the GREEDY type is not implemented)
    metadata.sampler_params.p = 1.0
    metadata.sampler_params.temperature = 1.0
    metadata.suppress_tokens.ids.extend(int(i) for i in banned_ids)
    metadata.llm_model_type.generic_model.SetInParent()
    return metadata.SerializeToString()


def write_litertlm(
    path: str, *, tflite_path: str, tokenizer_json_path: str, metadata: bytes, extra: dict[str, Any] | None = None
) -> str:
    """Packs a TFLite model, an HF `tokenizer.json` and `LlmMetadata` bytes into a `.litertlm` file.

    Writes `<path>.tmp-<pid>` and renames it to `path`; returns `path`. `extra`: system metadata
    (strings) to record in the file.

    Example:
    >>> write_litertlm("gpt.litertlm", tflite_path="gpt.tflite", tokenizer_json_path="tokenizer.json",
    ...                metadata=llm_metadata(eos_ids=[1], banned_ids=[0], max_length=32))  # doctest: +SKIP
    'gpt.litertlm'
    """
    import litert_lm_builder  # noqa: PLC0415 (optional extra)

    metadata_path = f"{path}.metadata-{os.getpid()}.pb"
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(metadata_path, "wb") as file:
            file.write(metadata)
        builder = litert_lm_builder.LitertLmFileBuilder()
        for key, value in (extra or {}).items():
            builder.add_system_metadata(
                litert_lm_builder.Metadata(key=key, value=str(value), dtype=litert_lm_builder.DType.STRING)
            )
        builder.add_tflite_model(tflite_path, litert_lm_builder.TfLiteModelType.PREFILL_DECODE)
        builder.add_hf_tokenizer(tokenizer_json_path)
        builder.add_llm_metadata(metadata_path)
        with open(temporary, "wb") as file:
            builder.build(file)
        os.replace(temporary, path)
    finally:
        for leftover in (metadata_path, temporary):
            if os.path.exists(leftover):
                os.remove(leftover)
    return path


# ---- the tokenizer the bundle carries ----------------------------------------------------------


def check_litertlm_export(tokenizer) -> None:
    """`ExportError` (one line, before anything is written) when a bundle cannot be built here.

    The packages (`litert-lm-builder` packs, `litert-lm-api` runs the parity check) must be
    installed, and the tokenizer must have a Hugging Face `tokenizer.json` form.

    Example:
    >>> from tfzoo.data.char_tokenizer import CharTokenizer
    >>> check_litertlm_export(CharTokenizer("abc"))  # None: a bundle can be built
    """
    import importlib.util  # noqa: PLC0415 (only here)

    missing = [name for name, module in PACKAGES.items() if importlib.util.find_spec(module) is None]
    if missing:
        names = ", ".join(missing)
        extra = "the runtimes extra: pip install -e '.[runtimes]'"
        raise ExportError(f"--formats=litertlm needs the packages {names} ({extra})")
    _hf_tokenizer(tokenizer)


def _hf_tokenizer(tokenizer) -> dict[str, Any]:
    """The tokenizer's Hugging Face `tokenizer.json` (same ids, `tfzoo.data.hf_tokenizer`), or `ExportError`."""
    from tfzoo.data.hf_tokenizer import hf_tokenizer_json  # noqa: PLC0415 (imported only when needed)

    try:
        data = hf_tokenizer_json(tokenizer)  # the natural form of each type (char: WordLevel)
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as error:  # e.g. a char vocabulary with lone surrogates
        raise ExportError(f"--formats=litertlm: the tokenizer has a token UTF-8 cannot hold ({error.reason})") from None
    except ValueError as error:  # e.g. the ids tokenizer of a checkpoint converted without its vocabulary
        raise ExportError(f"--formats=litertlm: {error}") from None
    return data


# ---- the artefacts -------------------------------------------------------------------------------


def litertlm_artefacts(
    model,
    staging: str,
    *,
    info: dict[str, Any],
    tokenizer,
    quantizations: Sequence[str],
    prompts: dict[str, Any],
    reference: dict[str, Any],
    log=print,
) -> dict[str, dict[str, Any]]:
    """Writes `<name>[.<quantization>].litertlm` into `staging` and measures each in `litert_lm.Engine`.

    Args:
        model: the Keras decoder-only model.
        staging: str. The export's staging folder (the bundles' `path`s are relative to it).
        info: dict. The report's `model` section (`name`, `max_length`, `eos_ids`, `banned_ids`, ...).
        tokenizer: the run's tfzoo tokenizer (carried in its Hugging Face form).
        quantizations: sequence of str. "none", "fp16", "int8" (as for TFLite).
        prompts: dict. The parity prompts (`export.parity.parity_prompts`).
        reference: dict. The Keras reference (`export.parity.reference`): its greedy case is compared.
        log: callable taking a str.

    Returns:
        Artefact key ("litertlm", "litertlm_fp16", "litertlm_int8") -> the artefact's report entry.

    Raises:
        ExportError: a conversion needs non-builtin ops, or the engine refuses a bundle.

    Example (what `export.pipeline` does for `--formats=litertlm`):
    >>> artefacts = litertlm_artefacts(model, staging, info=info, tokenizer=tokenizer,  # doctest: +SKIP
    ...     quantizations=["none"], prompts=parity_run.prompts, reference=parity_run.ref)
    >>> artefacts["litertlm"]["parity"]["passed"]  # doctest: +SKIP
    True
    """
    import time  # noqa: PLC0415 (only here)

    from export.litertlm_engine import EngineRunner, engine_benchmark, measure_litertlm  # noqa: PLC0415 (optional extra)
    from export.tflite_export import builtin_op_names, convert_tflite  # noqa: PLC0415 (TensorFlow only when needed)

    name, max_length = info["name"], int(info["max_length"])
    scratch = os.path.join(staging, ".scratch_litertlm")
    os.makedirs(scratch, exist_ok=True)
    artefacts = {}
    try:
        tokenizer_path = os.path.join(scratch, "tokenizer.json")
        with open(tokenizer_path, "w", encoding="utf-8") as file:
            json.dump(_hf_tokenizer(tokenizer), file, ensure_ascii=False)
        metadata = llm_metadata(eos_ids=info["eos_ids"], banned_ids=info["banned_ids"], max_length=max_length)
        module = litertlm_module(model, max_length=max_length)
        names = save_litertlm_saved_model(module, os.path.join(scratch, "saved_model"))
        for quantization in quantizations:
            started = time.time()
            key = "litertlm" if quantization == "none" else f"litertlm_{quantization}"
            flatbuffer = convert_tflite(os.path.join(scratch, "saved_model"), names, quantization)
            tflite_path = os.path.join(scratch, f"{key}.tflite")
            with open(tflite_path, "wb") as file:
                file.write(flatbuffer)
            filename = litertlm_filename(name, quantization)
            write_litertlm(
                os.path.join(staging, filename),
                tflite_path=tflite_path,
                tokenizer_json_path=tokenizer_path,
                metadata=metadata,
                extra={"tfzoo_model": name, "tfzoo_quantization": quantization},
            )
            artefact = {
                "format": "litertlm",
                "quantization": quantization,
                "path": filename,
                "signatures": _tflite_signatures(tflite_path),
                "ops": builtin_op_names(flatbuffer),
                "prefill_lengths": [int(n.split("_")[1]) for n in names if n.startswith("prefill_")],
                "cache_length": max_length + 1,
                "llm_metadata": {
                    "stop_tokens": [int(i) for i in info["eos_ids"]],
                    "suppress_tokens": [int(i) for i in info["banned_ids"]],
                    "max_num_tokens": max_length,
                    "sampler": {"type": "TOP_P", "k": 1, "p": 1.0, "temperature": 1.0},
                    "llm_model_type": "generic_model",
                },
            }
            del flatbuffer
            os.remove(tflite_path)
            log(f"{key}: built in {time.time() - started:.1f} s")
            started = time.time()
            path = os.path.join(staging, filename)
            try:
                with EngineRunner(path, max_length=max_length, cache_dir=scratch) as runner:
                    artefact["parity"] = measure_litertlm(runner, prompts, reference, info, quantization)
                artefact["benchmark"] = engine_benchmark(path, max_length=max_length, cache_dir=scratch)
            except RuntimeError as error:  # the engine refused the bundle (its reason is on stderr)
                raise ExportError(f"LiteRT-LM's engine cannot run {filename}: {' '.join(str(error).split())}") from None
            log(f"{key}: engine parity and benchmark in {time.time() - started:.1f} s")
            artefacts[key] = artefact
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return artefacts


def _tflite_signatures(path: str) -> dict[str, dict[str, list[str]]]:
    from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415 (optional extra)

    signatures = Interpreter(model_path=path).get_signature_list()
    return {key: {"inputs": sorted(v["inputs"]), "outputs": sorted(v["outputs"])} for key, v in signatures.items()}
