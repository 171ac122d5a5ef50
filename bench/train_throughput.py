"""Training throughput: tfzoo's GPT against keras-hub's GPT-2 at the same shape, in one run.

Both models: vocabulary 256, 4 layers, 4 heads, hidden 128, intermediate 512,
sequence 128, batch 16, AdamW, XLA (`jit_compile=True`), the same random
batches. Each side is warmed up (compilation excluded), then timed over the
same number of steps; the slower side is timed again and the best of the
repeats counts, to damp this machine's noise. Prints one JSON line.

    python bench/train_throughput.py [--steps 30] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from timing import machine  # bench/timing.py (a script's own folder is on sys.path)

SHAPE = dict(vocabulary_size=256, num_layers=4, num_heads=4, hidden_dim=128, intermediate_dim=512)
SEQ_LEN, BATCH = 128, 16


def _tfzoo_model() -> keras.Model:
    from tfzoo.models.gpt import GPT  # noqa: PLC0415 (after the thread settings)

    return GPT(max_sequence_length=SEQ_LEN, position="learned", dropout=0.0, **SHAPE)


def _keras_hub_model() -> keras.Model:
    import keras_hub  # noqa: PLC0415 (after the thread settings)

    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=SHAPE["vocabulary_size"],
        num_layers=SHAPE["num_layers"],
        num_heads=SHAPE["num_heads"],
        hidden_dim=SHAPE["hidden_dim"],
        intermediate_dim=SHAPE["intermediate_dim"],
        dropout=0.0,
        max_sequence_length=SEQ_LEN,
    )
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    padding_mask = keras.ops.ones_like(token_ids)
    lm = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    logits = lm({"token_ids": token_ids, "padding_mask": padding_mask})
    return keras.Model(token_ids, logits)


def _time(model: keras.Model, data: tf.data.Dataset, steps: int, repeats: int) -> float:
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.1, global_clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    model.fit(data, steps_per_epoch=3, epochs=1, verbose=0)  # compile + warm up
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
        elapsed = time.perf_counter() - start
        best = max(best, steps * BATCH * SEQ_LEN / elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, SHAPE["vocabulary_size"], size=(64, BATCH, SEQ_LEN + 1)).astype("int32")
    data = tf.data.Dataset.from_tensor_slices((tokens[:, :, :-1], tokens[:, :, 1:])).repeat()
    keras.utils.set_random_seed(0)
    tfzoo = _time(_tfzoo_model(), data, args.steps, args.repeats)
    keras.utils.set_random_seed(0)
    hub = _time(_keras_hub_model(), data, args.steps, args.repeats)
    print(
        json.dumps(
            {
                "benchmark": "train_throughput",
                "shape": dict(SHAPE, seq_len=SEQ_LEN, batch_size=BATCH),
                "steps": args.steps,
                "tfzoo_tokens_per_s": round(tfzoo, 1),
                "keras_hub_tokens_per_s": round(hub, 1),
                "ratio": round(tfzoo / hub, 3),
                "machine": machine("tensorflow", "keras", "keras-hub"),
            }
        )
    )


if __name__ == "__main__":
    main()
