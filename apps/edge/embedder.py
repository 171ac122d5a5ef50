"""Sentence embeddings (and class probabilities) of an encoder (BERT) export: numpy, ai_edge_litert, tokenizers.

    report = read_report("runs/minilm/export", AppError)
    facts = encoder_facts(report, "runs/minilm/export/report.json")     # cls/sep/pad ids, max_length
    tokenizer = load_tokenizer("runs/minilm/export", report)              # hf_tokenizer.json: WordPiece
    inputs = encode_texts(tokenizer, ["A cat sits."], facts)              # [CLS] text [SEP], right-padded
    vectors = EdgeEncoder("runs/minilm/export/bert_encoder.tflite").embed(**inputs)["sentence_embedding"]

What `python -m tfzoo.embed --runtime=tflite` computes, without tfzoo: each text
encoded as `[CLS] ids [SEP]` (the WordPiece ids of `hf_tokenizer.json`, the same as
tfzoo's tokenizer, cut so the whole row has at most the report's `max_length` ids),
right-padded with the pad id, `lengths` the real ids per row, `segment_ids` zeros (one
sentence) when the signature takes them. The export's `embed` signature returns the
sentence embedding (masked mean, L2-normalised); `classify` (a `BertClassifier`
export) the logits, which `probabilities` turns into a softmax. The serving client
builds its `embed` requests with the same `encode_texts`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from apps.edge.errors import AppError

ENCODER_KIND = "encoder"  # report["model"]["kind"] of a BERT export


def export_kind(report: dict) -> str:
    """The model kind of a checked report (`decoder` for exports that predate the field)."""
    model = report.get("model") if isinstance(report.get("model"), dict) else {}
    kind = model.get("kind", "decoder")
    return kind if isinstance(kind, str) else "decoder"


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def encoder_facts(report: dict, source: str) -> dict[str, int]:
    """`cls_id`, `sep_id`, `pad_id`, `max_length` of an encoder export's report; `AppError` naming what is missing.

    Example:
    >>> encoder_facts({"model": {"kind": "encoder", "cls_id": 2, "eos_ids": [3], "pad_id": 0, "max_length": 8,
    ...                          "max_sequence_length": 16}}, "report.json")["max_length"]
    8
    """
    model = report.get("model") if isinstance(report.get("model"), dict) else {}
    if "cls_id" not in model:
        raise AppError(f"{source} has no model.cls_id (an encoder export older than the apps' embed mode): re-export")
    eos_ids = model.get("eos_ids")
    facts = {
        "cls_id": model.get("cls_id"),
        "sep_id": eos_ids[0] if isinstance(eos_ids, list) and eos_ids else None,
        "pad_id": model.get("pad_id"),
        "max_length": model.get("max_length"),
        "max_sequence_length": model.get("max_sequence_length", model.get("max_length")),
    }
    bad = [name for name, value in facts.items() if not _is_id(value)]
    if bad:
        raise AppError(f"{source}: model.{bad[0]} must be a non-negative integer, got {facts[bad[0]]!r}")
    return facts


def encode_texts(
    tokenizer, texts: Sequence[str], facts: dict[str, int], max_length: int | None = None
) -> dict[str, np.ndarray]:
    """`token_ids` int32 (N, T) (`[CLS] ids [SEP]`, right-padded) and `lengths` int32 (N,) of `texts`.

    Args:
        tokenizer: the export's `HfTokenizer` (`apps.edge.tokenizer.load_tokenizer`).
        texts: sequence of str.
        facts: `encoder_facts(report)`.
        max_length: int or None. Ids per row at most; None for the report's `max_length`.

    Example:
    >>> class Words:  # any object with `encode(text) -> ids`
    ...     def encode(self, text):
    ...         return [len(word) + 4 for word in text.split()]
    >>> facts = {"cls_id": 2, "sep_id": 3, "pad_id": 0, "max_length": 4, "max_sequence_length": 8}
    >>> encode_texts(Words(), ["a bb ccc", "a"], facts)["token_ids"].tolist()
    [[2, 5, 6, 3], [2, 5, 3, 0]]
    """
    if not texts:
        raise AppError("pass at least one --text")
    limit = facts["max_length"] if max_length is None else int(max_length)
    if limit < 2:
        raise AppError(f"--max_length must be >= 2 (room for [CLS] and [SEP]), got {limit}")
    if limit > facts["max_sequence_length"]:
        raise AppError(
            f"--max_length={limit} exceeds the model's max_sequence_length={facts['max_sequence_length']} "
            "(its learned positions end there)"
        )
    rows = []
    for text in texts:
        try:
            ids = tokenizer.encode(text)
        except AppError as error:
            raise AppError(str(error).replace("the prompt", "the text")) from None
        rows.append([facts["cls_id"], *ids[: limit - 2], facts["sep_id"]])
    width = max(len(row) for row in rows)
    token_ids = np.full((len(rows), width), facts["pad_id"], np.int32)
    for index, row in enumerate(rows):
        token_ids[index, : len(row)] = row
    return {"token_ids": token_ids, "lengths": np.asarray([len(row) for row in rows], np.int32)}


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (float64 inside, float32 out).

    Example:
    >>> probabilities(np.array([[0.0, 0.0]])).tolist()
    [[0.5, 0.5]]
    """
    logits = np.asarray(logits, np.float64)
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (weights / weights.sum(axis=-1, keepdims=True)).astype(np.float32)


