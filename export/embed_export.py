"""The export of a BERT workdir (model kind `encoder`): `embed` in SavedModel, TFLite and ONNX, with parity.

`python -m export --workdir=DIR` on a workdir whose `model.keras` is a
`BertEncoder`, `BertClassifier` or `BertMaskedLM` (e.g. from `python -m
tfzoo.convert bert`) writes the same layout as for the generative kinds
(`export/pipeline.py`), with these signatures (`tfzoo/kinds/encoder.py`):

- `embed` (every format): `token_ids` int32 [B, T] (`[CLS] ... [SEP]`,
  right-padded), `lengths` int32 [B] and, for a model with segment
  embeddings, `segment_ids` int32 [B, T] (zeros for one sentence) in;
  `sequence_output` float32 [B, T, C], `sentence_embedding` float32 [B, C]
  (masked mean, L2-normalised) and, when the checkpoint has a pooler,
  `pooled_output` float32 [B, C] out (without one the output is absent and
  `report["model"]["pooled_output"]` is false).
- `classify` (every format; `BertClassifier` only): the same inputs,
  `logits` float32 [B, num_classes].
- `serving_default` (SavedModel only): `texts` string [B] in (WordPiece in the
  graph: `[CLS] text [SEP]` cut at `max_length` tokens);
  `sentence_embedding` (and `pooled_output`) out.

A `BertMaskedLM` exports its backbone (the masked-LM head is not exported;
`report["model"]["head"]` says so). `--max_length` is the most tokens per
text of `serving_default` (default: the workdir's `embed_max_length`, else
`max_sequence_length`); `--strategy` and `--beam_size` do not apply.

Parity (`export/embed_parity.py`): every artefact's `embed` against the Keras
model on the kind's parity texts; the SavedModel's `serving_default` on the
raw texts.
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from export import embed_parity
from export.export_module import _Untracked
from export.tokenizer_ops import TokenizerOps
from tfzoo.export_report import build_report, write_report


class SignatureModule(tf.Module):
    """The `tf.function`s of a kind without a decode loop, with the interface the pipeline's artefact writers use.

    `signature_names`, `function`, `portable_function`, `signatures`, `weights`, `stateless_function`,
    `model_variables` (as `export.export_module.ExportModule`). A subclass fills `self._functions`
    (name -> `tf.function` with an input signature) after `__init__`.

    Args:
        model: the Keras model whose variables the SavedModel keeps (once, as `model_variables`).
        name: str. The module's name.
    """

    def __init__(self, model, name: str):
        super().__init__(name=name)
        # Tracked as the `tf.Variable`s inside the Keras variables: tracking the Keras variables themselves, the
        # SavedModel loads and runs, but its TFLite conversion (from the SavedModel's signature) freezes other
        # values in (probe of 2026-12-04: a synthesizer's durations all 0).
        self.model_variables = [v.value for v in model.variables]  # tracked: saved under variables/
        self._keras_variables = _Untracked(list(model.variables))
        self._functions: dict = {}

    def _track(self) -> None:
        for name, function in self._functions.items():
            setattr(self, name, function)  # tracked: restorable as `loaded.<name>` too

    @property
    def signature_names(self) -> list[str]:
        return list(self._functions)

    def function(self, name: str):
        return self._functions[name]

    def portable_function(self, name: str):
        return self._functions[name]  # no XLA here: the saved function is already portable

    def signatures(self) -> dict:
        return {name: function.get_concrete_function() for name, function in self._functions.items()}

    def weights(self) -> dict[str, np.ndarray]:
        """The model's weights by the input names of `stateless_function` (`weight_<i>`)."""
        return {f"weight_{i}": np.asarray(v.numpy()) for i, v in enumerate(self._keras_variables.value)}

    def stateless_function(self, name: str):
        """The signature with the weights as extra inputs `weight_<i>` (nothing captured: tf2onnx freezes nothing)."""
        function = self._functions[name]
        specs = list(function.input_signature)
        variables = self._keras_variables.value
        weight_specs = [tf.TensorSpec(v.shape, v.dtype, name=f"weight_{i}") for i, v in enumerate(variables)]
        count = len(specs)

        def stateless(*args):
            with keras.StatelessScope(state_mapping=list(zip(variables, args[count:]))):
                return function.python_function(*args[:count])

        return tf.function(stateless, input_signature=specs + weight_specs, autograph=False)


