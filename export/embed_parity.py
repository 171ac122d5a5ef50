"""Parity of an encoder export (`embed`, `classify`, `serving_default`) against the Keras model.

On the kind's parity texts (`tfzoo/kinds/encoder.py`, `[CLS] text [SEP]`, right-padded):

- `sentence_embedding_min_cosine`: the smallest cosine, over the rows, between the
  artefact's and the Keras sentence embeddings; fp32 files must reach `FP32_MIN_COSINE`,
  fp16 and int8 files `QUANTIZED_MIN_COSINE`.
- `sequence_output_max_diff`: the largest absolute difference of the hidden states on real
  tokens (padding excluded); fp32 files within `FP32_MAX_DIFF`. `pooled_output_max_diff`
  (models with a pooler) and `logits_max_diff` (`classify`) likewise. Quantized files record
  these without a bound.
- `serving_default_min_cosine` (the SavedModel, when it has that signature): the raw texts in
  (tokenized in the graph), against the Keras embeddings of the Python tokenizer's ids; bound
  `FP32_MIN_COSINE`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FP32_MIN_COSINE = 0.99999
FP32_MAX_DIFF = 1e-4
QUANTIZED_MIN_COSINE = 0.99


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of (B, C) arrays."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    norms = np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-30)
    return np.sum(a * b, axis=-1) / norms


def reference(keras_runtime, prompts: dict, signatures) -> dict[str, Any]:
    """The Keras model's `embed` (and `classify`) outputs on the parity inputs."""
    ids, lengths = prompts["token_ids"], prompts["lengths"]
    result = {"embed": keras_runtime.embed(ids, lengths)}
    if "classify" in signatures:
        result["classify"] = keras_runtime.classify(ids, lengths)
    return result


def measure(runtime, ref: dict, prompts: dict, quantization: str = "none", texts: bool = False) -> dict[str, Any]:
    """The `parity` section of one artefact (module docstring); `texts`: also check `serving_default`."""
    ids, lengths = prompts["token_ids"], prompts["lengths"]
    want, got = ref["embed"], runtime.embed(ids, lengths)
    mask = np.arange(ids.shape[1])[None, :] < lengths[:, None]  # (B, T): real tokens
    cosines = _cosines(got["sentence_embedding"], want["sentence_embedding"])
    result: dict[str, Any] = {
        "sentence_embedding_min_cosine": float(cosines.min()),
        "sequence_output_max_diff": float(np.abs(got["sequence_output"] - want["sequence_output"])[mask].max()),
    }
    if "pooled_output" in want:
        result["pooled_output_max_diff"] = float(np.abs(got["pooled_output"] - want["pooled_output"]).max())
    if "classify" in ref:
        result["logits_max_diff"] = float(np.abs(runtime.classify(ids, lengths) - ref["classify"]).max())
    failures = []
    min_cosine = FP32_MIN_COSINE if quantization == "none" else QUANTIZED_MIN_COSINE
    if result["sentence_embedding_min_cosine"] < min_cosine:
        failures.append(f"sentence_embedding cosine {result['sentence_embedding_min_cosine']:.6f} < {min_cosine}")
    if quantization == "none":
        for key in ("sequence_output_max_diff", "pooled_output_max_diff", "logits_max_diff"):
            if key in result and not result[key] <= FP32_MAX_DIFF:
                failures.append(f"{key.removesuffix('_max_diff')} differs by {result[key]:.3g} > {FP32_MAX_DIFF}")
    if texts:
        served = runtime.embed_texts(prompts["texts"])["sentence_embedding"]
        result["serving_default_min_cosine"] = float(_cosines(served, want["sentence_embedding"]).min())
        if result["serving_default_min_cosine"] < FP32_MIN_COSINE:
            failures.append(
                f"serving_default (text in) cosine {result['serving_default_min_cosine']:.6f} < {FP32_MIN_COSINE}"
            )
    result.update({"passed": not failures, "failures": failures})
    return result


def report_reference(prompts: dict, ref: dict) -> dict[str, Any]:
    """`report["reference"]` of an encoder export: the parity texts, their ids and the Keras embeddings."""
    reference = {
        "texts": list(prompts["texts"]),
        "token_ids": prompts["token_ids"].tolist(),
        "lengths": prompts["lengths"].tolist(),
        "keras": {"sentence_embedding": np.asarray(ref["embed"]["sentence_embedding"]).tolist()},
        "bounds": {
            "fp32_min_cosine": FP32_MIN_COSINE,
            "fp32_max_diff": FP32_MAX_DIFF,
            "quantized_min_cosine": QUANTIZED_MIN_COSINE,
        },
    }
    if "classify" in ref:
        reference["keras"]["logits"] = np.asarray(ref["classify"]).tolist()
    return reference
