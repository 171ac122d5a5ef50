"""The export report, `<workdir>/export/report.json`: its one owner (schema, builder, reader).

`python -m export` builds it (`build_report`) and writes it last
(`write_report`); the runtime adapters (`tfzoo.runtimes`), the generate CLI
and the apps read it (`read_report`). No TensorFlow here.

Schema, `FORMAT_VERSION` = 2 (a report without `format_version` is read as
version 1, the same fields without `format_version` and `knobs`):

- `format_version` int: 2.
- `passed` bool: every artefact matched the Keras model (else the export is in `export.failed/`).
- `failures` list of str: `"<artefact>: <what differs>"`, empty when `passed`.
- `model` dict, the exported model's facts (what the runtimes read):
  - `name` str: the model name (`config.model`, e.g. "gpt"): names the files.
  - `version` int: the TF Serving version folder.
  - `max_length` int: width of `sequences` and of the KV cache (prompt + new tokens).
  - `max_sequence_length` int: the model's own limit.
  - `position` str: the position encoding ("learned", "rotary", ...; "" if none).
  - `strategy` str: the strategy of `generate` ("beam", "greedy" or "sample").
  - `beam_size` int: beams of the beam strategy.
  - `strategies` dict: strategy -> signature name (`generate`, `generate_<strategy>`).
  - `eos_ids` list of int: ids that end a row.
  - `banned_ids` list of int: ids never generated.
  - `sequence_shapes` dict: `{"stop_sequences": [S, T], "banned_sequences": [S, T]}`, the fixed shapes of
    those int32 inputs of every `generate*` signature (padded with -1; absent in exports made before them).
  - `chat_template` dict (chat tokenizers only): `{"roles": {"system": id, "user": id, "assistant": id},
    "end_of_turn": "<eos>"}`: a message is `<|role|> content`, an assistant's ends with `<eos>`, a
    reply's prompt ends with `<|assistant|>` (`tfzoo.data.chat_template`).
  - `pad_id` int: padding of prompts and outputs.
  - `num_layers`, `num_heads`, `head_dim`, `vocabulary_size` int: the KV cache's and logits' shapes.
  - `tokenizer` str: file name of the tokenizer in `export/` ("tokenizer.json").
  - `hf_tokenizer` str: file name of the same tokenizer as a Hugging Face `tokenizers` JSON in `export/`
    ("hf_tokenizer.json": same ids; `tfzoo.data.hf_tokenizer`), what the apps read. Missing when the
    tokenizer type has no such form (`ids`) or in exports made before it.
  - `kind` str: the model kind (`tfzoo.kinds`: `decoder`, `seq2seq`, `captioner`; missing in version 1: `decoder`).
  - `start_id` int (seq2seq, captioner): the decoder prompt (the start token).
  - `max_source_length` int (seq2seq): most source tokens.
  - `image_shape` [H, W, C] (captioner): the images `generate` and `encode` take.
  - `serving_default` str (only when missing): why there is no `serving_default` signature.
  - An `encoder` export (BERT, `export/embed_export.py`) has no `strategy`, `strategies`, `beam_size`,
    `banned_ids` (its `max_length` is the most tokens per text of `serving_default`) and adds
    `model_class`, `head` ("none", "classifier", "masked_lm (not exported)"), `signatures` (["embed"]
    or ["embed", "classify"]), `pooled_output` and `segment_ids` (bool: that output / input exists),
    `num_classes` (int or null), `hidden_dim`, `pooling`, `cls_id` (int or null: the `[CLS]` id that
    starts each row; the apps build `cls_id ... eos_ids[0]`). Its artefacts' `parity`
    (`export/embed_parity.py`): `sentence_embedding_min_cosine`, `sequence_output_max_diff`,
    `pooled_output_max_diff`, `logits_max_diff`, `serving_default_min_cosine` (SavedModel),
    `passed`, `failures`; its `reference`: `texts`, `token_ids`, `lengths`, `keras`
    (`sentence_embedding`, `logits`), `bounds`.
- `knobs` dict: knob name -> `{"dtype": "int32"|"float32", "default": value, "strategies": [...]}` for
  every knob an exported `generate` signature can take (`tfzoo.decoding.knobs`), `strategies` being the
  decoding strategies whose signature takes it (all of them, whether or not this export carries them:
  `model.strategies` names the signatures it has).
- `workdir` str: absolute path of the run folder exported.
- `created` str: ISO 8601 UTC time of the export.
- `artefacts` dict: key ("saved_model", "tflite", "tflite_fp16", "tflite_int8", "tflite_int4", "onnx", "genai",
  "litertlm", "litertlm_fp16", "litertlm_int8") -> dict with
  `format`, `path` (relative to `export/`), `size_bytes`, `signatures` ({name: {inputs, outputs}}),
  `parity` (see `export/parity.py`: `generate` per case, `prefill_max_logit_diff`,
  `decode_max_logit_diff`, `passed`, `failures`, and for quantized files `token_agreement` and the
  `validation_loss*` fields); TFLite adds `quantization` and `ops` (and for int4 `int4`: `block_size`,
  `weights`, `float_weights`, `gathers`, `export.tflite_int4.quantize_int4`); ONNX `opset`, `ops`, `files`
  (signature -> {path, inputs, outputs, size_bytes}) and `weights` ({path, size_bytes}: the one
  external-data file every ONNX graph refers to; `size_bytes` of the artefact counts it once); the
  SavedModel `load_imports`. The bundle `genai` (an ONNX Runtime GenAI folder: `export/genai_export.py`)
  has `format`, `path` (the folder), `size_bytes` (all of it), `contents` (its file names), `inputs`,
  `outputs` and `ops` of its one decoder graph, and `parity` (`generate`: case -> {identical,
  sequences}, `passed`, `failures`): no `signatures`, since the runtime drives the graph itself.
  The bundles `litertlm[_<quantization>]` (a LiteRT-LM file: `export/litertlm_export.py`) have `format`
  ("litertlm"), `quantization`, `path`, `size_bytes`, `signatures` (of the TFLite model inside:
  `prefill_<T>`, `decode`), `ops`, `prefill_lengths`, `cache_length` (`max_length` + 1: the spare slot of
  the engine's padding), `llm_metadata` (`stop_tokens`, `suppress_tokens`, `max_num_tokens`, `sampler`,
  `llm_model_type`), `parity` (`generate` -> `greedy` -> {`identical`, `token_agreement`, `rows`: per
  prompt {`prompt_length`, `identical`, `text`, `token_ids`}}, `passed`, `failures`: the engine's greedy
  text against the Keras tokens; only the fp32 bundle must be identical) and `benchmark` (LiteRT-LM's own,
  CPU: `backend`, `prefill_tokens`, `prefill_tokens_per_second`, `decode_tokens`,
  `decode_tokens_per_second`, `time_to_first_token_s`, `init_time_s`).
- `reference` dict: the parity inputs and the Keras outputs: `prompts` (texts), `token_ids`, `lengths`,
  `max_new_tokens`, `penalty_knobs`, `stop_ban` (the `stop_sequences` and `banned_sequences` of the
  `*_stop_ban` cases), `keras` (case -> sequences, sequence_lengths, scores), `validation`
  (`windows`, `seq_len`, `keras_loss`; or `{"error": ...}`; or null), and for seq2seq `source_ids`,
  `source_lengths`.
- `timings` dict: step -> seconds, and `total`.

Example:
>>> report = build_report(passed=True, failures=[], model={"strategies": {"greedy": "generate"}}, workdir=".",
...                       artefacts={}, reference={}, timings={})
>>> report["format_version"], report["knobs"]["top_k"]["strategies"]
(2, ['sample'])
"""

