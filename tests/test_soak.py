"""Soak: 500 `generate` calls with varied inputs through TFLite and through ONNX Runtime; memory stays flat.

A tiny GPT is exported with the sampling strategy only (`build_export` of
tests/fuzz_export_helpers.py: the `ExportModule` of `python -m export`, converted by
the same converters, here without XLA to save build time). Each runtime runs in its own subprocess (`soak_main`)
that makes `CALLS` calls through the `tfzoo.runtimes` adapter with a new
batch size, prompt width, `max_new_tokens` and knob values each time (some
token ids outside the vocabulary), checks every output, and reads its
resident set size (`VmRSS` in /proc/self/status) after a warm-up of `WARMUP`
calls and at the end: it may grow by less than 5%.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from fuzz_export_helpers import MAX_LENGTH, VOCABULARY_SIZE, build_export, check_generate, load, run_child

CALLS = 500
WARMUP = 50
MAX_GROWTH = 0.05


def rss_kib() -> int:
    """This process's resident set size in KiB, from /proc/self/status (no psutil)."""
    with open("/proc/self/status", encoding="ascii") as file:
        for line in file:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def soak_main(runtime_name: str, export_json: str) -> None:
    """Makes `CALLS` varied `generate` calls; prints one JSON line: RSS before/after, problems, timings."""
    runtime = load(json.loads(export_json), runtime_name)
    rng = np.random.default_rng(1)
    problems, before, started = [], None, time.perf_counter()
    for call in range(CALLS):
        if call == WARMUP:
            before, warm = rss_kib(), time.perf_counter()
        batch, width = int(rng.integers(1, 5)), int(rng.integers(1, MAX_LENGTH))
        token_ids = rng.integers(-3, VOCABULARY_SIZE + 3, size=(batch, width))  # a few ids outside the vocabulary
        lengths = rng.integers(1, width + 1, size=(batch,))
        knobs = {
            "temperature": float(rng.uniform(0.05, 3.0)),
            "top_k": int(rng.integers(0, VOCABULARY_SIZE + 2)),
            "top_p": float(rng.uniform(0.05, 1.0)),
            "seed": int(rng.integers(0, 2**31 - 1)),
            "repetition_penalty": float(rng.uniform(0.5, 2.0)),
            "no_repeat_ngram_size": int(rng.integers(0, 4)),
        }
        max_new_tokens = int(rng.integers(0, MAX_LENGTH + 4))
        sequences, sequence_lengths, scores = runtime.generate(token_ids, lengths, max_new_tokens, **knobs)
        outputs = {"sequences": sequences, "sequence_lengths": sequence_lengths, "scores": scores}
        found = check_generate({"token_ids": token_ids}, outputs)
        room = np.minimum(lengths + max_new_tokens, MAX_LENGTH)
        if not found and np.any(sequence_lengths > room):
            found = [f"sequence_lengths {sequence_lengths.tolist()} beyond prompt + max_new_tokens {room.tolist()}"]
        problems += [f"call {call}: {p}" for p in found]
    after = rss_kib()
    print(
        json.dumps(
            {
                "rss_before_kib": before,
                "rss_after_kib": after,
                "problems": problems[:10],
                "seconds_per_call": (time.perf_counter() - warm) / (CALLS - WARMUP),
                "seconds": time.perf_counter() - started,
            }
        )
    )


CHILD = "import sys, test_soak as t; t.soak_main(sys.argv[1], sys.argv[2])"


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> dict:
    directory = str(tmp_path_factory.mktemp("soak_export"))
    return build_export(directory, strategies=("sample",), steps=False, jit_compile=False)


@pytest.mark.parametrize("runtime", ["tflite", "onnx"])
def test_500_varied_generate_calls_keep_memory_flat(export, runtime):
    status, stdout, stderr = run_child(CHILD, [runtime, json.dumps(export)], timeout=120)
    assert status == 0, f"{runtime}: status {status}; {stderr[-2000:]}"
    result = json.loads(stdout.strip().splitlines()[-1])
    print(f"{runtime}: {result}")  # the numbers docs/reliability.md quotes (pytest -s shows them)
    assert result["problems"] == [], result["problems"]
    growth = result["rss_after_kib"] / result["rss_before_kib"] - 1
    assert growth < MAX_GROWTH, f"{runtime}: RSS grew {growth:.1%} ({result})"