def embedding_result(vectors: np.ndarray) -> dict:
    """`python -m tfzoo.embed`'s JSON: `dim`, `embeddings`, and `cosine` for exactly two texts.

    Example:
    >>> embedding_result(np.array([[1.0, 0.0], [0.6, 0.8]], np.float32))["cosine"]
    0.6000000238418579
    """
    vectors = np.asarray(vectors, np.float32)
    result = {"dim": int(vectors.shape[1]), "embeddings": vectors.tolist()}
    if len(vectors) == 2:
        result["cosine"] = float(np.dot(vectors[0], vectors[1]))
    return result


class EdgeEncoder:
    """Runs the `embed` and `classify` signatures of an encoder export's `.tflite` file.

    Args:
        path: str. The `.tflite` file (fp32, fp16 or int8 export of a BERT workdir).
        num_threads: int or None. Interpreter threads (None: LiteRT's default).
        kernels: str. "xnnpack" or "builtin" (`apps.edge.edge_model.KERNELS`). Defaults to "xnnpack".

    Example:
    >>> encoder = EdgeEncoder("runs/minilm/export/bert_encoder.tflite")  # doctest: +SKIP
    >>> encoder.embed(np.array([[2, 9, 3]], np.int32), np.array([3], np.int32))["sentence_embedding"].shape
    ... # doctest: +SKIP
    (1, 384)
    """

    def __init__(self, path: str, num_threads: int | None = None, kernels: str = "xnnpack"):
        from apps.edge.edge_model import load_interpreter  # noqa: PLC0415 (the one loader of .tflite files)

        self.path = path
        self.interpreter, signatures = load_interpreter(path, num_threads, kernels)
        self.signatures = {key: dict(value) for key, value in signatures.items()}
        if "embed" not in self.signatures:
            have = ", ".join(sorted(self.signatures)) or "none"
            raise AppError(f"{path} has no embed signature (it has: {have}): not an encoder export's model file")
        self._runners = {}

    @property
    def classifies(self) -> bool:
        return "classify" in self.signatures

    def _call(self, signature: str, token_ids: np.ndarray, lengths: np.ndarray) -> dict[str, np.ndarray]:
        if signature not in self._runners:
            self._runners[signature] = self.interpreter.get_signature_runner(signature)
        inputs = {"token_ids": np.asarray(token_ids, np.int32), "lengths": np.asarray(lengths, np.int32)}
        if "segment_ids" in self.signatures[signature]["inputs"]:
            inputs["segment_ids"] = np.zeros_like(inputs["token_ids"])  # one sentence per row
        return {name: np.asarray(value) for name, value in self._runners[signature](**inputs).items()}

    def embed(self, token_ids: np.ndarray, lengths: np.ndarray) -> dict[str, np.ndarray]:
        """`sentence_embedding` (N, C), `sequence_output` (N, T, C) and, with a pooler, `pooled_output` (N, C)."""
        return self._call("embed", token_ids, lengths)

    def classify(self, token_ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """`logits` (N, num_classes) of a `BertClassifier` export."""
        if not self.classifies:
            raise AppError(f"{self.path} has no classify signature (only a BertClassifier's export has)")
        return self._call("classify", token_ids, lengths)["logits"]
