"""The growing KV cache (`init_cache(..., grow=True)`): the same tokens as the fixed-size cache, in every runtime.

A growing cache holds the tokens run so far (prompt width, then one slot per step), so a step
costs what the cache holds instead of `max_length`; the exports use it wherever XLA does not run
(TFLite, ONNX). These tests compare it with the fixed cache on a GPT whose weights are perturbed
so that its greedy continuations differ by prompt, on a right-padded batch whose rows sit at
different positions, for every position encoding and strategy, over contexts of several dozen slots.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from export_checks import check_portable
from tfzoo.decoding.generate import generate
from tfzoo.decoding.generator import Generator
from tfzoo.decoding.validation import DecodingError
from tfzoo.kinds import kind_of
from tfzoo.models.gpt import GPT
from tfzoo.models.transformer import Transformer

PROMPTS = np.array([[5, 6, 7, 8, 9, 3], [10, 11, 0, 0, 0, 0], [12, 13, 14, 15, 0, 0]], np.int32)
LENGTHS = np.array([6, 2, 4], np.int32)
MAX_LENGTH = 48  # room for 40+ new tokens: the growing cache ends 8x longer than the prompts
# n-gram blocking keeps the random model from settling into a loop, so the continuations stay varied.
KNOBS = {
    "greedy": dict(max_new_tokens=40, repetition_penalty=1.2, no_repeat_ngram_size=2),
    "beam": dict(max_new_tokens=30, length_penalty=0.8, no_repeat_ngram_size=2),
    "sample": dict(max_new_tokens=40, temperature=0.9, top_k=8, seed=5, no_repeat_ngram_size=2),
}


def _gpt(position: str, seed: int = 0) -> GPT:
    tf.keras.utils.set_random_seed(seed)
    model = GPT(
        vocabulary_size=48,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=MAX_LENGTH,
        position=position,
    )
    model(np.zeros((1, 2), np.int32))  # build
    rng = np.random.default_rng(seed)
    for weight in model.weights:  # perturbed: sharp, prompt-dependent continuations
        weight.assign(weight.numpy() + rng.normal(0.0, 0.4, weight.shape).astype("float32"))
    return model


@pytest.mark.parametrize("position", ["learned", "sinusoidal", "rotary", "alibi", "relative"])
@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_growing_cache_decodes_the_same_tokens(position, strategy):
    model = _gpt(position)
    fixed = Generator(model, max_length=MAX_LENGTH, strategy=strategy, beam_size=3)
    growing = Generator(
        model, max_length=MAX_LENGTH, strategy=strategy, beam_size=3, jit_compile=False, grow_cache=True
    )
    want = fixed(PROMPTS, LENGTHS, **KNOBS[strategy])
    got = growing(PROMPTS, LENGTHS, **KNOBS[strategy])
    np.testing.assert_array_equal(got["sequences"], want["sequences"])
    np.testing.assert_array_equal(got["sequence_lengths"], want["sequence_lengths"])
    np.testing.assert_allclose(got["scores"], want["scores"], atol=1e-4)
    for row, length in enumerate(LENGTHS):  # a real comparison: long, varied continuations
        new = want["sequences"][row, length : want["sequence_lengths"][row]]
        assert len(new) >= 25 and len(set(new.tolist())) >= 8, (row, new)


def test_growing_cache_holds_the_tokens_run():
    model = _gpt("learned")
    cache = model.init_cache(3, MAX_LENGTH, grow=True)
    positions = np.where(np.arange(6)[None, :] < LENGTHS[:, None], np.arange(6)[None, :], -1).astype(np.int32)
    _, cache = model.call_with_cache(PROMPTS, positions, cache)
    _, cache = model.call_with_cache(np.array([[2], [3], [4]], np.int32), LENGTHS[:, None], cache)
    keys, values = cache["layers"][0]
    assert tuple(keys.shape) == (3, 2, 7, 8) and tuple(values.shape) == (3, 2, 7, 8)
    np.testing.assert_array_equal(np.asarray(cache["positions"])[:, 6], LENGTHS)
    np.testing.assert_array_equal(np.asarray(cache["positions"])[1, :6], [0, 1, -1, -1, -1, -1])


def test_growing_cache_is_portable():
    """Greedy and beam with a growing cache: the same tokens in TensorFlow, TFLite builtins and ONNX Runtime."""
    model = _gpt("learned", seed=2)

    def fn(token_ids, lengths):
        outputs = {}
        for strategy in ("greedy", "beam"):
            cache = model.init_cache(tf.shape(token_ids)[0], 24, grow=True)
            result = generate(
                model.call_with_cache,
                cache,
                token_ids,
                lengths,
                max_length=24,
                strategy=strategy,
                beam_size=2,
                grow_cache=True,
                max_new_tokens=18,
                no_repeat_ngram_size=2,
            )
            outputs.update({f"{strategy}_{key}": value for key, value in result.items()})
        return outputs

    inputs = {"token_ids": PROMPTS, "lengths": LENGTHS}
    outputs = check_portable(fn, inputs, atol=1e-4, xla=False)
    fixed = Generator(model, max_length=24, strategy="greedy")
    fixed = fixed(PROMPTS, LENGTHS, max_new_tokens=18, no_repeat_ngram_size=2)
    np.testing.assert_array_equal(outputs["greedy_sequences"], fixed["sequences"])
    assert (outputs["beam_sequence_lengths"] > LENGTHS).all()


def test_growing_cache_needs_no_xla_and_a_decoder_only_model():
    model = _gpt("learned")
    with pytest.raises(DecodingError, match="XLA"):
        Generator(model, max_length=16, grow_cache=True)
    transformer = Transformer(
        vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=8
    )
    with pytest.raises(DecodingError, match="decoder-only"):
        kind_of(transformer).generator(max_length=8, jit_compile=False, grow_cache=True)


def test_decoding_mode_takes_xla_for_small_models_and_the_growing_cache_for_large_ones(monkeypatch):
    from tfzoo.decoding import generator as generator_module

    model = _gpt("learned")
    assert generator_module.decoding_mode(model) == {"jit_compile": True, "grow_cache": False}
    assert generator_module.decoding_mode(model, False) == {"jit_compile": False, "grow_cache": True}
    monkeypatch.setattr(generator_module, "XLA_MAX_WEIGHT_BYTES", 1000)  # as if the model were GPT-2-sized
    large = generator_module.decoding_mode(model)
    assert large == {"jit_compile": False, "grow_cache": True}
    assert generator_module.decoding_mode(model, True) == {"jit_compile": True, "grow_cache": False}
    small = Generator(model, max_length=MAX_LENGTH, **generator_module.decoding_mode(model, True))
    want = small(PROMPTS, LENGTHS, **KNOBS["greedy"])
    got = Generator(model, max_length=MAX_LENGTH, **large)(PROMPTS, LENGTHS, **KNOBS["greedy"])
    np.testing.assert_array_equal(got["sequences"], want["sequences"])
