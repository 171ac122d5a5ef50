"""What stop sequences and banned sequences cost per decoding step, beside the run without them.

Prints one JSON line. One `Generator` per case, greedy, batch 1, prompt 16 tokens, `--new` new
tokens, no EOS (every case generates the same number of tokens: the stop sequences never match and
the bans are of ids the run does not emit: checked, `same_lengths`), the graph without XLA on a
growing cache (what the TFLite and ONNX exports run), random weights, warm-up excluded, median of
`--repeats` interleaved runs (`timing.timed_ms`). Cases:

- `none` (the peer): the options left out of the graph (`Generator` without tables);
- `empty_tables`: the export's signature fed all -1 tables (4 x 16 stop, 16 x 16 banned): only the
  conditionals' "any entry >= 0" tests run;
- `stop_and_ban`: 4 stop sequences of 16 tokens and 16 banned sequences of 16 tokens, all checked
  every step (`tfzoo.decoding.sequences`).

    python bench/stop_ban_cost.py [--shape=small|gpt2] [--new=32] [--repeats=6]

`small`: vocabulary 256, 4 layers x 128 (the zoo's tiny GPT); `gpt2`: GPT-2-small's shape
(vocabulary 50257, 12 layers x 768, 1024 positions).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

from tfzoo.decoding.generator import Generator
from tfzoo.decoding.sequences import DEFAULT_SHAPES
from tfzoo.models.gpt import GPT

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import machine, timed_ms

SHAPES = {
    "small": dict(vocabulary_size=256, num_layers=4, num_heads=4, hidden_dim=128, intermediate_dim=512,
                  max_sequence_length=256),
    "gpt2": dict(vocabulary_size=50257, num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072,
                 max_sequence_length=1024),
}  # fmt: skip
PROMPT = 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="small", choices=sorted(SHAPES))
    parser.add_argument("--new", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=6)
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    shape = SHAPES[args.shape]
    model = GPT(**shape)
    model.build((None, None))
    vocabulary = shape["vocabulary_size"]
    max_length = PROMPT + args.new
    prompt = np.random.default_rng(0).integers(2, vocabulary, size=(1, PROMPT)).astype(np.int32)
    lengths = np.array([PROMPT], np.int32)
    settings = dict(max_length=max_length, strategy="greedy", jit_compile=False, grow_cache=True)
    peer = Generator(model, **settings)
    fixed = Generator(model, **settings, sequence_shapes=DEFAULT_SHAPES)
    plain = peer(prompt, lengths, max_new_tokens=args.new)
    emitted = set(plain["sequences"][0, PROMPT:].tolist())
    unused = [t for t in range(vocabulary - 1, 1, -1) if t not in emitted]  # ids this run never emits
    stop = [[unused[0]] * 16 for _ in range(4)]  # never matches
    banned = [[unused[1 + (i % 8)]] * 16 for i in range(16)]  # prefixes never match either

    empty = {name: tf.constant(np.full(s, -1, np.int32)) for name, s in DEFAULT_SHAPES.items()}
    full = {
        "stop_sequences": tf.constant(np.asarray(stop, np.int32)),
        "banned_sequences": tf.constant(np.asarray(banned, np.int32)),
    }
    knobs = {name: tf.constant(value) for name, value in (("max_new_tokens", np.int32(args.new)),)}
    ids, lens = tf.constant(prompt), tf.constant(lengths)

    def run(generator, tables):
        return lambda: generator.function(ids, lens, **knobs, **tables)

    cases = {"none": run(peer, {}), "empty_tables": run(fixed, empty), "stop_and_ban": run(fixed, full)}
    outputs = {name: call() for name, call in cases.items()}
    same = len({int(out["sequence_lengths"][0]) for out in outputs.values()}) == 1
    median, fastest = timed_ms(cases, repeats=args.repeats)
    per_step = {name: round(ms / args.new, 3) for name, ms in median.items()}
    print(
        json.dumps(
            {
                "bench": "stop_ban_cost",
                "shape": args.shape,
                "new_tokens": args.new,
                "prompt": PROMPT,
                "table_shapes": {name: list(s) for name, s in DEFAULT_SHAPES.items()},
                "same_lengths": same,
                "ms_per_run_median": median,
                "ms_per_run_fastest": fastest,
                "ms_per_step": per_step,
                "ms_per_step_over_none": {n: round(v - per_step["none"], 3) for n, v in per_step.items()},
                "machine": machine("tensorflow", "keras"),
            }
        )
    )


if __name__ == "__main__":
    main()
