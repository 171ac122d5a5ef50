"""CPU seconds per decoded token of the exported TFLite `generate` (int8 against int4) over the decode bench's cache.

On a shared machine wall-clock decode speed swings by 3x between runs; the CPU time a process spends is
steadier. Each round runs every file in a fresh process (interleaved): the bench's own feed
(`decode_gpt2._knob_feed`: its seeded prompt, greedy, no stop), a warm-up of 8 tokens, then 1 and
`--new_tokens` tokens, timed with `time.process_time` and `time.perf_counter`. Prints one JSON line:
per file the median decode tokens per CPU second and per wall second, the fastest wall-clock run, and
the prefill's CPU seconds.

    python bench/decode_gpt2.py --systems=tflite_int8_generate,tflite_int4_generate --repeats=1   # builds the cache
    python bench/tflite_decode_cpu.py --facts=/tmp/tfzoo_decode_bench/<key>/facts.json [--keys tflite_int8,tflite_int4]
        [--threads 2] [--rounds 5] [--new_tokens 128]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MARK = "CPU_RESULT "


def child(facts_path: str, key: str, threads: int, new_tokens: int) -> None:
    import numpy as np  # noqa: PLC0415 (only in the child)
    from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415 (only in the child)

    sys.path.insert(0, HERE)
    from decode_gpt2 import _knob_feed  # noqa: PLC0415 (the bench's own feed)

    with open(facts_path, encoding="utf-8") as file:
        facts = json.load(file)
    runner = Interpreter(model_path=facts["export"]["artefacts"][key], num_threads=threads).get_signature_runner(
        "generate"
    )
    details = {name: (d["dtype"], d["shape"]) for name, d in runner.get_input_details().items()}
    prompt = np.asarray(facts["prompt"], np.int32)

    def run(count: int) -> None:
        runner(**_knob_feed(details, prompt, count))

    run(8)
    times = {}
    for count in (1, new_tokens):
        cpu, wall = time.process_time(), time.perf_counter()
        run(count)
        times[count] = (time.process_time() - cpu, time.perf_counter() - wall)
    steps = new_tokens - 1
    result = {
        "cpu_tok_s": steps / max(times[new_tokens][0] - times[1][0], 1e-9),
        "wall_tok_s": steps / max(times[new_tokens][1] - times[1][1], 1e-9),
        "prefill_cpu_s": times[1][0],
    }
    print(MARK + json.dumps(result), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--facts", required=True, help="facts.json of a bench/decode_gpt2.py cache folder.")
    parser.add_argument("--keys", default="tflite_int8,tflite_int4", help="Artefact keys of its export.")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--new_tokens", type=int, default=128)
    parser.add_argument("--_child", dest="internal_child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.internal_child:
        child(args.facts, args.internal_child, args.threads, args.new_tokens)
        return
    keys = [k for k in args.keys.split(",") if k]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", OMP_NUM_THREADS=str(args.threads))
    runs: dict[str, list[dict]] = {key: [] for key in keys}
    for _ in range(args.rounds):
        for key in keys:
            command = [sys.executable, os.path.abspath(__file__), f"--facts={args.facts}", f"--_child={key}"]
            command += [f"--threads={args.threads}", f"--new_tokens={args.new_tokens}"]
            out = subprocess.run(command, capture_output=True, text=True, env=env, check=False).stdout
            runs[key] += [json.loads(line[len(MARK) :]) for line in out.splitlines() if line.startswith(MARK)]
    summary = {
        key: {
            "runs": len(results),
            "median_cpu_tok_s": round(statistics.median(r["cpu_tok_s"] for r in results), 2),
            "median_wall_tok_s": round(statistics.median(r["wall_tok_s"] for r in results), 2),
            "best_wall_tok_s": round(max(r["wall_tok_s"] for r in results), 2),
            "median_prefill_cpu_s": round(statistics.median(r["prefill_cpu_s"] for r in results), 3),
        }
        for key, results in runs.items()
        if results
    }
    print(json.dumps({"threads": args.threads, "new_tokens": args.new_tokens, "rounds": args.rounds, **summary}))


if __name__ == "__main__":
    main()
