"""Sentence embeddings of a BERT workdir: `python -m tfzoo.embed --workdir=DIR --text=TEXT [--text=TEXT ...]`.

Loads `DIR/model.keras` (a `BertEncoder`, or a task model around one, e.g. a
converted BERT from `python -m tfzoo.convert bert`) and `DIR/tokenizer/`,
encodes each text as `[CLS] text [SEP]` (cut to `--max_length` tokens; by
default the workdir's `embed_max_length`, a sentence-transformers checkpoint's
`max_seq_length`, else the model's position table) and prints the sentence embedding: the
masked mean of the last hidden states, L2-normalised, as sentence-transformers
computes it (`BertEncoder.sentence_embedding`).

`--runtime=saved_model|tflite|onnx` runs the export's `embed` signature
instead (`python -m export --workdir=DIR` first; `tfzoo.runtimes.load_runtime`,
TFLite's variant by `--quantization=none|fp16|int8`): the same `[CLS] text
[SEP]` ids from the export's `tokenizer.json`, cut at the report's
`max_length` unless `--max_length` says otherwise; no TensorFlow for `tflite`
and `onnx`.

Output, one JSON object on stdout: `{"embeddings": [[...], ...], "dim": C}`; with
exactly two texts also `"cosine"` (their cosine similarity, the dot product of
the two unit vectors). `--cosine_only` prints just that number. Errors print
`error: ...` on stderr and exit with code 2.

Example:
    python -m tfzoo.embed --workdir=runs/minilm --text="A cat sits." --text="A kitten is sitting."
    python -m tfzoo.embed --workdir=runs/minilm --runtime=tflite --quantization=int8 --text="A cat sits."
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence

import numpy as np

from tfzoo.cli import OneLineErrorParser, print_error
from tfzoo.run_folder import RunFolder

__all__ = ["embed_exported", "embed_texts", "main"]

RUNTIMES = ("keras", "saved_model", "tflite", "onnx")
QUANTIZATIONS = ("none", "fp16", "int8")  # TFLite variants (export/tflite_export.py)


def _encoder(model):
    from tfzoo.models.bert import BertEncoder  # noqa: PLC0415 (imports TensorFlow)

    encoder = getattr(model, "backbone", model)
    if not isinstance(encoder, BertEncoder):
        raise ValueError(f"embed needs a BERT workdir (a BertEncoder), this one holds a {type(model).__name__}")
    return encoder


def embed_texts(model, tokenizer, texts: Sequence[str], max_length: int | None = None) -> np.ndarray:
    """Unit-length sentence embeddings (N, hidden_dim) float32 of `texts`.

    Args:
        model: a `BertEncoder` or a task model with one as `backbone`.
        tokenizer: the workdir's tokenizer (`encode_input` gives `[CLS] ... [SEP]`).
        texts: sequence of str.
        max_length: int or None. Tokens per text at most (with `[CLS]` and `[SEP]`);
            None for the model's `max_sequence_length`.

    Example:
    >>> from tfzoo.data.wordpiece_tokenizer import WordpieceTokenizer
    >>> from tfzoo.models.bert import BertEncoder
    >>> tokenizer = WordpieceTokenizer.from_bert_vocabulary(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hi"])
    >>> encoder = BertEncoder(vocabulary_size=5, num_layers=1, num_heads=2, hidden_dim=8,
    ...                       intermediate_dim=16, max_sequence_length=8)
    >>> embed_texts(encoder, tokenizer, ["hi", "hi hi"]).shape
    (2, 8)
    """
    encoder = _encoder(model)
    limit = int(encoder.max_sequence_length) if max_length is None else int(max_length)
    if limit < 2:
        raise ValueError(f"max_length must be >= 2 (room for [CLS] and [SEP]), got {limit}")
    limit = min(limit, int(encoder.max_sequence_length))
    if not hasattr(tokenizer, "encode_input"):
        raise ValueError(f"the {tokenizer.type_name} tokenizer has no [CLS]/[SEP] input form; embed needs WordPiece")
    rows = [tokenizer.encode_input(text, limit) for text in texts]
    width = max(len(row) for row in rows)
    token_ids = np.full((len(rows), width), tokenizer.pad_id, np.int32)
    mask = np.zeros((len(rows), width), bool)
    for index, row in enumerate(rows):
        token_ids[index, : len(row)], mask[index, : len(row)] = row, True
    vectors = encoder.sentence_embedding({"token_ids": token_ids, "padding_mask": mask})
    return np.asarray(vectors, np.float32)


def embed_exported(
    workdir: str, texts: Sequence[str], runtime: str, quantization: str = "none", max_length: int | None = None
) -> np.ndarray:
    """Unit-length sentence embeddings (N, C) float32 of `texts` from an export's `embed` signature.

    Args:
        workdir: str. A BERT workdir exported with `python -m export`.
        texts: sequence of str.
        runtime: str. "saved_model", "tflite" or "onnx".
        quantization: str. TFLite variant: "none", "fp16" or "int8". Defaults to "none".
        max_length: int or None. Tokens per text at most; None for the report's `max_length`.

    Raises:
        ValueError: no export, not an encoder export, a missing artefact, a bad `max_length` (one line).

    Example:
    >>> embed_exported("runs/minilm", ["A cat sits."], "onnx").shape  # doctest: +SKIP
    (1, 384)
    """
    from tfzoo.data.tokenizers import load_tokenizer  # noqa: PLC0415 (numpy only)
    from tfzoo.export_report import read_report  # noqa: PLC0415 (imported only when needed)
    from tfzoo.kinds import kind_named  # noqa: PLC0415 (imported only when needed)
    from tfzoo.runtimes import load_runtime  # noqa: PLC0415 (imported only when needed)

    info = read_report(workdir)["model"]
    kind = kind_named(info.get("kind", "decoder"))
    if kind.generative:
        raise ValueError(f"the export in {RunFolder(workdir).export_dir} is {kind.description}: it has no embed")
    limit = int(info["max_length"]) if max_length is None else int(max_length)
    if limit < 2:
        raise ValueError(f"max_length must be >= 2 (room for [CLS] and [SEP]), got {limit}")
    limit = min(limit, int(info["max_sequence_length"]))
    tokenizer = load_tokenizer(os.path.join(RunFolder(workdir).export_dir, info["tokenizer"]))
    model = load_runtime(workdir, runtime, quantization=quantization)
    inputs = kind.encode_texts(tokenizer, texts, limit)
    return np.asarray(model.embed(inputs["token_ids"], inputs["lengths"])["sentence_embedding"], np.float32)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the exit code (0, or 2 on bad input)."""
    parser = OneLineErrorParser(prog="python -m tfzoo.embed", description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", required=True, help="a BERT workdir (python -m tfzoo.convert bert)")
    parser.add_argument("--text", action="append", required=True, help="a text to embed; repeat for more")
    parser.add_argument(
        "--runtime", default="keras", choices=RUNTIMES, help="keras (model.keras), or the export's embed signature"
    )
    parser.add_argument(
        "--quantization", default="none", choices=QUANTIZATIONS, help="TFLite variant (--runtime=tflite)"
    )
    parser.add_argument(
        "--max_length", type=int, default=None, help="tokens per text at most (default: the workdir's embed_max_length)"
    )
    parser.add_argument("--cosine_only", action="store_true", help="two texts: print only their cosine similarity")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if args.quantization != "none" and args.runtime != "tflite":
        return print_error(f"--quantization={args.quantization} is a TFLite variant: use it with --runtime=tflite")
    if args.cosine_only and len(args.text) != 2:
        return print_error(f"--cosine_only needs exactly two --text, got {len(args.text)}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        folder = RunFolder(args.workdir)
        folder.check_exists()
        if args.runtime != "keras":
            vectors = embed_exported(args.workdir, args.text, args.runtime, args.quantization, args.max_length)
        else:
            tokenizer = folder.load_tokenizer()
            folder.model_config()  # a missing or foreign model.keras is one line before TensorFlow loads
            max_length = args.max_length
            if max_length is None and os.path.isfile(folder.config_path):
                max_length = folder.read_config().get("embed_max_length")
            vectors = embed_texts(folder.load_model(), tokenizer, args.text, max_length)
    except ValueError as error:
        return print_error(str(error).splitlines()[0] if str(error) else type(error).__name__)
    cosine = float(np.dot(vectors[0], vectors[1])) if len(args.text) == 2 else None
    if args.cosine_only:
        print(json.dumps(cosine))
        return 0
    result = {"dim": int(vectors.shape[1]), "embeddings": vectors.tolist()}
    if cosine is not None:
        result["cosine"] = cosine
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
