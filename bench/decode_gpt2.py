"""Decode speed of tfzoo's exported generation against peers at the GPT-2-small shape; prints one JSON line.

What: batch 1, a prompt of `--prompt_length` (32) seeded random token ids, `--new_tokens` (128) greedy
(or 4-beam) new tokens with no end-of-text stop, `--threads` (2) threads, on a random GPT-2 (12 layers,
hidden 768, 12 heads, vocabulary 50257, n_positions 1024; `--tiny`: 2 layers, hidden 64, vocabulary 300,
context 192). Per system: `prefill_tok_s`, `decode_tok_s`, `peak_rss_mb` (the child process's `VmHWM`),
`file_mb` (the artefacts it loads), `tokens_agree` (its tokens equal its reference's: `hf_greedy` for greedy
systems, `hf_beam4` for beam ones) and `pct_of_bound` (decode tok/s x `step_bytes`, the weight bytes one
decode step reads, / `bandwidth_gb_s`, the read bandwidth this script measures with numpy sums over a
1 GiB float32 array on `--threads` threads, before and after the systems, the better reading; a loaded
machine can put a system above 100%).

How (all local, nothing downloaded):

1. A random Hugging Face `GPT2LMHeadModel` (`torch.manual_seed`; HF's 0.02 initialization with the MLP
   weights scaled by 4 so that greedy continuations do not echo one token; the end-of-text row of the
   tied embedding zeroed so that no decoder ever picks it) saved as safetensors, with a byte-level BPE
   of exactly `vocabulary` tokens: the 256 byte symbols, synthetic merges of pairs of byte symbols, and
   `<|endoftext|>` last.
2. `python -m tfzoo.convert gpt2` to a workdir, then `python -m export --formats=tflite,onnx
   --quantization=none,int8,int4 --strategy=greedy --max_length=CONTEXT` (its wall time and peak RSS go into
   the JSON's `export`; a cache built before int4 existed gets its int4 file from `--formats=tflite
   --quantization=int4` into a sibling workdir, `int4_export` in the JSON). Each bundle a system needs
   (`genai`, `litertlm`) is exported on its own, `--formats=<bundle>`, into a sibling workdir that links
   the same model (`bundles` in the JSON).
   Every build process is killed past `--max_build_gb` of RSS.
3. For llama.cpp, a GGUF written with llama.cpp's `gguf` library (architecture `gpt2`, llama.cpp's tensor
   names, HF's [in, out] Conv1D weights transposed, the BPE as `tokenizer.ggml.*`), and its q8_0 copy made
   with `llama_cpp.llama_model_quantize`. Driven through `Llama.eval` with `n_batch=512`; when that child
   dies of SIGSEGV (this build's AMX q8_0 matmul for batches > 1 does on this machine's CPU) the system is
   rerun with `n_batch=1` and its entry says so.
4. Every system runs in a fresh child process per round (`--repeats` rounds, the systems interleaved in
   each): a warm-up call, then one timed run. In-graph loops (HF `generate`, tfzoo `Generator`, the
   exported `generate` signatures) are timed with 1 and with N new tokens: prefill = prompt / t1,
   decode = (N - 1) / (tN - t1); `ort_genai` (ONNX Runtime GenAI's own loop over the export's `genai/`
   decoder graph) is timed the same way. `litertlm_*` are LiteRT-LM's own benchmark (`litert_lm.Benchmark`:
   the prompt's length of prefill, N decode tokens) of the export's `.litertlm` bundles; that engine takes
   text, so their tokens are the export's parity at this size, not compared here. Streamed loops (TFLite
   and ONNX `prefill` + `decode`, llama.cpp `eval`) time the prefill and the N - 1 decode steps directly.
   `tflite_*_builtin` run the same `.tflite` files on `ai_edge_litert`'s builtin kernels (tfzoo's
   `kernels="builtin"`: no XNNPACK delegate, so no packed copy of the weights per subgraph).
   Medians over the rounds; peak RSS is the largest.

Everything built is cached under `--cache_dir` keyed by the shape, the context and the seed.

    python bench/decode_gpt2.py [--context 1024] [--threads 2] [--repeats 3] [--systems a,b,...]
        [--new_tokens 128] [--prompt_length 32] [--tiny] [--cache_dir /tmp/tfzoo_decode_bench]
        [--max_build_gb 16]

The llama.cpp systems need the `bench` extra (`pip install -e .[bench]`); without it they are skipped.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from timing import machine  # bench/timing.py (a script's own folder is on sys.path)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # `python bench/decode_gpt2.py` from a checkout: tfzoo and export import from it
    sys.path.insert(0, REPO)
BUILD_VERSION = 4  # bump when the checkpoint recipe or the export changes (a new cache key)
SEED = 0
SHAPES: dict[str, dict[str, int]] = {
    "gpt2_small": {"n_layer": 12, "n_embd": 768, "n_head": 12, "vocab": 50257, "n_positions": 1024, "context": 1024},
    "tiny": {"n_layer": 2, "n_embd": 64, "n_head": 2, "vocab": 300, "n_positions": 192, "context": 192},
}
MLP_SCALE = 4.0  # HF init with the MLP scaled: without it a random GPT-2 mostly repeats its last token
SYSTEMS = (
    "llama_cpp_f32",
    "llama_cpp_q8_0",
    "hf_greedy",
    "hf_beam4",
    "tfzoo_keras_greedy",
    "tfzoo_keras_beam4",
    "tfzoo_keras_xla_greedy",
    "tfzoo_keras_xla_beam4",
    "tflite_fp32_streamed",
    "tflite_int8_streamed",
    "tflite_fp32_generate",
    "tflite_int8_generate",
    "tflite_fp32_streamed_builtin",
    "tflite_int8_streamed_builtin",
    "tflite_fp32_generate_builtin",
    "tflite_int8_generate_builtin",
    "tflite_int4_streamed",
    "tflite_int4_generate",
    "onnx_generate",
    "onnx_steps",
    "ort_genai",
    "litertlm_fp32",
    "litertlm_int8",
)
BUNDLE_OF = {"ort_genai": "genai", "litertlm_fp32": "litertlm", "litertlm_int8": "litertlm"}  # system -> its bundle
# system -> its token reference; every other system: hf_greedy
REFERENCES = {"hf_beam4": "hf_beam4", "tfzoo_keras_beam4": "hf_beam4", "tfzoo_keras_xla_beam4": "hf_beam4"}
RESULT_MARK = "BENCH_RESULT "
INSTALL_HINT = "pip install -e .[bench]"
CHILD_TIMEOUT = 3600
LLAMA_N_BATCH = 512


# ---------------------------------------------------------------------------------------------------------
# The checkpoint, the workdir, the export and the GGUF files (built once per cache key)
# ---------------------------------------------------------------------------------------------------------


def bpe_vocabulary(vocab: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Tokens (256 byte symbols, the merges' results, `<|endoftext|>`) and merges, `vocab` tokens in all."""
    from tfzoo.data.bpe_tokenizer import bytes_to_unicode  # noqa: PLC0415 (numpy only, and only when building)

    byte_encoder = bytes_to_unicode()
    symbols = [byte_encoder[b] for b in sorted(byte_encoder)]
    count = vocab - len(symbols) - 1
    if not 0 <= count <= len(symbols) ** 2:
        raise ValueError(f"a vocabulary of {vocab} cannot be 256 bytes + pairs + <|endoftext|>")
    merges = [(a, b) for a in symbols for b in symbols][:count]
    return symbols + [a + b for a, b in merges] + ["<|endoftext|>"], merges


