"""BERT at full size through the zoo: convert, export, and the TFLite `embed` latency, beside transformers.

Builds a BERT-base-shaped Hugging Face folder with random weights
(`BertModel(BertConfig())`: 12 layers, hidden 768, 12 heads, intermediate
3072, 512 positions, 30522 tokens, the pooler; no download) and a
30522-token `vocab.txt` with BERT's special ids, then

- `convert_s`: `python -m tfzoo.convert bert` (`convert_bert`) wall time;
- `export_s`: `python -m export` (`export_workdir`: SavedModel, TFLite fp32/fp16/int8,
  ONNX, each measured for parity) wall time, and the export's own `timings`;
- `sizes_bytes` per artefact and `int8_size_ratio` (TFLite int8 / fp32);
- `latency_ms` (and `latency_min_ms`): median (fastest) wall time of one `embed` call on one 32-token sentence
  (`[CLS]` + 30 random ids + `[SEP]`, batch 1, numpy in and out, `--threads`
  threads) for TFLite fp32, fp16, int8 and ONNX Runtime, and the peer in the same
  run: transformers' `BertModel` (torch, CPU, `torch.no_grad`, same threads) on the
  same ids, plus the mean pooling and normalisation, as sentence-transformers does; the
  systems are timed in turn, in 3 rounds of `--repeats` / 3 calls each after 2 untimed ones;
- `cosine_to_transformers`: each runtime's sentence embedding against the peer's.

Prints one JSON object. Runs are noisy on a shared machine: compare within one run.

    python bench/bert_embed.py [--repeats 30] [--threads 2] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import torch
from timing import machine, timed_ms  # bench/timing.py (a script's own folder is on sys.path)
from transformers import BertConfig, BertModel

from export.pipeline import export_workdir
from tfzoo.convert_bert import convert_bert
from tfzoo.export_report import read_report
from tfzoo.run_folder import RunFolder
from tfzoo.runtimes import load_runtime

SEQUENCE = 32
SPECIALS = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # BERT's ids 0-103


def _vocabulary(size: int) -> list[str]:
    """BERT's special ids, letters and their `##` pieces, then made-up words: `size` distinct tokens."""
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-")
    tokens = SPECIALS + letters + ["##" + c for c in letters]
    tokens += [f"w{i}" for i in range(size - len(tokens))]
    return tokens


def _checkpoint(folder: str) -> None:
    torch.manual_seed(0)
    config = BertConfig()  # BERT-base
    BertModel(config).eval().save_pretrained(folder, safe_serialization=True)
    with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as file:
        file.write("\n".join(_vocabulary(config.vocab_size)) + "\n")


def _cosine(a, b) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    scratch = args.workdir or tempfile.mkdtemp(prefix="bert_embed_")
    os.makedirs(scratch, exist_ok=True)
    source, workdir = os.path.join(scratch, "hf_bert_base"), os.path.join(scratch, "bert_base")
    try:
        result = _run(source, workdir, args)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(result))


def _run(source: str, workdir: str, args) -> dict:
    _checkpoint(source)
    start = time.time()
    summary = convert_bert(source, workdir, overwrite=True)
    convert_s = round(time.time() - start, 1)
    start = time.time()
    report = export_workdir(workdir, log=lambda line: None)
    export_s = round(time.time() - start, 1)
    report = read_report(workdir)
    artefacts = report["artefacts"]
    sizes = {key: artefact["size_bytes"] for key, artefact in artefacts.items()}
    sizes["model.keras"] = os.path.getsize(RunFolder(workdir).model_path)

    rng = np.random.default_rng(0)
    ids = np.concatenate([[101], rng.integers(1000, 30522, SEQUENCE - 2), [102]]).astype(np.int32)[None, :]
    lengths = np.asarray([SEQUENCE], np.int32)
    systems = {}
    for name, runtime, quantization in (
        ("tflite_fp32", "tflite", "none"),
        ("tflite_fp16", "tflite", "fp16"),
        ("tflite_int8", "tflite", "int8"),
        ("onnx", "onnx", "none"),
    ):
        model = load_runtime(workdir, runtime, quantization=quantization, num_threads=args.threads)
        systems[name] = lambda model=model: model.embed(ids, lengths)["sentence_embedding"]

    torch.set_num_threads(args.threads)
    peer = BertModel.from_pretrained(source).eval()
    input_ids, mask = torch.tensor(ids, dtype=torch.long), torch.ones(ids.shape, dtype=torch.long)

    def transformers_embed():
        with torch.no_grad():
            hidden = peer(input_ids=input_ids, attention_mask=mask).last_hidden_state  # (1, T, C)
            mean = (hidden * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True)
            return torch.nn.functional.normalize(mean, dim=-1).numpy()

    systems["transformers_torch"] = transformers_embed
    latency, fastest = timed_ms(systems, args.repeats)
    reference = transformers_embed()
    embeddings = {name: call() for name, call in systems.items() if name != "transformers_torch"}
    return {
        "bench": "bert_embed",
        "shape": "BERT-base (BertConfig()): 12 layers, hidden 768, 12 heads, intermediate 3072, vocabulary 30522",
        "num_parameters": summary["num_parameters"],
        "sequence_tokens": SEQUENCE,
        "threads": args.threads,
        "repeats": args.repeats,
        "convert_s": convert_s,
        "export_s": export_s,
        "export_timings_s": report["timings"],
        "export_passed": report["passed"],
        "sizes_bytes": sizes,
        "int8_size_ratio": round(sizes["tflite_int8"] / sizes["tflite"], 3),
        "latency_ms": latency,
        "latency_min_ms": fastest,
        "tflite_fp32_vs_transformers_speed": round(latency["transformers_torch"] / latency["tflite_fp32"], 2),
        "cosine_to_transformers": {name: round(_cosine(v, reference), 7) for name, v in embeddings.items()},
        "parity": {key: artefact["parity"] for key, artefact in artefacts.items()},
        "machine": machine("tensorflow", "ai-edge-litert", "onnxruntime", "torch", "transformers"),
    }


if __name__ == "__main__":
    main()
