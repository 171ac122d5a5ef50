"""`export_workdir`: a trained workdir to SavedModel, TFLite and ONNX artefacts, with measured parity.

Models: every class a model kind adapts (`tfzoo.kinds`: `GPT`, `Transformer`,
`Captioner`); the kind says which inputs the signatures take, which fields
the report adds and which inputs the parity checks run on. A kind without a
decode loop names its own export (`ModelKind.export_module`): BERT models
(kind `encoder`) go to `export.embed_export` (`embed`, `classify`), speech
synthesizers (kind `tts`) to `export.synthesize_export` (`synthesize`), after
the same checks, into the same staging folder and layout.

Layout of `DIR/export/` (model name `<name>` = `config.model`, e.g. "gpt"):

    saved_model/<name>/<version>/      TF Serving layout: saved_model.pb, variables/,
                                       assets.extra/tokenizer.json (and its vocab.txt or
                                       sentencepiece.model)
    <name>.tflite                      fp32; `<name>.fp16.tflite`, `<name>.int8.tflite`, `<name>.int4.tflite`
                                       (int4: asked for by name; `export.tflite_int4`)
    <name>.onnx                        `generate` (decode loop as an ONNX Loop)
    <name>.<signature>.onnx            `prefill`, `decode`, `generate_<strategy>`, and `encode`
                                       for encoder-decoder and image models
    <name>.litertlm                    (asked for; GPT) a LiteRT-LM bundle, fp32; `<name>.int8.litertlm`,
                                       ... (`export.litertlm_export`)
    tokenizer.json                     the tokenizer, readable without TensorFlow (with the file it
                                       names: `vocab.txt` for wordpiece, `sentencepiece.model`)
    hf_tokenizer.json                  the same tokenizer (same ids) as a Hugging Face `tokenizers`
                                       JSON, what the apps read (not for an `ids` tokenizer)
    report.json                        model facts, knobs, artefacts, sizes, signatures, parity
                                       (schema: `tfzoo.export_report`)

Everything is written under `DIR/.export.tmp-<pid>/` and renamed to
`DIR/export/` only once every artefact is written and its parity measured
and passed. An export whose parity fails goes to `DIR/export.failed/`
instead (the previous `DIR/export/`, if any, stays); bad input raises
`ExportError` before anything is written.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from export import parity
from export.errors import ExportError
from export.parity_process import RuntimeSpec, measure_in_child, run_in_child
from export.tflite_export import DEFAULT_QUANTIZATIONS, QUANTIZATIONS
from tfzoo.export_report import build_report, write_report
from tfzoo.files import atomic_write_text
from tfzoo.kinds import ModelKindError
from tfzoo.run_folder import EXPORT_DIRNAME
from tfzoo.runtimes.adapters import RUNTIMES

DEFAULT_FORMATS = RUNTIMES  # saved_model, tflite, onnx: what `python -m export` writes unless told
BUNDLES = ("genai", "litertlm")  # the runtimes above the interpreters, for decoder-only models: asked for by name
FORMATS = (*DEFAULT_FORMATS, *BUNDLES)
STRATEGIES = ("beam", "greedy", "sample")
MIN_MAX_LENGTH = 8  # a prompt and new tokens: parity prompts use up to max_length // 2 tokens
FAILED_DIRNAME = "export.failed"
TOKENIZER_FILENAME = "tokenizer.json"
HF_TOKENIZER_FILENAME = "hf_tokenizer.json"  # the same tokenizer in Hugging Face `tokenizers` form, for the apps


def _check_choices(name: str, values: Sequence[str], choices: Sequence[str]) -> tuple[str, ...]:
    values = tuple(dict.fromkeys(v.strip() for v in values if v.strip()))
    if not values:
        raise ExportError(f"--{name} is empty; choose from {','.join(choices)}")
    for value in values:
        if value not in choices:
            raise ExportError(f"unknown --{name} value {value!r}; choose from {','.join(choices)}")
    return values


def check_arguments(
    *, formats: Sequence[str], quantization: Sequence[str], strategy: str, beam_size: int, version: int
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Checks the flags that need no model; returns `(formats, quantizations)` without duplicates."""
    formats = _check_choices("formats", formats, FORMATS)
    quantization = _check_choices("quantization", quantization, QUANTIZATIONS)
    if strategy not in STRATEGIES:
        raise ExportError(f"unknown --strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
        raise ExportError(f"--beam_size must be an integer >= 1, got {beam_size!r}")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ExportError(f"--version must be an integer >= 1 (TF Serving versions are numbers), got {version!r}")
    return formats, quantization


def check_quantizations(quantizations: Sequence[str], formats: Sequence[str], model_config: dict) -> None:
    """`ExportError` when int4 is asked for where it cannot apply: a LiteRT-LM bundle, or a model whose
    width is not a multiple of int4's block (`export.tflite_int4.BLOCK_SIZE`)."""
    if "int4" not in quantizations:
        return
    from export.tflite_int4 import BLOCK_SIZE  # noqa: PLC0415 (numpy only; imported only when needed)

    if "litertlm" in formats:
        raise ExportError(
            "--quantization=int4 is a TFLite variant only: --formats=litertlm bundles take none, fp16, int8"
        )
    hidden_dim = model_config.get("hidden_dim")
    if isinstance(hidden_dim, int) and hidden_dim % BLOCK_SIZE:
        raise ExportError(
            f"--quantization=int4 stores weights in blocks of {BLOCK_SIZE} inputs; this model's "
            f"hidden_dim={hidden_dim} is not a multiple of {BLOCK_SIZE}"
        )


def check_bundles(formats: Sequence[str], kind) -> None:
    """`ExportError` when a bundle format (`BUNDLES`) is asked for a model kind it cannot carry."""
    for bundle in (f for f in formats if f in BUNDLES):
        if kind.has_encoder or not kind.generative:
            raise ExportError(
                f"--formats={bundle} carries decoder-only models (GPT, model kind 'decoder'); "
                f"this workdir holds {kind.description} (kind {kind.name!r})"
            )


def resolve_max_length(max_length: int | None, trained) -> int:
    """The exported `max_length`: by default the model's `max_sequence_length`; checked against the model."""
    limit = trained.max_sequence_length
    if max_length is None:
        return limit
    if isinstance(max_length, bool) or not isinstance(max_length, int):
        raise ExportError(f"--max_length must be an integer, got {max_length!r}")
    if max_length < MIN_MAX_LENGTH:
        raise ExportError(
            f"--max_length={max_length} is too small: an export needs at least {MIN_MAX_LENGTH} positions "
            "(prompt plus new tokens)"
        )
    problem = trained.model_kind.max_length_problem(max_length, limit)
    if problem:
        raise ExportError(problem)
    if trained.position == "learned" and max_length > limit:
        raise ExportError(
            f"--max_length={max_length} exceeds the model's max_sequence_length={limit} "
            "(learned positions have no embedding beyond it)"
        )
    return max_length


def _directory_size(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)


def _signature_info(function) -> dict[str, list[str]]:
    concrete = function.get_concrete_function()
    return {
        "inputs": [spec.name for spec in concrete.structured_input_signature[0]],
        "outputs": sorted(concrete.structured_outputs),
    }


def _clean_stale_staging(workdir: str) -> None:
    """Removes `.export.tmp-<pid>` folders of export processes that no longer run."""
    for entry in os.listdir(workdir):
        if not entry.startswith(".export.tmp-"):
            continue
        try:
            pid = int(entry.rsplit("-", 1)[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(workdir, entry), ignore_errors=True)
        except (ValueError, PermissionError, OSError):
            continue


def _install(staging: str, workdir: str, passed: bool) -> str:
    """Renames the staging folder into place: `export/` when parity passed, else `export.failed/`."""
    final = os.path.join(workdir, EXPORT_DIRNAME if passed else FAILED_DIRNAME)
    old = os.path.join(workdir, f".{os.path.basename(final)}.old-{os.getpid()}")
    if os.path.exists(final):
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def export_workdir(
    workdir: str,
    *,
    formats: Sequence[str] = DEFAULT_FORMATS,
    quantization: Sequence[str] = DEFAULT_QUANTIZATIONS,
    strategy: str = "beam",
    beam_size: int = 4,
    max_length: int | None = None,
    version: int = 1,
    log=print,
) -> dict[str, Any]:
    """Exports a trained workdir and measures every artefact's parity against the Keras model.

    Args:
        workdir: str. A folder written by `python -m tfzoo.train`.
        formats: sequence of str. Any of "saved_model", "tflite", "onnx" (the default: all three), and
            for decoder-only models "genai" (an ONNX Runtime GenAI folder, `export.genai_export`) and
            "litertlm" (`<name>.litertlm` bundles for LiteRT-LM, one per quantization: `export.litertlm_export`).
        quantization: sequence of str. TFLite variants: any of "none" (fp32), "fp16", "int8", "int4"
            (the default: the first three).
        strategy: str. Strategy of the `generate` signature: "beam", "greedy" or "sample".
        beam_size: int. Beams of the beam strategy. Defaults to 4.
        max_length: int or None. Prompt plus generated tokens; defaults to the
            model's `max_sequence_length`.
        version: int. TF Serving version folder. Defaults to 1.
        log: callable taking a str, for progress lines. Defaults to `print`.

    Returns:
        The report (also written to `export/report.json`); `report["passed"]`
        tells whether every artefact matched the Keras model.

    Raises:
        ExportError: bad input (nothing is written), or an artefact that cannot be built.
    """
    formats, quantizations = check_arguments(
        formats=formats, quantization=quantization, strategy=strategy, beam_size=beam_size, version=version
    )
    from export.trained_model import inspect_workdir  # noqa: PLC0415 (imported only when needed)

    trained = inspect_workdir(workdir)  # no TensorFlow yet: bad input fails in a fraction of a second
    check_bundles(formats, trained.model_kind)
    check_quantizations(quantizations, formats, trained.model_config)
    kind = trained.model_kind
    if kind.generative:
        max_length = resolve_max_length(max_length, trained)
        exporter = _export
    else:  # no decode loop: the kind's own export (`export_module`: BERT's `embed`, a synthesizer's `synthesize`)
        if "int4" in quantizations:
            raise ExportError(
                "--quantization=int4 is built for generative models (GPT, Transformer, captioner); "
                f"{kind.description} takes none, fp16, int8"
            )
        try:
            max_length = kind.resolve_max_length(max_length, trained.max_sequence_length, trained.config)
        except ModelKindError as error:
            raise ExportError(str(error)) from None
        exporter = _export_kind
    if "litertlm" in formats:
        from export.litertlm_export import check_litertlm_export  # noqa: PLC0415 (imported only when needed)

        check_litertlm_export(trained.tokenizer)  # its packages and a Hugging Face form of the tokenizer
    trained.load_model()
    _clean_stale_staging(workdir)
    staging = os.path.join(workdir, f".export.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    try:
        report = exporter(trained, staging, formats, quantizations, strategy, beam_size, max_length, version, log)
        report["location"] = _install(staging, workdir, report["passed"])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def _export_kind(trained, staging, formats, quantizations, strategy, beam_size, max_length, version, log):
    """The `export_kind` of the kind's `export_module` (no strategy or beams: the kind does not generate)."""
    del strategy, beam_size
    module = importlib.import_module(trained.model_kind.export_module)
    return module.export_kind(trained, staging, formats, quantizations, max_length, version, log)


def _export(trained, staging, formats, quantizations, strategy, beam_size, max_length, version, log) -> dict[str, Any]:
    """Writes every artefact into `staging`, measures parity, writes `report.json`; returns the report."""
    from export.export_module import ExportModule, generate_signature_name, parity_strategies  # noqa: PLC0415 (imported only when needed)
    from export.tokenizer_ops import NEEDS_TENSORFLOW_TEXT, SUPPORTED_TYPES  # noqa: PLC0415 (imported only when needed)
    from tfzoo.decoding.sequences import DEFAULT_SHAPES  # noqa: PLC0415 (TensorFlow only when needed)

    started = time.time()
    timings: dict[str, float] = {}

    def timed(key: str, since: float) -> None:
        timings[key] = round(time.time() - since, 2)
        log(f"{key}: {timings[key]:.1f} s")

    tokenizer, model, kind = trained.tokenizer, trained.model, trained.model_kind
    strategies = parity_strategies(strategy)
    info = {
        "name": trained.name,
        "version": version,
        "max_length": max_length,
        "max_sequence_length": trained.max_sequence_length,
        "position": trained.position,
        "strategy": strategy,
        "beam_size": beam_size,
        "strategies": {s: generate_signature_name(s, strategy) for s in strategies},
        "eos_ids": [int(tokenizer.eos_id)],
        "banned_ids": kind.banned_ids(tokenizer),
        "pad_id": int(tokenizer.pad_id),
        "num_layers": int(model.num_layers),
        "num_heads": int(model.num_heads),
        "head_dim": int(model.head_dim),
        "vocabulary_size": int(model.vocabulary_size),
        "tokenizer": TOKENIZER_FILENAME,
        "kind": kind.name,
        # the fixed shapes of `generate`'s stop_sequences / banned_sequences inputs (int32, padded with -1)
        "sequence_shapes": {name: list(shape) for name, shape in DEFAULT_SHAPES.items()},
        **kind.report_fields(trained.model_config, tokenizer),  # start_id, max_source_length, image_shape
    }
    serving_tokenizer = tokenizer
    tokenizer_type = tokenizer.to_json().get("type")
    if tokenizer_type == "chat":  # the template, for chat over the export (tfzoo.chat, apps.edge --chat)
        info["chat_template"] = dict(tokenizer.to_json()["chat_template"])
    if tokenizer_type not in SUPPORTED_TYPES:  # e.g. ids (a checkpoint converted without its vocabulary)
        info["serving_default"] = f"not exported: no in-graph ops for tokenizer type {tokenizer_type!r}"
        log(info["serving_default"])
        serving_tokenizer = None
    _copy_tokenizer(trained.tokenizer_path, staging)
    info.update(_write_hf_tokenizer(tokenizer, staging, log))

    t = time.time()
    module = ExportModule(
        model,
        max_length=max_length,
        strategy=strategy,
        beam_size=beam_size,
        eos_ids=info["eos_ids"],
        banned_ids=info["banned_ids"],
        pad_id=info["pad_id"],
        tokenizer=serving_tokenizer,
        start_id=info.get("start_id"),
        sequence_shapes=info["sequence_shapes"],
        jit_compile=True,  # the SavedModel runs its loops with XLA; TFLite converts it all the same
    )
    module.signatures()
    timed("trace", t)

    # The Keras reference first; then each artefact is measured as soon as it is written and its runtime
    # released, so that one runtime at a time holds the model. A large model's runtimes (and its Keras
    # reference) run each in a child process of its own (`export.parity_process`), whose memory goes back to
    # the system when it ends (at the GPT-2-small shape each TFLite or ONNX runtime takes gigabytes, which
    # glibc did not give back in one process); a small one's run here (a child costs seconds of imports).
    t = time.time()
    quantized = "tflite" in formats and any(q != "none" for q in quantizations)
    isolated = _weight_bytes(model) >= ISOLATED_PARITY_BYTES
    if isolated:
        log(f"parity: each runtime in a process of its own (weights {_weight_bytes(model) / 2**20:.0f} MiB)")
    parity_run = _ParityRun(trained, info, strategies, quantized, isolated=isolated)
    timed("parity_reference", t)
    artefacts: dict[str, dict[str, Any]] = {}

    def measured(key: str, built: list) -> None:
        """Measures `built = [artefact, runtime spec]` (in a child process when `isolated`)."""
        since = time.time()
        artefact = built.pop(0)
        artefacts[key] = parity_run.measure(artefact, built[0])
        built.clear()
        _release_memory()  # what the parent made for it goes before the next artefact is built
        timings["parity"] = round(timings.get("parity", 0.0) + time.time() - since, 2)

    saved_model_path = os.path.join("saved_model", trained.name, str(version))
    # The TFLite converter reads a SavedModel: a scratch copy of the portable signatures (no XLA, so the
    # decode loops of decoder-only models have their growing cache; without `serving_default`, whose
    # tokenizer resources the converter cannot convert).
    tflite_source = ".scratch_saved_model"
    if "saved_model" in formats:
        t = time.time()
        _write_saved_model(module, os.path.join(staging, saved_model_path), trained.tokenizer_path)
        timed("saved_model", t)
        built = list(_saved_model_artefact(module, staging, saved_model_path, info))
        # What a process must import to load it: tensorflow-text registers the tokenizer ops of serving_default.
        needs_text = serving_tokenizer is not None and tokenizer_type in NEEDS_TENSORFLOW_TEXT
        built[0]["load_imports"] = ["tensorflow"] + (["tensorflow_text"] if needs_text else [])
        measured("saved_model", built)
    if "tflite" in formats:
        t = time.time()
        converted = [key for key in module.signature_names if key != "serving_default"]
        _write_saved_model(
            module, os.path.join(staging, tflite_source), trained.tokenizer_path, converted, portable=True
        )
        timed("tflite_saved_model", t)
        for quantization in quantizations:
            t = time.time()
            key = "tflite" if quantization == "none" else f"tflite_{quantization}"
            built = list(_tflite_artefact(module, staging, tflite_source, trained.name, quantization, info, isolated))
            timed(key, t)
            measured(key, built)
        shutil.rmtree(os.path.join(staging, tflite_source), ignore_errors=True)
    if "onnx" in formats:
        t = time.time()
        built = list(_onnx_artefact(module, staging, trained.name, info))
        timed("onnx", t)
        measured("onnx", built)
    if "genai" in formats:
        t = time.time()
        artefact, runner = _genai_artefact(module, staging, info, tokenizer, log)
        timed("genai", t)
        since = time.time()
        artefacts["genai"] = parity_run.measure_genai(artefact, runner, info)
        del runner
        _release_memory()
        timings["parity"] = round(timings.get("parity", 0.0) + time.time() - since, 2)
    if "litertlm" in formats:
        from export.litertlm_export import litertlm_artefacts  # noqa: PLC0415 (imported only when needed)

        t = time.time()  # each bundle is built, then run in LiteRT-LM's engine (its parity) and benchmarked
        bundles = litertlm_artefacts(
            model,
            staging,
            info=info,
            tokenizer=tokenizer,
            quantizations=quantizations,
            prompts=parity_run.prompts,
            reference=parity_run.ref,
            log=log,
        )
        artefacts.update(bundles)
        timed("litertlm", t)
        _release_memory()
    for artefact in artefacts.values():
        entries = list(artefact["files"].values()) if "files" in artefact else [artefact]
        entries += [artefact["weights"]] if "weights" in artefact else []
        for entry in entries:
            entry["size_bytes"] = _directory_size(os.path.join(staging, entry["path"]))
        artefact["size_bytes"] = sum(entry["size_bytes"] for entry in entries)

    log(f"parity: {timings.get('parity', 0.0):.1f} s")
    reference = parity_run.report()
    failures = [f"{key}: {message}" for key, a in artefacts.items() for message in a["parity"]["failures"]]
    report = build_report(
        passed=not failures,
        failures=failures,
        model=info,
        workdir=trained.workdir,
        artefacts=artefacts,
        reference=reference,
        timings=timings,
    )
    timings["total"] = round(time.time() - started, 2)
    write_report(report, staging)
    return report


def _write_saved_model(
    module, directory: str, tokenizer_path: str, names: Sequence[str] | None = None, portable: bool = False
) -> None:
    """Saves the signatures of `module` (all, or `names`; `portable`: their XLA-free form, for the TFLite
    converter); the tokenizer files go to `assets.extra/`."""
    import tensorflow as tf  # noqa: PLC0415 (imported only when needed)

    if names is None:
        target, signatures = module, module.signatures()
    else:  # a module that tracks the model's variables and these functions only
        target = tf.Module()
        target.model_variables = module.model_variables
        functions = {name: module.portable_function(name) if portable else module.function(name) for name in names}
        for name, function in functions.items():
            setattr(target, name, function)
        signatures = {name: function.get_concrete_function() for name, function in functions.items()}
    options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)  # e.g. silu's: not needed, not savable
    tf.saved_model.save(target, directory, signatures=signatures, options=options)
    os.makedirs(os.path.join(directory, "assets.extra"), exist_ok=True)
    _copy_tokenizer(tokenizer_path, os.path.join(directory, "assets.extra"))


def _copy_tokenizer(tokenizer_path: str, directory: str) -> None:
    """Copies `tokenizer.json` and the files beside it it names (`vocab.txt`, `sentencepiece.model`)."""
    shutil.copyfile(tokenizer_path, os.path.join(directory, TOKENIZER_FILENAME))
    with open(tokenizer_path, encoding="utf-8") as file:
        data = json.load(file)
    for field in ("vocabulary_file", "model_file"):  # checked plain file names (the tokenizer loaded)
        name = data.get(field)
        if isinstance(name, str) and os.path.isfile(os.path.join(os.path.dirname(tokenizer_path), name)):
            shutil.copyfile(os.path.join(os.path.dirname(tokenizer_path), name), os.path.join(directory, name))


def _saved_model_artefact(module, staging: str, path: str, info: dict):
    from tfzoo.runtimes.adapters import SavedModelRuntime  # noqa: PLC0415 (made and run in a child process)

    artefact = {
        "format": "saved_model",
        "path": path,
        "signatures": {key: _signature_info(module.function(key)) for key in module.signature_names},
    }
    return artefact, RuntimeSpec(SavedModelRuntime, (os.path.join(staging, path), info))


def _write_tflite(*, staging: str, saved_model_path: str, signatures: list, name: str, quantization: str):
    """Converts the scratch SavedModel's `signatures` to `staging`'s TFLite file of `quantization`; `(ops, int4)`."""
    from export.tflite_export import builtin_op_names, checked_builtins, convert_tflite, tflite_filename  # noqa: PLC0415 (imported only when needed)

    int4 = None
    if quantization == "int4":  # the fp32 file's weights rewritten; that file read back when it was written
        from export.tflite_int4 import quantize_int4  # noqa: PLC0415 (imported only when needed)

        fp32_path = os.path.join(staging, tflite_filename(name, "none"))
        if os.path.isfile(fp32_path):
            with open(fp32_path, "rb") as file:
                source = file.read()
        else:
            source = convert_tflite(os.path.join(staging, saved_model_path), signatures, "none")
        flatbuffer, int4 = quantize_int4(source)
        del source
        checked_builtins(flatbuffer, quantization)
    else:
        flatbuffer = convert_tflite(os.path.join(staging, saved_model_path), signatures, quantization)
    with open(os.path.join(staging, tflite_filename(name, quantization)), "wb") as file:
        file.write(flatbuffer)
    ops = builtin_op_names(flatbuffer)
    del flatbuffer
    _release_memory()  # what the converter freed goes before the runtime packs its weights
    return ops, int4


def _tflite_artefact(
    module, staging: str, saved_model_path: str, name: str, quantization: str, info: dict, isolated: bool
):
    from export.tflite_export import tflite_filename  # noqa: PLC0415 (imported only when needed)
    from tfzoo.runtimes.adapters import TFLiteRuntime  # noqa: PLC0415 (imported only when needed)

    signatures = [key for key in module.signature_names if key != "serving_default"]  # string ops: SavedModel only
    filename = tflite_filename(name, quantization)
    write = {"staging": staging, "saved_model_path": saved_model_path, "signatures": signatures, "name": name}
    if isolated:  # a large model: the converter's memory (gigabytes, not given back) ends with a child
        what = f"the TFLite {quantization} conversion"
        ops, int4 = run_in_child(_write_tflite, what, quantization=quantization, **write)
    else:
        ops, int4 = _write_tflite(quantization=quantization, **write)
    runtime = TFLiteRuntime(os.path.join(staging, filename), info, kernels="builtin")  # its signatures; not run here
    artefact = {
        "format": "tflite",
        "quantization": quantization,
        "path": filename,
        "signatures": {
            key: {"inputs": sorted(v["inputs"]), "outputs": sorted(v["outputs"])}
            for key, v in runtime.interpreter.get_signature_list().items()
        },
        "ops": ops,
    }
    if int4 is not None:
        artefact["int4"] = int4  # block_size, weights, float_weights, gathers (export.tflite_int4.quantize_int4)
    # Parity of a large model on LiteRT's builtin kernels: XNNPACK packs a copy of the weights per subgraph
    # (fp32 GPT-2-small: a 6.6 GB child, 9.7 GB with the export process); the builtin kernels read the file.
    kernels = {"kernels": "builtin"} if isolated else {}
    return artefact, RuntimeSpec(TFLiteRuntime, (os.path.join(staging, filename), info), kernels)


def _onnx_artefact(module, staging: str, name: str, info: dict):
    from export.onnx_export import (  # noqa: PLC0415 (imported only when needed)
        ONNX_OPSET,
        convert_onnx,
        onnx_filename,
        op_types,
        weights_filename,
        write_weights,
    )
    from tfzoo.runtimes.adapters import OnnxRuntime  # noqa: PLC0415 (made and run in a child process)

    files: dict[str, dict[str, Any]] = {}
    ops: set[str] = set()
    # The weights are converted as inputs (no frozen copies), then stored once, in one file that every
    # signature's graph refers to (ONNX external data).
    weights = module.weights()
    weights_file = weights_filename(name)
    external = (weights_file, write_weights(os.path.join(staging, weights_file), weights))
    for key in module.signature_names:
        if key == "serving_default":
            continue
        proto = convert_onnx(module.stateless_function(key), name=key, initializers=weights, external=external)
        filename = onnx_filename(name, key)
        with open(os.path.join(staging, filename), "wb") as file:
            file.write(proto.SerializeToString())
        files[key] = {
            "path": filename,
            "inputs": [i.name for i in proto.graph.input],
            "outputs": [o.name for o in proto.graph.output],
        }
        ops.update(op_types(proto))
        del proto
    artefact = {
        "format": "onnx",
        "path": files["generate"]["path"] if "generate" in files else next(iter(files.values()))["path"],
        "opset": ONNX_OPSET,
        "weights": {"path": weights_file},
        "files": files,
        "signatures": {key: {"inputs": f["inputs"], "outputs": f["outputs"]} for key, f in files.items()},
        "ops": sorted(ops),
    }
    return artefact, RuntimeSpec(OnnxRuntime, ({k: os.path.join(staging, f["path"]) for k, f in files.items()}, info))


def _write_hf_tokenizer(tokenizer, directory: str, log) -> dict[str, str]:
    """Writes `hf_tokenizer.json` (`tfzoo.data.hf_tokenizer`); returns the report field, or {} (logged) if none."""
    from tfzoo.data.hf_tokenizer import hf_tokenizer_json  # noqa: PLC0415 (imported only when needed)

    try:
        data = hf_tokenizer_json(tokenizer)
    except ValueError as error:
        log(f"no {HF_TOKENIZER_FILENAME}: {error}")
        return {}
    atomic_write_text(os.path.join(directory, HF_TOKENIZER_FILENAME), json.dumps(data, ensure_ascii=False) + "\n")
    return {"hf_tokenizer": HF_TOKENIZER_FILENAME}


def _genai_artefact(module, staging: str, info: dict, tokenizer, log):
    from export.genai_export import GENAI_DIRNAME, GenaiRunner, write_genai  # noqa: PLC0415 (imported only when needed)
    from tfzoo.data.hf_tokenizer import hf_tokenizer_json  # noqa: PLC0415 (imported only when needed)

    try:  # the runtime's tokenizer reads byte-level BPE (not WordLevel): that form of the same ids
        hf_tokenizer = hf_tokenizer_json(tokenizer, byte_level=True)
    except ValueError as error:
        log(f"genai: no tokenizer in the bundle (ids in and out only): {error}")
        hf_tokenizer = None
    artefact = write_genai(module, os.path.join(staging, GENAI_DIRNAME), info, hf_tokenizer)
    return artefact, GenaiRunner(os.path.join(staging, GENAI_DIRNAME))


def _release_memory() -> None:
    """Collects garbage and hands freed heap pages back to the system (glibc `malloc_trim`, where it exists).

    Without the trim the process keeps the peak of every artefact it has built: at the GPT-2-small
    shape each conversion and each runtime frees gigabytes that glibc would otherwise hold on to.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


ISOLATED_PARITY_BYTES = 256 * 2**20
"""A model with at least this many bytes of weights has its parity runs in child processes (GPT-2-small: 498 MB)."""


def _weight_bytes(model) -> int:
    """Bytes of the model's weights."""
    return int(sum(int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize for w in model.weights))


def _keras_reference(*, workdir: str, info: dict, strategies, quantized: bool):
    """`_reference(...)` of `workdir`'s model, loaded here (run in a child process: `export.parity_process`)."""
    from export.trained_model import inspect_workdir  # noqa: PLC0415 (imported only when needed)

    trained = inspect_workdir(workdir)
    trained.load_model()
    return _reference(trained, info, strategies, quantized)


def _reference(trained, info: dict, strategies, quantized: bool):
    """`(prompts, validation, reference)`: the kind's parity inputs, its validation windows (when `quantized`,
    with the Keras loss) and the Keras model's outputs on them (`export.parity.reference`)."""
    from tfzoo.runtimes.keras import KerasRuntime  # noqa: PLC0415 (TensorFlow only when needed)

    model, kind = trained.model, trained.model_kind
    try:
        prompts = kind.parity_inputs(trained, info["max_length"])
        validation = kind.validation_examples(trained, info["max_length"]) if quantized else None
    except ModelKindError as error:
        raise ExportError(str(error)) from None
    ref = parity.reference(KerasRuntime(model, info), prompts, strategies)
    if validation is not None and "inputs" in validation:
        logits = kind.validation_logits(model, validation)
        validation["loss"] = parity.cross_entropy(logits, validation["labels"], validation.get("mask"))
    return prompts, validation, ref


class _ParityRun:
    """The Keras reference on the parity inputs, then `measure(artefact, runtime)` per artefact."""

    def __init__(self, trained, info: dict, strategies, quantized: bool, isolated: bool = False):
        if isolated:  # in a child of its own: the Keras model's XLA programs and buffers of the reference
            # (about 1.3 GB at the GPT-2-small shape, 1024 slots) end with it instead of staying for the export
            self.prompts, self.validation, self.ref = run_in_child(
                _keras_reference,
                "the Keras reference",
                workdir=trained.workdir,
                info=info,
                strategies=tuple(strategies),
                quantized=quantized,
            )
        else:
            self.prompts, self.validation, self.ref = _reference(trained, info, strategies, quantized)
        self.kind, self.strategies, self.trained, self.isolated = trained.model_kind, strategies, trained, isolated

    def measure(self, artefact: dict[str, Any], spec: RuntimeSpec) -> dict[str, Any]:
        """`artefact` with its `parity` added, measured on the runtime `spec` makes (in a child when isolated)."""
        quantization = artefact.get("quantization", "none")
        validation = self.validation if quantization != "none" else None
        args = (self.ref, self.prompts, self.strategies, quantization, validation)
        artefact["parity"] = measure_in_child(spec, *args) if self.isolated else parity.measure(spec.build(), *args)
        return artefact

    def measure_genai(self, artefact: dict[str, Any], runner, info: dict) -> dict[str, Any]:
        """`artefact` with the `parity` of ONNX Runtime GenAI's own search (`runner`) against the Keras model.

        The cases: greedy, greedy with the penalties, and beam search with `length_penalty` 0 (the
        runtime normalises beam scores by length differently), all on the batch of parity prompts.
        """
        from tfzoo.runtimes.keras import KerasRuntime  # noqa: PLC0415 (TensorFlow only when needed)

        prompts = self.prompts
        cases = {"greedy": ("greedy", {}), "greedy_penalties": ("greedy", dict(parity.PENALTY_KNOBS))}
        cases["beam"] = ("beam", {"length_penalty": 0.0})
        keras_runtime = None
        failures, results = [], {}
        for case, (strategy, knobs) in cases.items():
            if case in self.ref["generate"] and case != "beam":
                want = self.ref["generate"][case]
                want_sequences, want_lengths = want["sequences"], want["sequence_lengths"]
            else:  # beam with length_penalty 0: not in the reference of the other formats
                keras_runtime = keras_runtime or KerasRuntime(self.trained.model, info)
                want_sequences, want_lengths, _ = keras_runtime.generate(
                    prompts["token_ids"], prompts["lengths"], prompts["max_new_tokens"], strategy=strategy, **knobs
                )
            sequences, lengths = runner.generate(
                prompts["token_ids"],
                prompts["lengths"],
                prompts["max_new_tokens"],
                strategy=strategy,
                beam_size=int(info["beam_size"]),
                **knobs,
            )
            rows = [
                sequences[r, : lengths[r]].tolist() == np.asarray(want_sequences)[r, : want_lengths[r]].tolist()
                for r in range(len(lengths))
            ]
            results[case] = {"identical": all(rows), "sequences": [s[:n].tolist() for s, n in zip(sequences, lengths)]}
            if not all(rows):
                failures.append(f"{case}: token ids differ from Keras")
        artefact["parity"] = {"generate": results, "passed": not failures, "failures": failures}
        return artefact

    def report(self) -> dict[str, Any]:
        """The reference as `report.json` records it (prompts, Keras outputs, validation)."""
        prompts, validation = self.prompts, self.validation
        if validation is not None and "inputs" in validation:
            validation = {
                "windows": len(validation["inputs"]),
                "seq_len": int(validation["inputs"].shape[1]),
                "keras_loss": validation["loss"],
            }
        extra = {key: prompts["conditions"][key].tolist() for key in self.kind.reported_conditions}
        return {
            **extra,
            "prompts": prompts["texts"],
            "token_ids": prompts["token_ids"].tolist(),
            "lengths": prompts["lengths"].tolist(),
            "max_new_tokens": prompts["max_new_tokens"],
            "penalty_knobs": dict(parity.PENALTY_KNOBS),
            "stop_ban": self.ref.get("stop_ban", {}),
            "keras": {
                case: {k: np.asarray(v).tolist() for k, v in out.items()} for case, out in self.ref["generate"].items()
            },
            "validation": validation,
        }