def build_checkpoint(directory: str, shape: dict[str, int]) -> None:
    """Saves the random HF GPT-2 and its BPE files into `directory` (atomically: a temporary folder first)."""
    import torch  # noqa: PLC0415 (only when the checkpoint is built)
    from transformers import GPT2Config, GPT2LMHeadModel  # noqa: PLC0415 (only when the checkpoint is built)

    eos = shape["vocab"] - 1
    torch.manual_seed(SEED)
    config = GPT2Config(
        vocab_size=shape["vocab"],
        n_positions=shape["n_positions"],
        n_embd=shape["n_embd"],
        n_layer=shape["n_layer"],
        n_head=shape["n_head"],
        bos_token_id=eos,
        eos_token_id=eos,
    )
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".mlp." in name and name.endswith(".weight"):
                parameter.mul_(MLP_SCALE)
        model.transformer.wte.weight[eos] = 0.0  # logit 0 for end-of-text: never the argmax
    staging = directory + ".tmp"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging, safe_serialization=True)
    tokens, merges = bpe_vocabulary(shape["vocab"])
    with open(os.path.join(staging, "vocab.json"), "w", encoding="utf-8") as file:
        json.dump({token: i for i, token in enumerate(tokens)}, file, ensure_ascii=False)
    with open(os.path.join(staging, "merges.txt"), "w", encoding="utf-8") as file:
        file.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    os.replace(staging, directory)


def hf_weights(hf_dir: str) -> dict[str, np.ndarray]:
    """The checkpoint's tensors by name, without the `transformer.` prefix."""
    from safetensors.numpy import load_file  # noqa: PLC0415 (only when the weights are read)

    tensors = load_file(os.path.join(hf_dir, "model.safetensors"))
    return {name.removeprefix("transformer."): value for name, value in tensors.items()}


