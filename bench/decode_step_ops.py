"""TFLite op histogram of a GPT's exported `decode` step and `generate` loop body, this tree against a baseline.

One model (seeded, random; tiny by default, `--shape=gpt2` for GPT-2-small's 12 x 768, vocabulary
50257) is saved once as `.keras`; a fresh process per tree loads it with that tree's code, exports
`decode` and the greedy `generate` (the portable graphs the export converts, builtins only), and
counts the operators of the `decode` subgraph and of the largest `WHILE` body. It also runs
`decode` on a seeded cache and returns the logits, so the two trees' numerics are compared on the
same weights (and the baseline's `.keras` is loaded by this tree's code), and times `--calls` more
(XNNPACK, 2 threads; the two trees one after the other, so a loaded machine makes it noisy). Prints
one JSON line with both histograms, the op-count and time ratios (this tree / baseline) and the
largest logit difference.

    python bench/decode_step_ops.py [--baseline=main] [--after=REV] [--shape=tiny|gpt2] [--max_length=64]
        [--quantization=none|int8] [--calls=20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MARK = "OPS_RESULT "
SHAPES = {
    "tiny": {"vocabulary_size": 64, "num_layers": 2, "num_heads": 2, "hidden_dim": 32, "intermediate_dim": 64},
    "gpt2": {"vocabulary_size": 50257, "num_layers": 12, "num_heads": 12, "hidden_dim": 768, "intermediate_dim": 3072},
}


def child(model_path: str, max_length: int, out_path: str, calls: int, quantization: str) -> None:
    """In the tree on `sys.path`: export `decode` + greedy `generate` of `model_path`, count ops, run `decode`."""
    import keras  # noqa: PLC0415 (only in the child)
    import numpy as np  # noqa: PLC0415
    from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

    import tfzoo  # noqa: PLC0415
    import tfzoo.models.gpt  # noqa: PLC0415 (registers GPT for `load_model`)
    from export.export_module import ExportModule  # noqa: PLC0415
    from export.pipeline import _write_saved_model  # noqa: PLC0415 (the export's own scratch SavedModel)
    from export.tflite_export import convert_tflite  # noqa: PLC0415

    model = keras.saving.load_model(model_path)
    module = ExportModule(model, max_length=max_length, strategy="greedy", strategies=("greedy",), eos_ids=(1,))
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer = os.path.join(scratch, "tokenizer.json")
        with open(tokenizer, "w", encoding="utf-8") as file:
            json.dump({"type": "byte"}, file)
        saved = os.path.join(scratch, "saved_model")
        _write_saved_model(module, saved, tokenizer, names=["generate", "decode"], portable=True)
        flatbuffer = convert_tflite(saved, ["generate", "decode"], quantization)
    runner = Interpreter(model_content=flatbuffer, num_threads=2).get_signature_runner("decode")
    details = runner.get_input_details()
    rng = np.random.default_rng(0)
    feed = {}
    for name, detail in details.items():
        shape = [int(s) for s in detail["shape"]]
        if name.startswith("past_"):
            shape[2] = max_length
            feed[name] = rng.normal(size=shape).astype(np.float32)
        elif name == "positions":
            feed[name] = np.full(shape, max_length // 2, np.int32)
        else:
            feed[name] = rng.integers(0, model.vocabulary_size, size=shape).astype(np.int32)
    logits = runner(**feed)["logits"]  # the runner resizes the inputs
    np.save(out_path, logits)
    with open(out_path + ".tflite", "wb") as file:  # counted by the parent, with this tree's reader
        file.write(flatbuffer)
    times = []
    for _ in range(calls):  # the same step again: what one decode call costs (XNNPACK, 2 threads)
        start = time.perf_counter()
        runner(**feed)
        times.append(time.perf_counter() - start)
    facts = {"tfzoo": os.path.dirname(tfzoo.__file__), "decode_ms": 1e3 * float(np.median(times)) if times else None}
    print(MARK + json.dumps(facts), flush=True)


def run_tree(tree: str, model_path: str, max_length: int, out_path: str, calls: int, quantization: str) -> dict:
    env = dict(os.environ, PYTHONPATH=tree, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    command = [sys.executable, os.path.abspath(__file__), f"--_child={model_path}", f"--max_length={max_length}"]
    command += [f"--out={out_path}", f"--calls={calls}", f"--quantization={quantization}"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if not lines:
        raise SystemExit(f"decode_step_ops: the child in {tree} failed:\n{done.stderr[-3000:]}")
    sys.path.insert(0, ROOT)  # this tree's reader, whatever the tree measured
    from export.tflite_export import non_builtin_ops, op_histograms  # noqa: PLC0415

    with open(out_path + ".tflite", "rb") as file:
        flatbuffer = file.read()
    facts = json.loads(lines[-1][len(MARK) :])
    return {**facts, "custom_ops": non_builtin_ops(flatbuffer), **op_histograms(flatbuffer)}


def _checkout(revision: str, directory: str) -> str:
    """The files of `revision` of this repository, extracted into `directory` (made)."""
    os.makedirs(directory)
    archive = subprocess.run(["git", "-C", ROOT, "archive", revision], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", directory], input=archive.stdout, check=True)
    return directory


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="main", help="A git revision of this repository to compare with.")
    parser.add_argument("--after", default=None, help="A git revision to measure instead of this working tree.")
    parser.add_argument("--shape", default="tiny", choices=sorted(SHAPES))
    parser.add_argument("--max_length", type=int, default=64)
    parser.add_argument("--quantization", default="none", choices=("none", "int8"), help="Of the TFLite file.")
    parser.add_argument("--calls", type=int, default=20, help="Timed decode calls per tree (median).")
    parser.add_argument("--_child", dest="internal_child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.internal_child:
        child(args.internal_child, args.max_length, args.out, args.calls, args.quantization)
        return
    import numpy as np  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as scratch:
        baseline = _checkout(args.baseline, os.path.join(scratch, "baseline"))
        tree = ROOT if args.after is None else _checkout(args.after, os.path.join(scratch, "after"))
        model_path = os.path.join(scratch, "model.keras")
        # The model is made and saved by the baseline's code: this tree must load its `.keras` unchanged.
        # Every weight is perturbed (zero biases, unit gains would let a converter fold their ops away).
        make = (
            "import keras, sys, numpy as np; from tfzoo.models.gpt import GPT; keras.utils.set_random_seed(0); "
            f"m = GPT(**{SHAPES[args.shape]!r}, max_sequence_length={args.max_length}, activation='gelu_tanh'); "
            "m.build((None, None)); rng = np.random.default_rng(0)\n"
            "for v in m.weights: v.assign(v.numpy() + rng.normal(0, 0.05, v.shape).astype('float32'))\n"
            "m.save(sys.argv[1])"
        )
        env = dict(os.environ, PYTHONPATH=baseline, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
        subprocess.run([sys.executable, "-c", make, model_path], env=env, check=True, capture_output=True)
        timing = (args.calls, args.quantization)
        before = run_tree(baseline, model_path, args.max_length, os.path.join(scratch, "before.npy"), *timing)
        after = run_tree(tree, model_path, args.max_length, os.path.join(scratch, "after.npy"), *timing)
        logits = [np.load(os.path.join(scratch, f"{name}.npy")) for name in ("before", "after")]
        difference = float(np.max(np.abs(logits[0] - logits[1])))
    summary = {"shape": args.shape, "max_length": args.max_length, "quantization": args.quantization}
    summary.update(baseline=args.baseline, after=args.after)
    for graph in ("decode", "while_body"):
        if graph in before and graph in after:
            b, a = sum(before[graph].values()), sum(after[graph].values())
            summary[graph] = {"ops_before": b, "ops_after": a, "ratio": round(a / b, 3)}
    summary["decode_logits_max_abs_difference"] = difference
    summary["decode_logits_max_abs"] = float(np.max(np.abs(logits[0])))  # the scale of that difference
    if before.get("decode_ms") and after.get("decode_ms"):  # one child after the other: noisy on a loaded machine
        summary["decode_ms"] = {"before": round(before["decode_ms"], 3), "after": round(after["decode_ms"], 3)}
        summary["decode_ms"]["ratio"] = round(after["decode_ms"] / before["decode_ms"], 3)
    summary["custom_ops"] = {"before": before["custom_ops"], "after": after["custom_ops"]}
    summary["histograms"] = {"before": {k: before[k] for k in ("decode", "while_body") if k in before}}
    summary["histograms"]["after"] = {k: after[k] for k in ("decode", "while_body") if k in after}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
