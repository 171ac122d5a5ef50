"""bench/decode_gpt2.py end to end at its tiny shape: every runtime's greedy (and beam) tokens equal Hugging Face's.

One subprocess builds the random checkpoint, converts it, exports it (TFLite, ONNX, and the ONNX Runtime GenAI
bundle) and runs each system in a child process of its own. llama.cpp runs when llama-cpp-python and gguf are
installed (the `bench` extra, which CI does not install); without them its entry must say it was skipped and how
to install them.
"""

import importlib.util
import itertools
import json
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)
SYSTEMS = [
    "hf_greedy",
    "hf_beam4",
    "tfzoo_keras_greedy",
    "tfzoo_keras_beam4",
    "tflite_fp32_streamed",
    "tflite_fp32_generate",
    "onnx_generate",
    "onnx_steps",
    "ort_genai",
    "llama_cpp_f32",
]
HAVE_LLAMA = all(importlib.util.find_spec(name) is not None for name in ("llama_cpp", "gguf"))


def test_tiny_decode_bench_tokens_agree_in_every_fp32_runtime(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.path.abspath(ROOT))
    command = [sys.executable, os.path.join(ROOT, "bench", "decode_gpt2.py"), "--tiny", "--repeats=1"]
    command += [f"--systems={','.join(SYSTEMS)}", f"--cache_dir={tmp_path}", "--new_tokens=64"]
    process = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    result = json.loads(process.stdout.strip().splitlines()[-1])

    assert result["shape"] == "tiny" and result["new_tokens"] == 64 and result["bandwidth_gb_s"] > 0
    assert result["export"]["cli"] == "ok", result["export"]
    reference = result["reference_tokens"]["hf_greedy"]
    assert len(reference) == 64
    assert len(set(reference)) >= 16, reference  # a model that repeats one token would prove nothing
    assert max(len(list(run)) for _, run in itertools.groupby(reference)) < 8, reference
    assert result["reference_tokens"]["hf_beam4"] != reference  # beam search found other continuations
    systems = result["systems"]
    assert list(systems) == SYSTEMS
    ran = SYSTEMS if HAVE_LLAMA else [s for s in SYSTEMS if not s.startswith("llama_cpp")]
    for name in ran:
        entry = systems[name]
        assert "error" not in entry, (name, entry)
        assert entry["tokens_agree"] is True, (name, entry)
        assert entry["reference"] == ("hf_beam4" if "beam" in name else "hf_greedy")
        assert entry["decode_tok_s"] > 0 and entry["prefill_tok_s"] > 0, (name, entry)
        assert entry["peak_rss_mb"] > 0 and entry["file_mb"] > 0, (name, entry)
        assert entry["pct_of_bound"] > 0 and entry["step_bytes"] > 0, (name, entry)
    if not HAVE_LLAMA:
        assert systems["llama_cpp_f32"] == {"skipped": "llama-cpp-python not installed (pip install -e .[bench])"}
