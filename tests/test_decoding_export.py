"""The whole decode loop (greedy, sampling, beam) converts to TFLite builtins and ONNX and gives the same tokens.

`check_portable` compares eager TensorFlow with XLA, TFLite (builtins only,
`ai_edge_litert`) and ONNX Runtime. One function holds several strategies, so
each model is converted once (tf2onnx's optimizer takes most of the time).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from export_checks import check_portable
from tfzoo.decoding.generate import generate
from tfzoo.decoding.sampling import uniform_hash
from tfzoo.models.gpt import GPT
from toy_models import ToyLM

EOS = 1
KNOBS = dict(
    max_new_tokens=np.array(7, np.int32),
    repetition_penalty=np.array(1.3, np.float32),
    no_repeat_ngram_size=np.array(2, np.int32),
    length_penalty=np.array(0.6, np.float32),
    temperature=np.array(0.9, np.float32),
    top_k=np.array(5, np.int32),
    top_p=np.array(0.9, np.float32),
    seed=np.array(11, np.int32),
)


def _strategies(model, max_length, strategies):
    def fn(token_ids, lengths, **knobs):
        outputs = {}
        for strategy in strategies:
            cache = model.init_cache(tf.shape(token_ids)[0], max_length)
            result = generate(
                model.call_with_cache,
                cache,
                token_ids,
                lengths,
                max_length=max_length,
                strategy=strategy,
                beam_size=3,
                eos_ids=(EOS,),
                banned_ids=(0,),
                **knobs,
            )
            outputs.update({f"{strategy}_{key}": value for key, value in result.items()})
        return outputs

    return fn


def _check(outputs, lengths, strategies):
    for strategy in strategies:
        assert (outputs[f"{strategy}_sequence_lengths"] > lengths).all(), strategy  # really generated
        assert not (outputs[f"{strategy}_sequences"][:, 2:] == 0).all(), strategy


def test_toy_model_decoding_is_portable():
    model = ToyLM(vocabulary_size=7, max_sequence_length=16, seed=3)
    inputs = dict(token_ids=np.array([[2, 3, 4], [5, 6, 0]], np.int32), lengths=np.array([3, 2], np.int32), **KNOBS)
    strategies = ("greedy", "sample", "beam")
    _check(check_portable(_strategies(model, 12, strategies), inputs, atol=1e-4), inputs["lengths"], strategies)


def test_gpt_decoding_is_portable():
    model = GPT(
        vocabulary_size=24, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=16
    )
    model(np.zeros((1, 2), np.int32))  # build
    inputs = dict(
        token_ids=np.array([[5, 6, 7, 8], [9, 10, 0, 0]], np.int32), lengths=np.array([4, 2], np.int32), **KNOBS
    )
    strategies = ("greedy", "beam")  # sampling adds nothing model-specific; the toy covers it
    knobs = {key: value for key, value in KNOBS.items() if key not in ("temperature", "top_k", "top_p", "seed")}
    inputs = {key: value for key, value in inputs.items() if key in knobs or key in ("token_ids", "lengths")}
    _check(check_portable(_strategies(model, 14, strategies), inputs, atol=1e-4), inputs["lengths"], strategies)


def test_uniform_hash_is_the_same_in_every_runtime_for_negative_inputs():
    """Bit for bit in XLA, TFLite and ONNX for any int32 (tf2onnx's int `FloorDiv`/`FloorMod` truncate toward
    zero, which `uniform_hash` must not depend on: a negative seed once drew other tokens in ONNX)."""
    p = 46337
    seeds = [0, 1, -1, -7, p, -p, p * p, -p * p, -p * p - 1, 2**31 - 1, -(2**31), -(2**31) + 1, 12345, -12345]
    inputs = dict(
        seed=np.array(seeds, np.int32),
        row=np.array([0, 1, 2, -1, -5, 3] * 2 + [0, -(2**31)], np.int32),
        step=np.array(list(range(12)) + [-1, 2**31 - 1], np.int32),
    )
    check_portable(lambda seed, row, step: {"uniform": uniform_hash(seed, row, step)}, inputs, atol=0.0)
