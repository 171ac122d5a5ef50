"""Hostile inputs to the exported `generate`, `prefill` and `decode` in TFLite and ONNX Runtime.

A tiny GPT is exported once (the `ExportModule` that `python -m export`
uses, converted by the same `convert_tflite` / `convert_onnx`). Each runtime
then runs in its own subprocess (`child_main`), so that a segfault or an abort
fails the test, naming the case that was running, instead of killing pytest.
The child feeds every case both straight to the runtime (`Runtime._run`: what
an app calling `ai_edge_litert` or `onnxruntime` itself sends) and through the
Python adapter (`Runtime.generate` / `decode`), and reports one JSON line per
case. A case passes when the call raises a Python exception (a clean
rejection; the runtime must still serve a good request afterwards) or when its
outputs are in range: tokens in [0, vocabulary), sequence lengths in
[1, max_length], padding after each row's end, finite scores and logits.

Cases: token ids outside the vocabulary (negative, huge, int32 extremes),
negative/zero/oversized lengths, `max_new_tokens` below zero or beyond the
room, empty batches and prompts, prompts wider than `max_length`, NaN/inf and
out-of-range knobs, decode positions out of range, caches of the wrong shape,
plus seeded random mixtures of all of these.
"""

from __future__ import annotations

import json
import sys

import pytest

from fuzz_export_helpers import CHILD, RANDOM_CASES, build_export, parse_child_output, run_child


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> dict:
    return build_export(str(tmp_path_factory.mktemp("fuzz_export")))


@pytest.mark.parametrize("runtime", ["tflite", "onnx"])
def test_hostile_inputs_are_rejected_or_give_in_range_outputs(export, runtime):
    status, stdout, stderr = run_child(CHILD, [runtime, json.dumps(export)], timeout=300)
    records, died = parse_child_output(status, stdout, stderr)
    assert died is None, f"{runtime}: {died}"
    bad = {r["case"]: r["problems"] for r in records if r["problems"]}
    assert not bad, f"{runtime}: " + "; ".join(f"{case}: {problems}" for case, problems in bad.items())
    by_case = {r["case"]: r for r in records}
    assert len(by_case) >= 3 * (RANDOM_CASES + 40), len(by_case)  # every suite ran
    # In-graph guards: out-of-vocabulary ids, bad lengths and positions are clamped, not rejected.
    for case in (
        "generate: ids huge",
        "generate: ids negative",
        "generate: lengths negative",
        "generate: max_new_tokens int32 max",
        "decode: positions huge",
        "prefill: ids negative",
    ):
        assert "rejected" not in by_case[case], (runtime, case, by_case[case])
    # The adapter checks its arguments before the runtime sees them.
    for case in ("adapter: empty batch", "adapter: ragged prompts", "adapter: 1-D prompt"):
        assert "rejected" in by_case[case], (runtime, case)


def test_a_crash_in_the_child_names_the_case():
    code = "import ctypes; print('START generate: boom', flush=True); ctypes.string_at(0)"
    status, stdout, stderr = run_child(code, [], timeout=60)
    records, died = parse_child_output(status, stdout, stderr)
    assert records == [] and died is not None and "'generate: boom'" in died and status != 0


if __name__ == "__main__":  # python tests/test_fuzz_exported.py DIR: build once, to try the child by hand
    print(json.dumps(build_export(sys.argv[1])))