class EmbedModule(SignatureModule):
    """The `embed` (and `classify`, `serving_default`) signatures of a BERT model as `tf.function`s.

    Args:
        kind: the `encoder` kind bound to the model (`tfzoo.kinds.kind_of(model)`).
        tokenizer: a WordPiece tokenizer, or None (no `serving_default`).
        max_length: int. Most tokens per text of `serving_default` (with `[CLS]` and `[SEP]`).

    Example:
    >>> from tfzoo.kinds import kind_of
    >>> from tfzoo.models.bert import BertEncoder
    >>> encoder = BertEncoder(vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=8,
    ...                       intermediate_dim=16, max_sequence_length=8)
    >>> EmbedModule(kind_of(encoder), None, max_length=8).signature_names
    ['embed']
    """

    def __init__(self, kind, tokenizer, *, max_length: int):
        super().__init__(kind.model, name="tfzoo_embed")
        self._kind = _Untracked(kind)
        self.max_length = int(max_length)
        self._specs = kind.embed_specs()
        names = ["embed"] + (["classify"] if kind.classifies else [])
        self._functions = {name: self._signature(getattr(kind, name)) for name in names}
        if tokenizer is not None:
            self._functions["serving_default"] = self._serving(tokenizer)
        self._track()

    @property
    def kind(self):
        return self._kind.value

    def _signature(self, method):
        names = list(self._specs)

        def signature(*args):
            return method(dict(zip(names, args)))

        return tf.function(signature, input_signature=list(self._specs.values()), autograph=False)

    def _serving(self, tokenizer):
        ops = TokenizerOps(tokenizer)
        self.tokenizer_tables = ops.trackable  # tracked: the SavedModel keeps tensorflow-text's resources
        cls_id = tokenizer.special_tokens.get("<cls>", tokenizer.special_tokens.get("<bos>"))
        kind, max_length, segments = self.kind, self.max_length, self.kind.has_segments

        def serving_default(texts):
            token_ids, lengths = ops.encode_inputs(texts, max_length, cls_id)
            inputs = {"token_ids": token_ids, "lengths": lengths}
            if segments:
                inputs["segment_ids"] = tf.zeros_like(token_ids)
            outputs = kind.embed(inputs)
            return {key: value for key, value in outputs.items() if key != "sequence_output"}

        spec = tf.TensorSpec([None], tf.string, name="texts")
        return tf.function(serving_default, input_signature=[spec], autograph=False)


def export_kind(trained, staging: str, formats, quantizations, max_length: int, version: int, log) -> dict[str, Any]:
    """Writes every artefact of a BERT workdir into `staging`, measures parity, writes `report.json`."""
    from export.tokenizer_ops import NEEDS_TENSORFLOW_TEXT  # noqa: PLC0415 (imported only when needed)

    tokenizer, model, kind = trained.tokenizer, trained.model, trained.model_kind
    info = _model_info(trained, kind, max_length, version)
    serving_tokenizer = tokenizer if hasattr(tokenizer, "encode_input") else None
    if serving_tokenizer is None:
        info["serving_default"] = f"not exported: a {tokenizer.type_name} tokenizer has no [CLS]/[SEP] input form"
        log(info["serving_default"])
    needs_text = serving_tokenizer is not None and tokenizer.to_json().get("type") in NEEDS_TENSORFLOW_TEXT

    def reference(info):
        prompts = kind.parity_inputs(trained, max_length)
        from tfzoo.runtimes.keras import KerasRuntime  # noqa: PLC0415 (TensorFlow only when needed)

        return prompts, embed_parity.reference(KerasRuntime(model, info), prompts, info["signatures"])

    def measure(runtime, ref, prompts, quantization, texts):
        return embed_parity.measure(runtime, ref, prompts, quantization, texts=texts and serving_tokenizer is not None)

    return write_artefacts(
        trained,
        staging,
        formats,
        quantizations,
        info,
        module=lambda: EmbedModule(kind, serving_tokenizer, max_length=max_length),
        reference=reference,
        measure=measure,
        report_reference=embed_parity.report_reference,
        load_imports=["tensorflow"] + (["tensorflow_text"] if needs_text else []),
        log=log,
    )


