"""Generation speed of one GPT in every runtime, and int8 size and bandwidth at the GPT-2-small shape.

Model "small" (vocabulary 256, 4 layers, 4 heads, hidden 128, intermediate
512, random weights), exported with `max_length` 128 as `python -m export`
does (the SavedModel's loops compiled with XLA): per runtime (Keras with XLA,
SavedModel, TFLite fp32, TFLite int8, ONNX Runtime)

- `decode_ms_per_token`: median wall time of one `decode` call (batch 1, a
  fed-back KV cache, numpy in and out) over the new tokens after a 32-token
  `prefill`;
- `generate_tokens_per_sec`: new tokens per second of the in-graph `generate`
  (greedy, batch 1, prompt 32, 64 new tokens, no EOS; best of `--repeats`).

Model "gpt2_small" (vocabulary 50257, 12 layers, 12 heads, hidden 768,
intermediate 3072, random weights; `max_length` 128): the TFLite fp32 and
int8 file sizes, their ratio, and the per-token `decode` latency of each, with
the weight bandwidth it implies (file bytes / latency: every weight is read
once per token). Every runtime uses `--threads` threads where it has a knob.
Prints one JSON line.

    python bench/runtime_latency.py [--models small,gpt2_small] [--repeats 3] [--threads 2]
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

import keras
import numpy as np
import tensorflow as tf
from timing import machine  # bench/timing.py (a script's own folder is on sys.path)

from export.export_module import ExportModule
from export.onnx_export import convert_onnx, onnx_filename
from export.tflite_export import convert_tflite, tflite_filename
from tfzoo.models.gpt import GPT
from tfzoo.runtimes import KerasRuntime, OnnxRuntime, SavedModelRuntime, TFLiteRuntime

MODELS = {
    "small": dict(vocabulary_size=256, num_layers=4, num_heads=4, hidden_dim=128, intermediate_dim=512),
    "gpt2_small": dict(vocabulary_size=50257, num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072),
}
MAX_LENGTH = 128
PROMPT_LENGTH = 32
NEW_TOKENS = 64


def _info(model, strategies) -> dict:
    return {
        "max_length": MAX_LENGTH,
        "strategy": strategies[0] if strategies else "greedy",
        "beam_size": 4,
        "strategies": {s: "generate" if i == 0 else f"generate_{s}" for i, s in enumerate(strategies)},
        "eos_ids": [],
        "banned_ids": [],
        "pad_id": 0,
        "num_layers": model.num_layers,
        "num_heads": model.num_heads,
        "head_dim": model.hidden_dim // model.num_heads,
        "vocabulary_size": model.vocabulary_size,
    }


def _decode_ms(runtime, prompt: np.ndarray) -> float:
    """Median ms of one `decode` step after a prefill of `prompt` (1, P)."""
    positions = np.arange(prompt.shape[1], dtype=np.int32)[None]
    logits, cache = runtime.prefill(prompt, positions, runtime.init_cache(1))
    token = np.argmax(logits[:, -1], axis=-1).astype(np.int32)[:, None]
    times = []
    for step in range(NEW_TOKENS):
        position = np.array([[prompt.shape[1] + step]], np.int32)
        start = time.perf_counter()
        logits, cache = runtime.decode(token, position, cache)
        times.append(time.perf_counter() - start)
        token = np.argmax(logits[:, -1], axis=-1).astype(np.int32)[:, None]
    return float(np.median(times[2:]) * 1000)  # the first calls allocate / compile


def _generate_tokens_per_sec(runtime, prompt: np.ndarray, repeats: int) -> float:
    lengths = np.array([prompt.shape[1]], np.int32)
    runtime.generate(prompt, lengths, NEW_TOKENS, strategy="greedy")  # warm-up (XLA compiles here)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        _, sequence_lengths, _ = runtime.generate(prompt, lengths, NEW_TOKENS, strategy="greedy")
        best = min(best, time.perf_counter() - start)
    assert int(sequence_lengths[0]) == prompt.shape[1] + NEW_TOKENS
    return NEW_TOKENS / best


def _build(shape: dict, seed: int = 0) -> GPT:
    keras.utils.set_random_seed(seed)
    model = GPT(max_sequence_length=MAX_LENGTH, **shape)
    model.build((None, None))
    return model


def _bench_small(workdir: str, repeats: int, threads: int) -> dict:
    model = _build(MODELS["small"])
    strategies = ("greedy",)
    info = _info(model, strategies)
    module = ExportModule(model, max_length=MAX_LENGTH, strategy="greedy", strategies=strategies, jit_compile=True)
    saved = os.path.join(workdir, "small_saved_model")
    tf.saved_model.save(
        module,
        saved,
        signatures=module.signatures(),
        options=tf.saved_model.SaveOptions(experimental_custom_gradients=False),
    )
    sizes = {"saved_model": sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(saved) for f in fs)}
    runtimes = {"keras_xla": KerasRuntime(model, info, jit_compile=True), "saved_model": SavedModelRuntime(saved, info)}
    for quantization in ("none", "int8"):
        path = os.path.join(workdir, tflite_filename("small", quantization))
        with open(path, "wb") as file:
            file.write(convert_tflite(saved, ["generate", "prefill", "decode"], quantization))
        key = "tflite_fp32" if quantization == "none" else "tflite_int8"
        sizes[key] = os.path.getsize(path)
        runtimes[key] = TFLiteRuntime(path, info, num_threads=threads)
    files = {}
    for signature in ("generate", "prefill", "decode"):
        files[signature] = os.path.join(workdir, onnx_filename("small", signature))
        with open(files[signature], "wb") as file:
            file.write(convert_onnx(module.portable_function(signature), name=signature).SerializeToString())
    sizes["onnx"] = sum(os.path.getsize(p) for p in files.values())
    runtimes["onnxruntime"] = OnnxRuntime(files, info, num_threads=threads)

    prompt = np.random.default_rng(0).integers(2, 256, size=(1, PROMPT_LENGTH)).astype(np.int32)
    results = {}
    for key, runtime in runtimes.items():
        results[key] = {
            "decode_ms_per_token": round(_decode_ms(runtime, prompt), 3),
            "generate_tokens_per_sec": round(_generate_tokens_per_sec(runtime, prompt, repeats), 1),
        }
    return {"shape": MODELS["small"], "sizes_bytes": sizes, "runtimes": results}


def _bench_gpt2_small(workdir: str, threads: int) -> dict:
    model = _build(MODELS["gpt2_small"])
    info = _info(model, ())
    module = ExportModule(model, max_length=MAX_LENGTH, strategies=())  # prefill and decode only
    saved = os.path.join(workdir, "gpt2_saved_model")
    tf.saved_model.save(
        module,
        saved,
        signatures=module.signatures(),
        options=tf.saved_model.SaveOptions(experimental_custom_gradients=False),
    )
    num_parameters = int(sum(np.prod(v.shape) for v in model.weights))
    del module, model
    prompt = np.random.default_rng(0).integers(2, 50257, size=(1, PROMPT_LENGTH)).astype(np.int32)
    results = {}
    for quantization in ("none", "int8"):
        start = time.perf_counter()
        flatbuffer = convert_tflite(saved, ["prefill", "decode"], quantization)
        seconds = time.perf_counter() - start
        path = os.path.join(workdir, tflite_filename("gpt2_small", quantization))
        with open(path, "wb") as file:
            file.write(flatbuffer)
        del flatbuffer
        runtime = TFLiteRuntime(path, info, num_threads=threads)
        latency = _decode_ms(runtime, prompt)
        size = os.path.getsize(path)
        results["tflite_fp32" if quantization == "none" else "tflite_int8"] = {
            "size_bytes": size,
            "convert_seconds": round(seconds, 1),
            "decode_ms_per_token": round(latency, 2),
            "weight_bandwidth_gb_per_s": round(size / (latency / 1000) / 1e9, 2),
        }
        del runtime
    fraction = results["tflite_int8"]["size_bytes"] / results["tflite_fp32"]["size_bytes"]
    return {
        "shape": MODELS["gpt2_small"],
        "num_parameters": num_parameters,
        "int8_size_fraction": round(fraction, 4),
        "int8_at_most_30_percent": fraction <= 0.30,
        "runtimes": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="small,gpt2_small", help="Comma list of small, gpt2_small.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed generate calls; the best counts.")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="TFLite / ONNX Runtime threads.")
    args = parser.parse_args()
    models = [m for m in args.models.split(",") if m]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}; choose from {', '.join(MODELS)}")
    workdir = tempfile.mkdtemp(prefix="tfzoo_runtime_latency_")
    result = {
        "bench": "runtime_latency",
        "machine": machine("tensorflow", "keras", "ai-edge-litert", "onnxruntime"),
        "threads": args.threads,
        "max_length": MAX_LENGTH,
        "prompt_length": PROMPT_LENGTH,
        "new_tokens": NEW_TOKENS,
        "batch_size": 1,
    }
    try:
        if "small" in models:
            result["small"] = _bench_small(workdir, args.repeats, args.threads)
        if "gpt2_small" in models:
            result["gpt2_small"] = _bench_gpt2_small(workdir, args.threads)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
