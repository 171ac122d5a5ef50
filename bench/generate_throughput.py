"""Generation throughput: tfzoo's in-graph decoders against keras-hub's GPT2CausalLM samplers.

Prints one JSON line. Both sides run the same shape (vocabulary 256, 4 layers,
4 heads, hidden 128, intermediate 512, prompt 32 tokens, 64 new tokens, batch
1) compiled with XLA, untrained random weights, no stop token (so both generate
exactly 64 tokens), warm-up excluded, median of `--repeats` timed runs taken
interleaved, all in one process (machine noise is large: read the ratios). Also: cached vs
uncached tfzoo greedy at 256 new tokens, and the per-token cost at 32 vs 256
new tokens.

    python bench/generate_throughput.py [--repeats=9]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from tfzoo.decoding.generate import generate
from tfzoo.decoding.generator import Generator
from tfzoo.decoding.uncached import uncached_step_fn
from tfzoo.models.gpt import GPT

SHAPE = dict(vocabulary_size=256, num_layers=4, num_heads=4, hidden_dim=128, intermediate_dim=512)
PROMPT, NEW, BATCH, LONG = 32, 64, 1, 256


def _tfzoo(model, prompt, strategy: str, new_tokens: int):
    generator = Generator(model, max_length=PROMPT + new_tokens, strategy=strategy, beam_size=4)
    lengths = np.full([BATCH], PROMPT, np.int32)

    def run():
        out = generator(prompt, lengths, max_new_tokens=new_tokens, length_penalty=0.0)
        assert (out["sequence_lengths"] == PROMPT + new_tokens).all()

    return run


def _tfzoo_uncached(model, prompt, new_tokens: int):
    max_length = PROMPT + new_tokens
    step_fn, init_cache = uncached_step_fn(model, max_length)

    @tf.function(jit_compile=True, autograph=False)
    def decode(token_ids, lengths, max_new_tokens):
        return generate(
            step_fn,
            init_cache(tf.shape(token_ids)[0]),
            token_ids,
            lengths,
            max_length=max_length,
            max_new_tokens=max_new_tokens,
        )

    def run():
        out = decode(tf.constant(prompt), tf.fill([BATCH], PROMPT), tf.constant(new_tokens))
        assert (out["sequence_lengths"].numpy() == max_length).all()

    return run


def _keras_hub(prompt, sampler):
    backbone = keras_hub.models.GPT2Backbone(max_sequence_length=PROMPT + NEW, dropout=0.0, **SHAPE)
    causal_lm = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    causal_lm.compile(sampler=sampler, jit_compile=True)
    token_ids = np.zeros([BATCH, PROMPT + NEW], np.int32)
    token_ids[:, :PROMPT] = prompt
    padding_mask = np.zeros([BATCH, PROMPT + NEW], bool)
    padding_mask[:, :PROMPT] = True
    inputs = {"token_ids": token_ids, "padding_mask": padding_mask}

    def run():
        out = causal_lm.generate(inputs, stop_token_ids=None)
        assert out["padding_mask"].sum() == BATCH * (PROMPT + NEW)

    return run


def _median_seconds(runners: dict, repeats: int) -> dict[str, float]:
    """Warms every runner up, then times them interleaved (load swings hit all alike); median per runner."""
    for run in runners.values():
        run()  # tracing and XLA compilation
    times = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    prompt = np.random.default_rng(0).integers(3, SHAPE["vocabulary_size"], size=(BATCH, PROMPT)).astype(np.int32)
    model = GPT(max_sequence_length=PROMPT + LONG, **SHAPE)
    model(prompt)  # build

    runners = {
        "tfzoo_greedy": _tfzoo(model, prompt, "greedy", NEW),
        "keras_hub_greedy": _keras_hub(prompt, keras_hub.samplers.GreedySampler()),
        "tfzoo_beam4": _tfzoo(model, prompt, "beam", NEW),
        "keras_hub_beam4": _keras_hub(prompt, keras_hub.samplers.BeamSampler(num_beams=4)),
    }
    seconds = _median_seconds(runners, args.repeats)
    result = {f"{name}_tokens_per_s": BATCH * NEW / value for name, value in seconds.items()}
    result["greedy_speedup"] = seconds["keras_hub_greedy"] / seconds["tfzoo_greedy"]
    result["beam4_speedup"] = seconds["keras_hub_beam4"] / seconds["tfzoo_beam4"]
    seconds = _median_seconds(
        {
            "cached_256": _tfzoo(model, prompt, "greedy", LONG),
            "uncached_256": _tfzoo_uncached(model, prompt, LONG),
            "cached_32": _tfzoo(model, prompt, "greedy", 32),
        },
        args.repeats,
    )
    result.update(
        {
            "tfzoo_cached_greedy_256_tokens_per_s": BATCH * LONG / seconds["cached_256"],
            "tfzoo_uncached_greedy_256_tokens_per_s": BATCH * LONG / seconds["uncached_256"],
            "cached_over_uncached_256": seconds["uncached_256"] / seconds["cached_256"],
            "tfzoo_ms_per_token_32_new": 1000.0 * seconds["cached_32"] / 32,
            "tfzoo_ms_per_token_256_new": 1000.0 * seconds["cached_256"] / LONG,
            "per_token_cost_growth_32_to_256": (seconds["cached_256"] / LONG) / (seconds["cached_32"] / 32),
            "shape": dict(SHAPE, prompt=PROMPT, new_tokens=NEW, batch=BATCH),
            "repeats": args.repeats,
        }
    )
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}))


if __name__ == "__main__":
    main()
