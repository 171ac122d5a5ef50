"""T5 at full size through the zoo: convert, export, file sizes, and the TFLite `encode` latency, beside transformers.

Builds a t5-small-shaped Hugging Face folder with random weights
(`T5ForConditionalGeneration(T5Config())`: 6 + 6 layers, d_model 512, 8 heads, d_ff 2048, relative
position buckets, tied embeddings, 32128 embedding rows; no download) and a small `spiece.model`
trained here with `sentencepiece` (the converter accepts a tokenizer with fewer ids than the
embedding has rows, as T5's own 32100 for 32128), then

- `convert_s`: `python -m tfzoo.convert t5` (`convert_t5`) wall time;
- `export_s`: `python -m export` (`export_workdir`: SavedModel, TFLite fp32/fp16/int8, ONNX, greedy,
  each measured for parity) wall time, and the export's own `timings`;
- `sizes_bytes` per artefact and `int8_size_ratio` (TFLite int8 / fp32);
- `encode_ms` (and `encode_min_ms`): median (fastest) wall time of one `encode` call on one 32-token
  source (batch 1, `--threads` threads) for TFLite fp32, fp16, int8 and ONNX Runtime, and the peer
  in the same run: transformers' T5 encoder (torch, CPU, `torch.no_grad`, same threads) on the same
  ids; timed in turn, 3 rounds of `--repeats` / 3 calls each after 2 untimed ones;
- `generate_ms`: the same for greedy `generate` of `--new_tokens` tokens (TFLite fp32 and int8, and
  transformers' `generate` with `num_beams=1`), with the tokens each made (tfzoo bans `<pad>` and `<unk>`,
  transformers does not, so they may differ; the export's parity compares the runtimes with Keras).

Prints one JSON object. Runs are noisy on a shared machine: compare within one run.

    python bench/t5_export.py [--repeats 15] [--threads 2] [--new_tokens 16] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import sentencepiece
import torch
from timing import machine, timed_ms  # bench/timing.py (a script's own folder is on sys.path)
from transformers import T5Config, T5ForConditionalGeneration, T5Tokenizer

from export.pipeline import export_workdir
from tfzoo.convert_t5 import convert_t5
from tfzoo.export_report import read_report
from tfzoo.run_folder import RunFolder
from tfzoo.runtimes import load_runtime

SOURCE_TOKENS = 32
WORDS = "the a house dog cat is was good small big red blue runs sleeps over under translate summarize".split()


def _spiece(folder: str, pieces: int = 400) -> None:
    """A unigram `spiece.model` with T5's first ids (`<pad>` 0, `</s>` 1, `<unk>` 2) and its tokenizer files."""
    rng = np.random.default_rng(0)
    corpus = [" ".join(rng.choice(WORDS, 12)) + f" {i} {i * 7919 % 1000}" for i in range(2000)]
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_writer=model,
        vocab_size=pieces,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        hard_vocab_limit=False,
        num_threads=1,
        minloglevel=2,
    )
    with open(os.path.join(folder, "spiece.model"), "wb") as file:
        file.write(model.getvalue())
    T5Tokenizer.from_pretrained(folder).save_pretrained(folder)


def _checkpoint(folder: str) -> T5ForConditionalGeneration:
    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(dropout_rate=0.0, decoder_start_token_id=0)).eval()  # t5-small
    model.save_pretrained(folder, safe_serialization=True)
    _spiece(folder)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--new_tokens", type=int, default=16)
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    scratch = args.workdir or tempfile.mkdtemp(prefix="t5_export_")
    os.makedirs(scratch, exist_ok=True)
    try:
        result = _run(os.path.join(scratch, "hf_t5_small"), os.path.join(scratch, "t5_small"), args)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(result))


def _run(source: str, workdir: str, args) -> dict:
    peer = _checkpoint(source)
    start = time.time()
    summary = convert_t5(source, workdir, overwrite=True, max_sequence_length=64)
    convert_s = round(time.time() - start, 1)
    start = time.time()
    export_workdir(workdir, strategy="greedy", log=lambda line: None)
    export_s = round(time.time() - start, 1)
    report = read_report(workdir)
    artefacts = report["artefacts"]
    sizes = {key: artefact["size_bytes"] for key, artefact in artefacts.items()}
    sizes["model.keras"] = os.path.getsize(RunFolder(workdir).model_path)

    rng = np.random.default_rng(0)
    ids = np.concatenate([rng.integers(3, 400, SOURCE_TOKENS - 1), [1]]).astype(np.int32)[None, :]
    lengths = np.asarray([SOURCE_TOKENS], np.int32)
    torch.set_num_threads(args.threads)
    torch_ids = torch.tensor(ids, dtype=torch.long)

    def torch_encode():
        with torch.no_grad():
            return peer.encoder(input_ids=torch_ids).last_hidden_state

    def torch_generate():
        with torch.no_grad():
            out = peer.generate(torch_ids, num_beams=1, do_sample=False, max_new_tokens=args.new_tokens)
        return out[0, 1:].tolist()

    encoders, generators = {}, {}
    for name, runtime, quantization in (
        ("tflite_fp32", "tflite", "none"),
        ("tflite_fp16", "tflite", "fp16"),
        ("tflite_int8", "tflite", "int8"),
        ("onnx", "onnx", "none"),
    ):
        model = load_runtime(workdir, runtime, quantization=quantization, num_threads=args.threads)
        encoders[name] = lambda model=model: model.encode(source_ids=ids, source_lengths=lengths)
        if name in ("tflite_fp32", "tflite_int8"):
            generators[name] = lambda model=model: model.generate(
                max_new_tokens=args.new_tokens, source_ids=ids, source_lengths=lengths
            )
    encoders["transformers_torch"] = torch_encode
    generators["transformers_torch"] = torch_generate
    encode_ms, encode_min_ms = timed_ms(encoders, args.repeats)
    generate_ms, generate_min_ms = timed_ms(generators, max(args.repeats // 3, 3))
    tokens = {"transformers_torch": torch_generate()}
    for name in ("tflite_fp32", "tflite_int8"):
        sequences, sequence_lengths, _ = generators[name]()
        tokens[name] = sequences[0, 1 : int(sequence_lengths[0])].tolist()  # after the start token
    return {
        "bench": "t5_export",
        "shape": "t5-small (T5Config()): 6+6 layers, d_model 512, 8 heads of 64, d_ff 2048, 32128 rows",
        "num_parameters": summary["num_parameters"],
        "source_tokens": SOURCE_TOKENS,
        "new_tokens": args.new_tokens,
        "threads": args.threads,
        "repeats": args.repeats,
        "convert_s": convert_s,
        "export_s": export_s,
        "export_timings_s": report["timings"],
        "export_passed": report["passed"],
        "sizes_bytes": sizes,
        "int8_size_ratio": round(sizes["tflite_int8"] / sizes["tflite"], 3),
        "encode_ms": encode_ms,
        "encode_min_ms": encode_min_ms,
        "generate_ms": generate_ms,
        "generate_min_ms": generate_min_ms,
        "tokens": tokens,
        "machine": machine("tensorflow", "ai-edge-litert", "onnxruntime", "torch", "transformers"),
    }


if __name__ == "__main__":
    main()