from __future__ import annotations

import datetime
import json
import os
from typing import Any

from tfzoo.decoding.knobs import report_knobs
from tfzoo.run_folder import REPORT_FILENAME, RunFolder
from tfzoo.runtime_errors import ExportReadError

FORMAT_VERSION = 2


def build_report(
    *,
    passed: bool,
    failures: list[str],
    model: dict[str, Any],
    workdir: str,
    artefacts: dict[str, Any],
    reference: dict[str, Any],
    timings: dict[str, float],
) -> dict[str, Any]:
    """The report of one export (fields as in the module docstring); `knobs` from the exported strategies."""
    return {
        "format_version": FORMAT_VERSION,
        "passed": passed,
        "failures": failures,
        "model": model,
        "knobs": report_knobs(),
        "workdir": os.path.abspath(workdir),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "artefacts": artefacts,
        "reference": reference,
        "timings": timings,
    }


def write_report(report: dict[str, Any], directory: str) -> str:
    """Writes `report.json` into `directory` (the export folder); returns its path."""
    path = os.path.join(directory, REPORT_FILENAME)
    with open(path, "w", encoding="utf-8") as file:
        json.dump(report, file, indent=1)
        file.write("\n")
    return path


def check_report(report: Any, path: str) -> dict[str, Any]:
    """Checks a parsed report's `format_version` (missing: version 1, if it has `model` and `artefacts`)."""
    if not isinstance(report, dict):
        raise ExportReadError(f"{path} is not a JSON object; is it an export report?")
    version = report.get("format_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ExportReadError(f"{path}: format_version must be an integer >= 1, got {version!r}")
    if version > FORMAT_VERSION:
        raise ExportReadError(
            f"{path} has format_version {version}, newer than this tfzoo reads ({FORMAT_VERSION}); upgrade tfzoo"
        )
    if not isinstance(report.get("model"), dict) or not isinstance(report.get("artefacts"), dict):
        raise ExportReadError(f"{path} has no 'model' and 'artefacts' sections; re-export with `python -m export`")
    return report


def read_report(workdir: str) -> dict[str, Any]:
    """The checked `report.json` of `workdir/export`; `ExportReadError` (one line) when there is none.

    Example:
    >>> read_report("runs/gpt_char")["model"]["kind"]  # doctest: +SKIP
    'decoder'
    """
    folder = RunFolder(workdir)
    path = folder.report_path
    try:
        with open(path, encoding="utf-8") as file:
            report = json.load(file)
    except FileNotFoundError:
        raise ExportReadError(f"no export in {workdir}: run `python -m export --workdir={workdir}` first") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ExportReadError(f"cannot read {path}: {error}") from None
    return check_report(report, path)