def write_gguf(hf_dir: str, path: str, shape: dict[str, int]) -> None:
    """A float32 GGUF of the checkpoint for llama.cpp's `gpt2` architecture, with its BPE vocabulary."""
    import gguf  # noqa: PLC0415 (an optional peer: the bench extra)

    weights = hf_weights(hf_dir)
    tokens, merges = bpe_vocabulary(shape["vocab"])
    eos = shape["vocab"] - 1
    writer = gguf.GGUFWriter(path + ".tmp", "gpt2")
    writer.add_name("tfzoo random gpt2")
    writer.add_context_length(shape["n_positions"])
    writer.add_embedding_length(shape["n_embd"])
    writer.add_feed_forward_length(4 * shape["n_embd"])
    writer.add_block_count(shape["n_layer"])
    writer.add_head_count(shape["n_head"])
    writer.add_layer_norm_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types([int(gguf.TokenType.NORMAL)] * (len(tokens) - 1) + [int(gguf.TokenType.CONTROL)])
    writer.add_token_merges([f"{a} {b}" for a, b in merges])
    writer.add_bos_token_id(eos)
    writer.add_eos_token_id(eos)

    def add(name: str, value: np.ndarray, transpose: bool = False) -> None:
        value = np.ascontiguousarray(value.T if transpose else value, dtype=np.float32)
        writer.add_tensor(name, value)

    add("token_embd.weight", weights["wte.weight"])  # llama.cpp reuses it as the output (tied, as in GPT-2)
    add("position_embd.weight", weights["wpe.weight"])
    for i in range(shape["n_layer"]):
        h, b = f"h.{i}.", f"blk.{i}."
        add(b + "attn_norm.weight", weights[h + "ln_1.weight"])
        add(b + "attn_norm.bias", weights[h + "ln_1.bias"])
        add(b + "attn_qkv.weight", weights[h + "attn.c_attn.weight"], transpose=True)  # Conv1D: [in, out]
        add(b + "attn_qkv.bias", weights[h + "attn.c_attn.bias"])
        add(b + "attn_output.weight", weights[h + "attn.c_proj.weight"], transpose=True)
        add(b + "attn_output.bias", weights[h + "attn.c_proj.bias"])
        add(b + "ffn_norm.weight", weights[h + "ln_2.weight"])
        add(b + "ffn_norm.bias", weights[h + "ln_2.bias"])
        add(b + "ffn_up.weight", weights[h + "mlp.c_fc.weight"], transpose=True)
        add(b + "ffn_up.bias", weights[h + "mlp.c_fc.bias"])
        add(b + "ffn_down.weight", weights[h + "mlp.c_proj.weight"], transpose=True)
        add(b + "ffn_down.bias", weights[h + "mlp.c_proj.bias"])
    add("output_norm.weight", weights["ln_f.weight"])
    add("output_norm.bias", weights["ln_f.bias"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(path + ".tmp", path)


def quantize_gguf(source: str, path: str, threads: int) -> None:
    """`llama_model_quantize` to q8_0 (llama.cpp's own quantizer, through llama-cpp-python's low-level API)."""
    import ctypes  # noqa: PLC0415 (only with llama.cpp)

    import llama_cpp  # noqa: PLC0415 (an optional peer: the bench extra)

    params = llama_cpp.llama_model_quantize_default_params()
    params.nthread = threads
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
    code = llama_cpp.llama_model_quantize(source.encode(), (path + ".tmp").encode(), ctypes.byref(params))
    if code != 0:
        raise RuntimeError(f"llama_model_quantize returned {code}")
    os.replace(path + ".tmp", path)


def _child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("KERAS_BACKEND", "tensorflow")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["CUDA_VISIBLE_DEVICES"] = ""
    env["OMP_NUM_THREADS"] = str(threads)
    return env


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def _rss_gb(pid: int) -> float:
    """Resident memory of a running process (`VmRSS`), in GB; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as file:
            for line in file:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    return 0.0


def _run_logged(command: list[str], log_path: str, threads: int, max_gb: float) -> dict[str, Any]:
    """Runs `command`, output appended to `log_path`, killed if its RSS passes `max_gb`.

    Returns `code`, `line` (its last output line, or why it was killed), `peak_gb` and `seconds`.
    """
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        offset = log.tell()
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=_child_env(threads))
        peak, killed = 0.0, False
        while process.poll() is None:
            peak = max(peak, _rss_gb(process.pid))
            if peak > max_gb:
                process.kill()  # the process this function started, by its handle
                killed = True
            time.sleep(0.25)
        process.wait()
    with open(log_path, encoding="utf-8", errors="replace") as log:
        log.seek(offset)
        line = _last_line(log.read())
    if killed:
        line = f"killed by the bench at {peak:.1f} GB RSS (--max_build_gb={max_gb:g})"
    elif process.returncode == -9:
        line = f"killed (SIGKILL, the kernel's OOM killer?) at {peak:.1f} GB RSS; last output: {line}"
    seconds = round(time.perf_counter() - started, 1)
    return {"code": process.returncode, "line": line, "peak_gb": round(peak, 1), "seconds": seconds}


def _artefacts_from_report(export_dir: str) -> dict[str, Any]:
    with open(os.path.join(export_dir, "report.json"), encoding="utf-8") as file:
        report = json.load(file)
    artefacts = report["artefacts"]
    found = {"model": report["model"]}
    for key, name in (("tflite_fp32", "tflite"), ("tflite_int8", "tflite_int8"), ("tflite_int4", "tflite_int4")):
        if name in artefacts:
            found[key] = os.path.join(export_dir, artefacts[name]["path"])
    if "onnx" in artefacts:
        found["onnx"] = {key: os.path.join(export_dir, e["path"]) for key, e in artefacts["onnx"]["files"].items()}
        found["onnx_weights"] = os.path.join(export_dir, artefacts["onnx"]["weights"]["path"])
    return found


def prepare_int4(root: str, context: int, threads: int, max_gb: float) -> dict[str, Any]:
    """The int4 TFLite file for a cache whose export predates int4: exported on its own into `workdir_int4/`."""
    marker = os.path.join(root, "int4.json")
    if not os.path.isfile(marker):
        source, workdir = os.path.join(root, "workdir"), os.path.join(root, "workdir_int4")
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(workdir)
        for name in ("config.json", "model.keras", "tokenizer"):  # the same model; its own export/ folder
            os.symlink(os.path.join(source, name), os.path.join(workdir, name))
        command = [sys.executable, "-m", "export", f"--workdir={workdir}", "--formats=tflite", "--quantization=int4"]
        command += ["--strategy=greedy", f"--max_length={context}"]
        built: dict[str, Any] = {"command": "python " + " ".join(command[1:])}
        run = _run_logged(command, os.path.join(root, "build.log"), threads, max_gb)
        built.update(seconds=run["seconds"], peak_rss_gb=run["peak_gb"])
        for folder, cli in (("export", "ok"), ("export.failed", f"parity failed (exit {run['code']})")):
            if os.path.isfile(os.path.join(workdir, folder, "report.json")):
                built.update(cli=cli, path=_artefacts_from_report(os.path.join(workdir, folder))["tflite_int4"])
                break
        else:
            raise RuntimeError(f"python -m export --quantization=int4 failed (exit {run['code']}): {run['line']}")
        with open(marker, "w", encoding="utf-8") as file:
            json.dump(built, file)
    with open(marker, encoding="utf-8") as file:
        return json.load(file)


def prepare_bundle(root: str, bundle: str, context: int, threads: int, max_gb: float) -> dict[str, Any]:
    """Exports one bundle format (`genai`) of the converted workdir into `workdir_<bundle>/` (cached)."""
    marker = os.path.join(root, f"bundle-{bundle}.json")
    if not os.path.isfile(marker):
        source, workdir = os.path.join(root, "workdir"), os.path.join(root, f"workdir_{bundle}")
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(workdir)
        for name in ("config.json", "model.keras", "tokenizer"):  # the same model; its own export/ folder
            os.symlink(os.path.join(source, name), os.path.join(workdir, name))
        command = [sys.executable, "-m", "export", f"--workdir={workdir}", f"--formats={bundle}"]
        command += ["--strategy=greedy", f"--max_length={context}", "--quantization=none,int8"]
        built: dict[str, Any] = {"command": "python " + " ".join(command[1:])}
        run = _run_logged(command, os.path.join(root, "build.log"), threads, max_gb)
        built.update(seconds=run["seconds"], peak_rss_gb=run["peak_gb"])
        report_path = os.path.join(workdir, "export", "report.json")
        if run["code"] != 0 or not os.path.isfile(report_path):
            raise RuntimeError(f"python -m export --formats={bundle} failed (exit {run['code']}): {run['line']}")
        with open(report_path, encoding="utf-8") as file:
            artefacts = json.load(file)["artefacts"]
        built["cli"] = "ok"
        built["artefacts"] = {  # e.g. genai; litertlm and litertlm_int8
            key: {
                "path": os.path.join(workdir, "export", artefact["path"]),
                "size_bytes": artefact["size_bytes"],
                "parity_passed": artefact["parity"]["passed"],
                "parity_identical": all(case.get("identical") for case in artefact["parity"]["generate"].values()),
            }
            for key, artefact in artefacts.items()
        }
        with open(marker, "w", encoding="utf-8") as file:
            json.dump(built, file)
    with open(marker, encoding="utf-8") as file:
        return json.load(file)


def prepare(root: str, shape: dict[str, int], context: int, threads: int, llama: bool, max_gb: float) -> dict[str, Any]:
    """Builds (or finds in the cache) the checkpoint, workdir, export and GGUF files; returns their facts."""
    os.makedirs(root, exist_ok=True)
    log_path = os.path.join(root, "build.log")
    hf_dir, workdir = os.path.join(root, "hf"), os.path.join(root, "workdir")
    facts: dict[str, Any] = {"cache": root}
    if not os.path.isfile(os.path.join(hf_dir, "model.safetensors")):
        build_checkpoint(hf_dir, shape)
    if not os.path.isfile(os.path.join(workdir, "model.keras")):
        shutil.rmtree(workdir, ignore_errors=True)
        command = [sys.executable, "-m", "tfzoo.convert", "gpt2", f"--source={hf_dir}", f"--workdir={workdir}"]
        run = _run_logged(command, log_path, threads, max_gb)
        if run["code"] != 0:
            raise RuntimeError(f"tfzoo.convert failed ({run['code']}): {run['line']}")
    artefacts_path = os.path.join(root, "artefacts.json")
    if not os.path.isfile(artefacts_path):
        command = [sys.executable, "-m", "export", f"--workdir={workdir}", "--formats=tflite,onnx"]
        command += ["--quantization=none,int8,int4", "--strategy=greedy", f"--max_length={context}"]
        export: dict[str, Any] = {"command": "python " + " ".join(command[1:])}
        run = _run_logged(command, log_path, threads, max_gb)
        export.update(seconds=run["seconds"], peak_rss_gb=run["peak_gb"])
        if run["code"] == 0 and os.path.isfile(os.path.join(workdir, "export", "report.json")):
            export["cli"] = "ok"
            export["artefacts"] = _artefacts_from_report(os.path.join(workdir, "export"))
        elif os.path.isfile(os.path.join(workdir, "export.failed", "report.json")):  # parity failed: files written
            export["cli"] = f"parity failed (exit {run['code']}): the artefacts of export.failed/ are measured"
            export["artefacts"] = _artefacts_from_report(os.path.join(workdir, "export.failed"))
        else:
            raise RuntimeError(f"python -m export failed (exit {run['code']}): {run['line']}")
        with open(artefacts_path, "w", encoding="utf-8") as file:
            json.dump(export, file)
    with open(artefacts_path, encoding="utf-8") as file:
        facts["export"] = json.load(file)
    if llama:
        f32, q8 = os.path.join(root, "gpt2.f32.gguf"), os.path.join(root, "gpt2.q8_0.gguf")
        if not os.path.isfile(f32):
            write_gguf(hf_dir, f32, shape)
        if not os.path.isfile(q8):
            quantize_gguf(f32, q8, threads)
        facts["gguf"] = {
            "f32": f32,
            "q8_0": q8,
            "how": "gguf.GGUFWriter (gguf-py, llama.cpp's own library) from the safetensors, float32; q8_0 by "
            "llama_cpp.llama_model_quantize (LLAMA_FTYPE_MOSTLY_Q8_0)",
        }
    return facts


# ---------------------------------------------------------------------------------------------------------
# Bytes one decode step reads, and the measured read bandwidth
# ---------------------------------------------------------------------------------------------------------


def step_bytes(hf_dir: str, gguf_paths: dict[str, str] | None) -> dict[str, int]:
    """Weight bytes one decode step reads, per kind of artefact (the position table: one row only)."""
    weights = {k: v for k, v in hf_weights(hf_dir).items() if not k.endswith((".attn.bias", ".masked_bias"))}
    hidden = weights["wpe.weight"].shape[1]
    total = sum(v.size for v in weights.values())
    positions = weights["wpe.weight"].size - hidden
    matrices = sum(v.size for k, v in weights.items() if v.ndim == 2 and k != "wpe.weight")
    result = {
        "fp32": 4 * (total - positions),
        # dynamic-range int8: every 2-D weight one byte (the embedding too), biases and norms float32
        "int8": matrices + 4 * (total - positions - matrices),
        # blockwise int4: half a byte per 2-D weight plus a float16 scale per 32 of them
        "int4": matrices // 2 + 2 * (matrices // 32) + 4 * (total - positions - matrices),
    }
    if gguf_paths:
        import gguf  # noqa: PLC0415 (an optional peer: the bench extra)

        for key, path in gguf_paths.items():
            if key in ("f32", "q8_0"):
                reader = gguf.GGUFReader(path)
                result[f"gguf_{key}"] = (
                    sum(int(t.n_bytes) for t in reader.tensors if not t.name.startswith("position_embd")) + 4 * hidden
                )
    return result


def measure_bandwidth(threads: int, gib: float = 1.0, passes: int = 5) -> float:
    """Read bandwidth in GB/s: the best of `passes` numpy sums over a float32 array split across threads."""
    array = np.ones(int(gib * 2**30 // 4), np.float32)
    chunks = np.array_split(array, threads)
    best = float("inf")
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for _ in range(passes):
            start = time.perf_counter()
            list(pool.map(np.sum, chunks))  # numpy releases the GIL in the reduction
            best = min(best, time.perf_counter() - start)
    return array.nbytes / best / 1e9


# ---------------------------------------------------------------------------------------------------------
# The systems (each in its own child process)
# ---------------------------------------------------------------------------------------------------------


def _timed_in_graph(run: Callable[[int], list[int]], new_tokens: int) -> dict[str, Any]:
    """An in-graph decode loop: warm-up, then runs of 1 and of `new_tokens` tokens."""
    run(min(new_tokens, 8))
    start = time.perf_counter()
    run(1)
    one = time.perf_counter() - start
    start = time.perf_counter()
    tokens = run(new_tokens)
    full = time.perf_counter() - start
    return {"prefill_s": one, "decode_s": full - one, "tokens": tokens}


def _timed_streamed(
    prefill: Callable[[], np.ndarray], decode: Callable[[int, int], np.ndarray], prompt_length: int, new_tokens: int
) -> dict[str, Any]:
    """A host loop: `prefill()` -> last logits; `decode(token, position)` -> logits. Warm-up, then one timed run."""

    def run(count: int) -> tuple[float, float, list[int]]:
        start = time.perf_counter()
        token = int(np.argmax(prefill()))
        middle = time.perf_counter()
        tokens = [token]
        for step in range(count - 1):
            token = int(np.argmax(decode(token, prompt_length + step)))
            tokens.append(token)
        return middle - start, time.perf_counter() - middle, tokens

    run(min(new_tokens, 8))
    prefill_s, decode_s, tokens = run(new_tokens)
    return {"prefill_s": prefill_s, "decode_s": decode_s, "tokens": tokens}


def _knob_feed(inputs: dict[str, tuple[Any, Any]], prompt: np.ndarray, new_tokens: int) -> dict[str, np.ndarray]:
    """Every input of an exported `generate` (`{name: (dtype, shape)}`): the prompt, its length,
    `max_new_tokens`, the knob defaults and empty (all -1) stop and banned sequence tables."""
    from tfzoo.decoding.knobs import KNOBS_BY_NAME  # noqa: PLC0415 (the repository is on the child's path)

    feed = {}
    for name, (dtype, shape) in inputs.items():
        if name in ("stop_sequences", "banned_sequences"):
            feed[name] = np.full([int(n) for n in shape], -1, dtype)
        elif name == "token_ids":
            feed[name] = prompt[None].astype(dtype)
        elif name == "lengths":
            feed[name] = np.array([prompt.size], dtype)
        elif name == "max_new_tokens":
            feed[name] = np.array(new_tokens, dtype)
        else:
            feed[name] = np.array(KNOBS_BY_NAME[name].default, dtype)
    return feed


def _cache_shape(facts: dict[str, Any]) -> tuple[int, int, int, int]:
    shape = facts["shape"]
    return (1, shape["n_head"], facts["context"], shape["n_embd"] // shape["n_head"])


def run_llama(facts: dict[str, Any], quantization: str, prompt: np.ndarray, new_tokens: int) -> dict[str, Any]:
    import llama_cpp  # noqa: PLC0415 (an optional peer: the bench extra)

    path = facts["gguf"][quantization]
    llm = llama_cpp.Llama(
        path,
        n_ctx=facts["context"],
        n_threads=facts["threads"],
        n_batch=facts["n_batch"],
        logits_all=False,
        verbose=False,
    )
    vocab = llm.n_vocab()

    def last_logits() -> np.ndarray:  # logits_all=False: llama.cpp keeps the last position's logits only
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(vocab,))

    def prefill() -> np.ndarray:
        llm.reset()
        llm.eval(prompt.tolist())
        return last_logits()

    def decode(token: int, position: int) -> np.ndarray:
        llm.eval([token])
        return last_logits()

    result = _timed_streamed(prefill, decode, prompt.size, new_tokens)
    result["files"] = [path]
    return result


def run_hf(facts: dict[str, Any], beams: int, prompt: np.ndarray, new_tokens: int) -> dict[str, Any]:
    import torch  # noqa: PLC0415 (a peer: only in its child process)
    from transformers import GPT2LMHeadModel  # noqa: PLC0415 (a peer: only in its child process)

    torch.set_num_threads(facts["threads"])
    model = GPT2LMHeadModel.from_pretrained(facts["hf_dir"]).eval()
    ids = torch.tensor(prompt[None], dtype=torch.long)
    eos = facts["shape"]["vocab"] - 1

    def run(count: int) -> list[int]:
        with torch.inference_mode():
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                num_beams=beams,
                max_new_tokens=count,
                min_new_tokens=count,
                pad_token_id=eos,
            )
        return out[0, prompt.size :].tolist()

    result = _timed_in_graph(run, new_tokens)
    result["files"] = [os.path.join(facts["hf_dir"], "model.safetensors")]
    return result


def _tf_threads(threads: int) -> None:
    import tensorflow as tf  # noqa: PLC0415 (only in the TensorFlow children)

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def run_keras(
    facts: dict[str, Any], strategy: str, prompt: np.ndarray, new_tokens: int, jit_compile: bool | None = None
) -> dict[str, Any]:
    _tf_threads(facts["threads"])
    from tfzoo.decoding.generator import Generator, decoding_mode  # noqa: PLC0415 (TensorFlow only in this child)
    from tfzoo.run_folder import RunFolder  # noqa: PLC0415 (TensorFlow only in this child)

    folder = RunFolder(facts["workdir"])
    model, tokenizer = folder.load_model(), folder.load_tokenizer()
    generator = Generator(
        model,
        max_length=prompt.size + new_tokens,
        strategy=strategy,
        beam_size=4,
        eos_ids=(tokenizer.eos_id,),
        pad_id=tokenizer.pad_id,
        **decoding_mode(model, jit_compile),  # as `tfzoo.generate` chooses (None) or forced
    )

    def run(count: int) -> list[int]:
        out = generator(prompt[None], [prompt.size], max_new_tokens=count)
        return out["sequences"][0, prompt.size : out["sequence_lengths"][0]].tolist()

    result = _timed_in_graph(run, new_tokens)
    result["files"] = [folder.model_path]
    return result


def _streamed_steps(
    step: Callable[[str, dict[str, np.ndarray]], dict[str, np.ndarray]],
    facts: dict[str, Any],
    prompt: np.ndarray,
    new_tokens: int,
    dynamic_slots: bool = True,
) -> dict[str, Any]:
    """Times `prefill`, then one `decode` per token, through `step(signature, inputs) -> outputs`.

    The cache is fed as tfzoo's runtimes feed it (`tfzoo.runtimes.base.grow_cache`): the slots in use,
    grown in blocks of `CACHE_BLOCK`; an export whose steps take only `max_length` slots
    (`dynamic_slots=False`, before the slot dimension was dynamic) gets them all from the start.
    """
    from tfzoo.runtimes.base import CACHE_BLOCK, grow_cache  # noqa: PLC0415 (only in its child process)

    layers, context = facts["shape"]["n_layer"], facts["context"]
    block = CACHE_BLOCK if dynamic_slots else context
    state: dict[str, tuple] = {}

    def call(signature: str, inputs: dict[str, np.ndarray], position: int) -> np.ndarray:
        cache = grow_cache(state["cache"], min(position + 1, context), context, block)
        for i, (keys, values) in enumerate(cache):
            inputs[f"past_k_{i}"], inputs[f"past_v_{i}"] = keys, values
        out = step(signature, inputs)
        state["cache"] = tuple((out[f"present_k_{i}"], out[f"present_v_{i}"]) for i in range(layers))  # fed back
        return out["logits"][0, -1]

    def prefill() -> np.ndarray:
        batch, heads, _, head_dim = _cache_shape(facts)
        empty = np.zeros((batch, heads, 0, head_dim), np.float32)  # grown to the prompt's block by `call`
        state["cache"] = tuple((empty, empty) for _ in range(layers))
        positions = np.arange(prompt.size, dtype=np.int32)[None]
        return call("prefill", {"token_ids": prompt[None].astype(np.int32), "positions": positions}, prompt.size - 1)

    def decode(token: int, position: int) -> np.ndarray:
        token_ids, positions = np.array([[token]], np.int32), np.array([[position]], np.int32)
        return call("decode", {"token_ids": token_ids, "positions": positions}, position)

    return _timed_streamed(prefill, decode, prompt.size, new_tokens)


def run_tflite(
    facts: dict[str, Any], key: str, mode: str, prompt: np.ndarray, new_tokens: int, kernels: str = "xnnpack"
) -> dict[str, Any]:
    """The `.tflite` file in `ai_edge_litert`'s `Interpreter` with tfzoo's choice of kernels (`tflite_resolver`)."""
    from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415 (only in its child process)

    from tfzoo.runtimes.adapters import tflite_resolver  # noqa: PLC0415 (only in its child process)

    path = facts["export"]["artefacts"][key]
    resolver = tflite_resolver(kernels)
    interpreter = Interpreter(model_path=path, num_threads=facts["threads"], experimental_op_resolver_type=resolver)
    if mode == "generate":
        runner = interpreter.get_signature_runner("generate")
        details = {name: (d["dtype"], d["shape"]) for name, d in runner.get_input_details().items()}

        def run(count: int) -> list[int]:
            out = runner(**_knob_feed(details, prompt, count))
            return out["sequences"][0, prompt.size : out["sequence_lengths"][0]].tolist()

        result = _timed_in_graph(run, new_tokens)
    else:
        runners = {signature: interpreter.get_signature_runner(signature) for signature in ("prefill", "decode")}
        dynamic = int(runners["decode"].get_input_details()["past_k_0"]["shape_signature"][2]) < 0
        result = _streamed_steps(
            lambda signature, inputs: runners[signature](**inputs), facts, prompt, new_tokens, dynamic
        )
    result["files"] = [path]
    return result


def run_onnx(facts: dict[str, Any], mode: str, prompt: np.ndarray, new_tokens: int) -> dict[str, Any]:
    from tfzoo.runtimes.adapters import OnnxRuntime  # noqa: PLC0415 (only in its child process)

    artefacts = facts["export"]["artefacts"]
    files, weights = artefacts["onnx"], artefacts["onnx_weights"]
    types = {"tensor(int32)": np.int32, "tensor(float)": np.float32, "tensor(int64)": np.int64}
    # tfzoo's ONNX runtime: plain onnxruntime sessions that share one mapping of the weights file.
    wanted = ("generate",) if mode == "generate" else ("prefill", "decode")
    runtime = OnnxRuntime({s: files[s] for s in wanted}, artefacts["model"], num_threads=facts["threads"])

    def session(signature: str):
        return runtime.session(signature)  # `runtime` holds the weights the sessions read

    if mode == "generate":
        generate = session("generate")
        details = {i.name: (types[i.type], i.shape) for i in generate.get_inputs()}
        names = [o.name for o in generate.get_outputs()]

        def run(count: int) -> list[int]:
            out = dict(zip(names, generate.run(names, _knob_feed(details, prompt, count))))
            return out["sequences"][0, prompt.size : out["sequence_lengths"][0]].tolist()

        result = _timed_in_graph(run, new_tokens)
        result["files"] = [files["generate"], weights]
        return result
    steps = {signature: session(signature) for signature in ("prefill", "decode")}
    outputs = {signature: [o.name for o in s.get_outputs()] for signature, s in steps.items()}

    def step(signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(outputs[signature], steps[signature].run(outputs[signature], inputs)))

    past = next(i for i in steps["decode"].get_inputs() if i.name == "past_k_0")
    result = _streamed_steps(step, facts, prompt, new_tokens, not isinstance(past.shape[2], int))
    result["files"] = [files["prefill"], files["decode"], weights]
    return result


def run_genai(facts: dict[str, Any], prompt: np.ndarray, new_tokens: int) -> dict[str, Any]:
    """ONNX Runtime GenAI's own greedy loop on the export's `genai/` bundle (its decoder graph, growing cache)."""
    import onnxruntime_genai as og  # noqa: PLC0415 (only in its child process)

    folder = facts["bundles"]["genai"]["artefacts"]["genai"]["path"]
    config = og.Config(folder)
    options = {"intra_op_num_threads": facts["threads"], "inter_op_num_threads": 1}
    config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
    model = og.Model(config)

    def run(count: int) -> list[int]:
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=prompt.size + count, do_sample=False)
        generator = og.Generator(model, params)
        generator.append_tokens(prompt[None].astype(np.int32))
        while not generator.is_done():
            generator.generate_next_token()
        return [int(t) for t in generator.get_sequence(0)[prompt.size :]]

    result = _timed_in_graph(run, new_tokens)
    result["files"] = [os.path.join(folder, name) for name in sorted(os.listdir(folder))]
    return result


def run_litertlm(facts: dict[str, Any], key: str, prompt: np.ndarray, new_tokens: int) -> dict[str, Any]:
    """LiteRT-LM's own benchmark (`litert_lm.Benchmark`, CPU) of the export's `.litertlm` bundle.

    The engine takes text, not ids, and a random-id prompt does not survive a round trip through the
    tokenizer: its tokens are not compared here. Its greedy tokens are the export's parity (the bundle's
    `parity_identical`: the engine's text equals the Keras model's on the parity prompts).
    """
    import tempfile  # noqa: PLC0415 (only in its child process)

    import litert_lm  # noqa: PLC0415 (only in its child process)

    bundle = facts["bundles"]["litertlm"]["artefacts"][key]
    litert_lm.set_min_log_severity(litert_lm.LogSeverity.ERROR)
    with tempfile.TemporaryDirectory(prefix="litertlm-cache-") as cache:
        info = litert_lm.Benchmark(
            model_path=bundle["path"],
            backend=litert_lm.Backend.CPU(),
            prefill_tokens=int(prompt.size),
            decode_tokens=int(new_tokens),
            max_num_tokens=int(facts["context"]),
            cache_dir=cache,
        ).run()
    prefill = float(info.last_prefill_tokens_per_second)
    decode = float(info.last_decode_tokens_per_second)
    note = "export parity at this size: " + ("identical to Keras" if bundle["parity_identical"] else "differs")
    return {
        "prefill_s": prompt.size / max(prefill, 1e-9),
        "decode_s": (new_tokens - 1) / max(decode, 1e-9),
        "tokens": None,
        "tokens_note": note + " (the engine takes text; random-id prompts are not compared)",
        "files": [bundle["path"]],
    }


def run_system(system: str, facts: dict[str, Any], prompt: np.ndarray, new_tokens: int) -> dict[str, Any]:
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "llama_cpp_f32": lambda: run_llama(facts, "f32", prompt, new_tokens),
        "llama_cpp_q8_0": lambda: run_llama(facts, "q8_0", prompt, new_tokens),
        "hf_greedy": lambda: run_hf(facts, 1, prompt, new_tokens),
        "hf_beam4": lambda: run_hf(facts, 4, prompt, new_tokens),
        "tfzoo_keras_greedy": lambda: run_keras(facts, "greedy", prompt, new_tokens),
        "tfzoo_keras_beam4": lambda: run_keras(facts, "beam", prompt, new_tokens),
        # XLA forced (the default before `decoding_mode`; at this size it decodes 3-4x slower)
        "tfzoo_keras_xla_greedy": lambda: run_keras(facts, "greedy", prompt, new_tokens, jit_compile=True),
        "tfzoo_keras_xla_beam4": lambda: run_keras(facts, "beam", prompt, new_tokens, jit_compile=True),
        "tflite_fp32_streamed": lambda: run_tflite(facts, "tflite_fp32", "streamed", prompt, new_tokens),
        "tflite_int8_streamed": lambda: run_tflite(facts, "tflite_int8", "streamed", prompt, new_tokens),
        "tflite_fp32_generate": lambda: run_tflite(facts, "tflite_fp32", "generate", prompt, new_tokens),
        "tflite_int8_generate": lambda: run_tflite(facts, "tflite_int8", "generate", prompt, new_tokens),
        **{  # the same files on the builtin kernels (no XNNPACK delegate)
            f"tflite_{quant}_{mode}_builtin": (
                lambda quant=quant, mode=mode: run_tflite(facts, f"tflite_{quant}", mode, prompt, new_tokens, "builtin")
            )
            for quant in ("fp32", "int8")
            for mode in ("streamed", "generate")
        },
        "tflite_int4_streamed": lambda: run_tflite(facts, "tflite_int4", "streamed", prompt, new_tokens),
        "tflite_int4_generate": lambda: run_tflite(facts, "tflite_int4", "generate", prompt, new_tokens),
        "onnx_generate": lambda: run_onnx(facts, "generate", prompt, new_tokens),
        "onnx_steps": lambda: run_onnx(facts, "steps", prompt, new_tokens),
        "ort_genai": lambda: run_genai(facts, prompt, new_tokens),
        "litertlm_fp32": lambda: run_litertlm(facts, "litertlm", prompt, new_tokens),
        "litertlm_int8": lambda: run_litertlm(facts, "litertlm_int8", prompt, new_tokens),
    }
    return runners[system]()


def peak_rss_mb() -> float:
    """This process's peak resident set (`VmHWM`), in MB."""
    with open("/proc/self/status", encoding="utf-8") as file:
        for line in file:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


def child_main(system: str, facts_path: str, n_batch: int) -> None:
    with open(facts_path, encoding="utf-8") as file:
        facts = json.load(file)
    facts["n_batch"] = n_batch
    prompt = np.asarray(facts["prompt"], np.int32)
    result = run_system(system, facts, prompt, facts["new_tokens"])
    result["peak_rss_mb"] = peak_rss_mb()
    print(RESULT_MARK + json.dumps(result), flush=True)


def skip_reason(system: str) -> str | None:
    """Why an optional peer cannot run here (None: it can)."""
    if system.startswith("llama_cpp"):
        for module, package in (("llama_cpp", "llama-cpp-python"), ("gguf", "gguf")):
            try:
                __import__(module)
            except ImportError:
                return f"{package} not installed ({INSTALL_HINT})"
    return None


def missing_artefact(system: str, export: dict[str, Any]) -> str | None:
    """Why a tfzoo export system has nothing to run (its artefact was not built), or None."""
    artefacts = export.get("artefacts", {})
    if system.startswith("tflite_"):
        key = "tflite_" + system.split("_")[1]  # tflite_fp32, tflite_int8, tflite_int4
        have = artefacts.get(key) is not None
    elif system.startswith("onnx_"):
        wanted = ("generate",) if system == "onnx_generate" else ("prefill", "decode")
        key = "onnx " + "+".join(wanted)
        have = all(artefacts.get("onnx", {}).get(signature) for signature in wanted)
    else:
        return None
    return None if have else f"not built: {key} (export: {export.get('cli')})"


def run_child(system: str, facts_path: str, threads: int, log_path: str, n_batch: int) -> dict[str, Any]:
    command = [sys.executable, os.path.abspath(__file__), f"--_child={system}", f"--_facts={facts_path}"]
    command.append(f"--_n_batch={n_batch}")
    try:
        process = subprocess.run(
            command, capture_output=True, text=True, env=_child_env(threads), timeout=CHILD_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {CHILD_TIMEOUT} s"}
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"=== {system} (exit {process.returncode})\n{process.stderr}\n")
    for line in process.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :])
    return {"error": f"exit {process.returncode}: {_last_line(process.stderr)}"}