def write_artefacts(
    trained, staging, formats, quantizations, info, *, module, reference, measure, report_reference, load_imports, log
) -> dict[str, Any]:
    """The artefacts, parity and `report.json` of a kind without a decode loop, in `staging` (`export.pipeline`).

    Args:
        trained: `export.trained_model.TrainedModel`, its model loaded.
        staging, formats, quantizations: as `export.pipeline.export_workdir` has them.
        info: dict. `report["model"]`; `signatures` is added (the numeric signatures: not `serving_default`).
        module: callable -> `SignatureModule`. Builds (and traces) the signatures.
        reference: callable(info) -> `(prompts, reference)`: the parity inputs and the Keras outputs on them.
        measure: callable(runtime, reference, prompts, quantization, texts) -> the artefact's `parity`
            (`texts`: the SavedModel, whose `serving_default` takes strings).
        report_reference: callable(prompts, reference) -> `report["reference"]`.
        load_imports: list of str. What a process imports to load the SavedModel.
        log: callable taking a str.
    """
    from export import pipeline  # noqa: PLC0415 (pipeline imports this module when it runs)

    started = time.time()
    timings: dict[str, float] = {}

    def timed(key: str, since: float) -> None:
        timings[key] = round(time.time() - since, 2)
        log(f"{key}: {timings[key]:.1f} s")

    pipeline._copy_tokenizer(trained.tokenizer_path, staging)  # noqa: SLF001 (the pipeline's own helpers)
    info.update(pipeline._write_hf_tokenizer(trained.tokenizer, staging, log))  # noqa: SLF001

    t = time.time()
    module = module()
    module.signatures()
    timed("trace", t)
    info["signatures"] = [name for name in module.signature_names if name != "serving_default"]
    t = time.time()
    prompts, ref = reference(info)
    timed("parity_reference", t)
    artefacts: dict[str, dict[str, Any]] = {}

    def measured(key: str, built: list, texts: bool = False) -> None:
        since = time.time()
        artefact = built.pop(0)
        quantization = artefact.get("quantization", "none")
        runtime = built[0].build()  # the pipeline's runtime spec, made here (these kinds' runtimes are small)
        artefact["parity"] = measure(runtime, ref, prompts, quantization, texts)
        del runtime
        artefacts[key] = artefact
        built.clear()
        pipeline._release_memory()  # noqa: SLF001
        timings["parity"] = round(timings.get("parity", 0.0) + time.time() - since, 2)

    saved_model_path = os.path.join("saved_model", trained.name, str(info["version"]))
    if "saved_model" in formats:
        t = time.time()
        pipeline._write_saved_model(module, os.path.join(staging, saved_model_path), trained.tokenizer_path)  # noqa: SLF001
        timed("saved_model", t)
        built = list(pipeline._saved_model_artefact(module, staging, saved_model_path, info))  # noqa: SLF001
        built[0]["load_imports"] = list(load_imports)
        measured("saved_model", built, texts="serving_default" in module.signature_names)
    if "tflite" in formats:
        t = time.time()
        tflite_source = ".scratch_saved_model"  # without serving_default: the converter cannot take its string ops
        pipeline._write_saved_model(  # noqa: SLF001
            module, os.path.join(staging, tflite_source), trained.tokenizer_path, info["signatures"]
        )
        timed("tflite_saved_model", t)
        for quantization in quantizations:
            t = time.time()
            key = "tflite" if quantization == "none" else f"tflite_{quantization}"
            built = list(
                pipeline._tflite_artefact(module, staging, tflite_source, trained.name, quantization, info, False)  # noqa: SLF001
            )
            timed(key, t)
            measured(key, built)
        shutil.rmtree(os.path.join(staging, tflite_source), ignore_errors=True)
    if "onnx" in formats:
        t = time.time()
        built = list(pipeline._onnx_artefact(module, staging, trained.name, info))  # noqa: SLF001
        timed("onnx", t)
        measured("onnx", built)
    for artefact in artefacts.values():
        entries = list(artefact["files"].values()) if "files" in artefact else [artefact]
        entries += [artefact["weights"]] if "weights" in artefact else []
        for entry in entries:
            entry["size_bytes"] = pipeline._directory_size(os.path.join(staging, entry["path"]))  # noqa: SLF001
        artefact["size_bytes"] = sum(entry["size_bytes"] for entry in entries)
    log(f"parity: {timings.get('parity', 0.0):.1f} s")
    failures = [f"{key}: {message}" for key, a in artefacts.items() for message in a["parity"]["failures"]]
    report = build_report(
        passed=not failures,
        failures=failures,
        model=info,
        workdir=trained.workdir,
        artefacts=artefacts,
        reference=report_reference(prompts, ref),
        timings=timings,
    )
    timings["total"] = round(time.time() - started, 2)
    write_report(report, staging)
    return report


def _model_info(trained, kind, max_length: int, version: int) -> dict[str, Any]:
    """`report["model"]` of an encoder export (docs/contract.md)."""
    backbone, tokenizer = kind.backbone, trained.tokenizer
    head = {"BertClassifier": "classifier", "BertMaskedLM": "masked_lm (not exported)"}
    return {
        "name": trained.name,
        "version": version,
        "kind": kind.name,
        "model_class": type(trained.model).__name__,
        "head": head.get(type(trained.model).__name__, "none"),
        "max_length": max_length,
        "max_sequence_length": trained.max_sequence_length,
        "position": trained.position,
        "pad_id": int(tokenizer.pad_id),
        "eos_ids": [int(tokenizer.eos_id)],
        "cls_id": _cls_id(tokenizer),  # rows are `cls_id ... eos_ids[0]` (the apps build them from this)
        "num_layers": int(backbone.num_layers),
        "num_heads": int(backbone.num_heads),
        "head_dim": int(backbone.hidden_dim // backbone.num_heads),
        "hidden_dim": int(backbone.hidden_dim),
        "vocabulary_size": int(backbone.vocabulary_size),
        "pooled_output": kind.has_pooler,
        "segment_ids": kind.has_segments,
        "num_classes": int(trained.model.num_classes) if kind.classifies else None,
        "pooling": "mean, L2-normalised",
        "tokenizer": "tokenizer.json",
    }


def _cls_id(tokenizer) -> int | None:
    """The id that starts every `embed` row (`[CLS]`), as `encode_input` writes it; None without one."""
    cls_id = tokenizer.special_tokens.get("<cls>", tokenizer.special_tokens.get("<bos>"))
    return None if cls_id is None else int(cls_id)