# ---------------------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------------------


def _bytes_key(system: str) -> str:
    if system == "llama_cpp_f32":
        return "gguf_f32"
    if system == "llama_cpp_q8_0":
        return "gguf_q8_0"
    for quantized in ("int8", "int4"):
        if quantized in system:
            return quantized
    return "fp32"


def summarize(
    system: str,
    runs: list[dict[str, Any]],
    tokens: dict[str, list[int]],
    facts: dict[str, Any],
    bandwidth: float,
    step: dict[str, int],
) -> dict[str, Any]:
    errors = [run["error"] for run in runs if "error" in run]
    good = [run for run in runs if "error" not in run]
    if not good:
        return {"error": errors[0]}
    prompt_length, new_tokens = len(facts["prompt"]), facts["new_tokens"]
    decode = statistics.median((new_tokens - 1) / max(run["decode_s"], 1e-9) for run in good)
    reference = REFERENCES.get(system, "hf_greedy")
    entry: dict[str, Any] = {
        "prefill_tok_s": round(statistics.median(prompt_length / max(run["prefill_s"], 1e-9) for run in good), 1),
        "decode_tok_s": round(decode, 2),
        "peak_rss_mb": round(max(run["peak_rss_mb"] for run in good)),
        "file_mb": round(sum(os.path.getsize(p) for p in good[0]["files"]) / 1e6, 1),
        "reference": reference,
        "tokens_agree": good[0]["tokens"] == tokens[reference] if reference in tokens else None,
        "tokens_stable": all(run["tokens"] == good[0]["tokens"] for run in good),
        "step_bytes": step[_bytes_key(system)],
        "pct_of_bound": float(f"{100 * decode * step[_bytes_key(system)] / (bandwidth * 1e9):.3g}"),
        "runs": len(good),
    }
    if good[0]["tokens"] is None:  # a runtime that takes text (LiteRT-LM): says where its tokens were checked
        entry.update(tokens_agree=None, tokens_stable=None, tokens_note=good[0]["tokens_note"])
    if entry["tokens_agree"] is False and reference in tokens:
        same = [a == b for a, b in zip(good[0]["tokens"], tokens[reference])]
        entry["first_difference"] = same.index(False) if False in same else min(len(same), new_tokens)
    if errors:
        entry["errors"] = errors
    return entry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--context", type=int, default=None, help="Exported max_length (default 1024; tiny 192).")
    parser.add_argument("--threads", type=int, default=2, help="Threads of every runtime and of the bandwidth sums.")
    parser.add_argument("--repeats", type=int, default=3, help="Rounds; each runs every system once in a new process.")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"Comma list of {', '.join(SYSTEMS)}.")
    parser.add_argument("--new_tokens", type=int, default=128, help="Greedy (or beam) tokens per run, no EOS stop.")
    parser.add_argument("--prompt_length", type=int, default=32, help="Seeded random prompt ids.")
    parser.add_argument("--tiny", action="store_true", help="2 layers, hidden 64, vocabulary 300, context 192.")
    parser.add_argument("--cache_dir", default="/tmp/tfzoo_decode_bench", help="Built checkpoints and exports.")
    parser.add_argument(
        "--max_build_gb", type=float, default=16.0, help="Kill a conversion or export process past this RSS (GB)."
    )
    parser.add_argument("--_child", dest="internal_child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_facts", dest="internal_facts", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_n_batch", dest="internal_n_batch", type=int, default=LLAMA_N_BATCH, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.internal_child:
        child_main(args.internal_child, args.internal_facts, args.internal_n_batch)
        return

    shape_name = "tiny" if args.tiny else "gpt2_small"
    shape = SHAPES[shape_name]
    context = args.context or shape["context"]
    systems = [s for s in dict.fromkeys(s.strip() for s in args.systems.split(",")) if s]
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        parser.error(f"unknown system {unknown[0]!r}; choose from {', '.join(SYSTEMS)}")
    if not 1 <= args.prompt_length or args.prompt_length + args.new_tokens > min(context, shape["n_positions"]):
        parser.error(f"prompt_length + new_tokens must fit in the context ({context})")
    skipped = {s: reason for s in systems if (reason := skip_reason(s))}
    for system in [s for s in systems if s not in skipped]:  # the references of the systems that run
        reference = REFERENCES.get(system, "hf_greedy")
        if reference not in systems:
            systems.append(reference)
    to_run = [s for s in systems if s not in skipped]

    key = f"{shape_name}-L{shape['n_layer']}-H{shape['n_embd']}-V{shape['vocab']}-C{context}-s{SEED}-v{BUILD_VERSION}"
    root = os.path.join(args.cache_dir, key)
    llama = any(s.startswith("llama_cpp") for s in to_run)
    facts = prepare(root, shape, context, args.threads, llama, args.max_build_gb)
    bundles = sorted({BUNDLE_OF[s] for s in to_run if s in BUNDLE_OF})
    facts["bundles"] = {b: prepare_bundle(root, b, context, args.threads, args.max_build_gb) for b in bundles}
    if any("int4" in s for s in to_run) and "tflite_int4" not in facts["export"].get("artefacts", {}):
        facts["int4_export"] = prepare_int4(root, context, args.threads, args.max_build_gb)
        facts["export"]["artefacts"]["tflite_int4"] = facts["int4_export"]["path"]
    facts.update(
        shape=shape,
        context=context,
        threads=args.threads,
        new_tokens=args.new_tokens,
        hf_dir=os.path.join(root, "hf"),
        workdir=os.path.join(root, "workdir"),
        prompt=np.random.default_rng(SEED).integers(0, shape["vocab"] - 1, args.prompt_length).tolist(),
    )
    facts_path = os.path.join(root, "facts.json")
    with open(facts_path, "w", encoding="utf-8") as file:
        json.dump(facts, file)
    step = step_bytes(facts["hf_dir"], facts.get("gguf"))
    readings = [measure_bandwidth(args.threads)]  # again after the systems: the bound uses the better reading

    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in to_run}
    log_path = os.path.join(root, "systems.log")
    n_batch = {s: LLAMA_N_BATCH for s in to_run}
    for _ in range(args.repeats):
        for system in to_run:
            missing = missing_artefact(system, facts["export"])
            if missing:
                runs[system].append({"error": missing})
                continue
            run = run_child(system, facts_path, args.threads, log_path, n_batch[system])
            if system.startswith("llama_cpp") and run.get("error", "").startswith("exit -11") and n_batch[system] > 1:
                # This llama.cpp build's AMX q8_0 matmul (batches > 1) segfaults on some CPUs (gdb:
                # ggml_backend_amx_mul_mat): prefill one token per llama_decode instead, and say so.
                n_batch[system] = 1
                run = run_child(system, facts_path, args.threads, log_path, n_batch[system])
            runs[system].append(run)
    readings.append(measure_bandwidth(args.threads))
    bandwidth = max(readings)
    tokens = {}
    for system, results in runs.items():
        good = [r for r in results if "error" not in r]
        if good:
            tokens[system] = good[0]["tokens"]
    entries: dict[str, Any] = {}
    for system in systems:
        if system in skipped:
            entries[system] = {"skipped": skipped[system]}
        else:
            entries[system] = summarize(system, runs[system], tokens, facts, bandwidth, step)
            if system.startswith("llama_cpp"):
                entries[system]["n_batch"] = n_batch[system]
                if n_batch[system] != LLAMA_N_BATCH:
                    entries[system]["note"] = (
                        f"n_batch={LLAMA_N_BATCH} segfaulted (SIGSEGV in ggml_backend_amx_mul_mat, the AMX kernel "
                        "for batches > 1); rerun with n_batch=1, so its prefill is one token per call"
                    )
    reference_tokens = tokens.get("hf_greedy", [])
    export = {k: v for k, v in facts["export"].items() if k != "artefacts"}
    built_bundles = {b: {k: v for k, v in entry.items() if k != "path"} for b, entry in facts["bundles"].items()}
    result = {
        "bench": "decode_gpt2",
        "machine": machine(
            "tensorflow",
            "ai-edge-litert",
            "onnxruntime",
            "onnxruntime-genai",
            "torch",
            "transformers",
            "llama-cpp-python",
        ),
        "shape": shape_name,
        "model": {k: shape[k] for k in ("n_layer", "n_embd", "n_head", "vocab", "n_positions")},
        "context": context,
        "threads": args.threads,
        "batch_size": 1,
        "prompt_length": args.prompt_length,
        "new_tokens": args.new_tokens,
        "repeats": args.repeats,
        "bandwidth_gb_s": round(bandwidth, 2),
        "bandwidth_readings_gb_s": [round(r, 2) for r in readings],
        "bound": "pct_of_bound = 100 x decode_tok_s x step_bytes / bandwidth; step_bytes = the weights one decode "
        "step reads (fp32: 4 B each; TFLite int8: 1 B per 2-D weight; int4: 0.5 B per 2-D weight and 2 B per 32 of "
        "them; GGUF: its tensors' bytes; one row of the position table); KV-cache reads are not counted",
        "export": export,
        "bundles": built_bundles,
        "int4_export": {k: v for k, v in facts.get("int4_export", {}).items() if k != "path"} or None,
        "gguf": facts.get("gguf", {}).get("how", "not built"),
        "reference_distinct_tokens": len(set(reference_tokens)),
        "reference_tokens": {name: tokens[name] for name in ("hf_greedy", "hf_beam4") if name in tokens},
        "cache": root,
        "systems": entries,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
