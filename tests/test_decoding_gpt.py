"""Decoding the real GPT: cached == uncached for every position type, a batch equals its rows, XLA."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfzoo.decoding.generate import generate
from tfzoo.decoding.generator import Generator
from tfzoo.decoding.uncached import uncached_step_fn
from tfzoo.models.gpt import GPT

EOS = 1
PROMPTS = np.array([[5, 6, 7, 8, 9], [10, 11, 0, 0, 0], [12, 13, 14, 0, 0]], np.int32)
LENGTHS = np.array([5, 2, 3], np.int32)


def _gpt(position="learned", seed=0):
    tf.keras.utils.set_random_seed(seed)
    model = GPT(
        vocabulary_size=32,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=24,
        position=position,
    )
    model(np.zeros((1, 2), np.int32))  # build
    # Random init gives near-uniform logits; sharpen them so that near-ties between tokens are rare.
    embedding = model.token_embedding.embeddings
    embedding.assign(embedding * 40.0)
    return model


def _run(step_fn, cache, token_ids=PROMPTS, lengths=LENGTHS, **kwargs):
    fn = tf.function(lambda ids, lens: generate(step_fn, cache, ids, lens, **kwargs), autograph=False)
    return {key: value.numpy() for key, value in fn(tf.constant(token_ids), tf.constant(lengths)).items()}


@pytest.mark.parametrize("position", ["learned", "sinusoidal", "relative", "rotary", "alibi"])
def test_cached_greedy_equals_uncached(position):
    model = _gpt(position)
    kwargs = dict(max_length=16, max_new_tokens=10, eos_ids=(EOS,))
    cached = _run(model.call_with_cache, model.init_cache(3, 16), **kwargs)
    step_fn, init_cache = uncached_step_fn(model, max_length=16)
    uncached = _run(step_fn, init_cache(3), **kwargs)
    np.testing.assert_array_equal(cached["sequences"], uncached["sequences"])
    np.testing.assert_array_equal(cached["sequence_lengths"], uncached["sequence_lengths"])
    np.testing.assert_allclose(cached["scores"], uncached["scores"], rtol=1e-4, atol=1e-4)
    assert len(np.unique(cached["sequences"][:, 5:])) > 2  # a real continuation, not one token repeated


@pytest.mark.parametrize("position", ["learned", "rotary"])
def test_cached_beam_search_equals_uncached(position):
    model = _gpt(position, seed=1)
    kwargs = dict(
        max_length=16,
        max_new_tokens=10,
        eos_ids=(EOS,),
        strategy="beam",
        beam_size=3,
        length_penalty=0.6,
        return_beams=True,
    )
    cached = _run(model.call_with_cache, model.init_cache(3, 16), **kwargs)
    step_fn, init_cache = uncached_step_fn(model, max_length=16)
    uncached = _run(step_fn, init_cache(3), **kwargs)
    np.testing.assert_array_equal(cached["beam_sequences"], uncached["beam_sequences"])
    np.testing.assert_allclose(cached["beam_scores"], uncached["beam_scores"], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_gpt_batch_equals_rows_one_by_one(strategy):
    model = _gpt(seed=2)
    generator = Generator(model, max_length=16, strategy=strategy, beam_size=3, eos_ids=(EOS,), jit_compile=False)
    knobs = dict(max_new_tokens=10, repetition_penalty=1.2, no_repeat_ngram_size=3)
    batch = generator(PROMPTS, LENGTHS, **knobs)
    for row in range(3):
        single = generator(PROMPTS[row : row + 1, : LENGTHS[row]], LENGTHS[row : row + 1], **knobs)
        np.testing.assert_array_equal(batch["sequences"][row], single["sequences"][0])
        np.testing.assert_allclose(batch["scores"][row], single["scores"][0], rtol=1e-4, atol=1e-4)


def test_gpt_generator_with_xla_matches_graph_mode():
    # (Greedy and beam search under XLA are also checked by test_decoding_export.py.)
    model = _gpt(seed=3)
    knobs = dict(max_new_tokens=9, top_k=6, top_p=0.9, temperature=0.7, seed=4)
    compiled = Generator(model, max_length=14, strategy="sample", eos_ids=(EOS,), jit_compile=True)
    graph = Generator(model, max_length=14, strategy="sample", eos_ids=(EOS,), jit_compile=False)
    a = compiled(PROMPTS, LENGTHS, **knobs)
    b = graph(PROMPTS, LENGTHS, **knobs)
    np.testing.assert_array_equal(a["sequences"], b["sequences"])
    np.testing.assert_allclose(a["scores"], b["scores"], rtol=1e-4, atol=1e-4)
    c = compiled(PROMPTS, LENGTHS, **{**knobs, "max_new_tokens": 5, "seed": 5})
    assert compiled.function.experimental_get_tracing_count() == 1  # knobs are inputs: no retrace
    assert (c["sequence_lengths"] <= LENGTHS + 5).all()


@pytest.mark.parametrize("grow", [False, True])
def test_last_token_prefill_equals_the_full_prefill(grow):
    """`logits_at` gives each row's last-token logits of the full prefill, and `generate` the same tokens."""
    model = _gpt("rotary", seed=2)
    cache = model.init_cache(3, 16, grow=grow)
    positions = np.tile(np.arange(5, dtype=np.int32), (3, 1))
    if grow:
        positions = np.where(positions < LENGTHS[:, None], positions, -1)
    full, _ = model.call_with_cache(PROMPTS, positions, cache)
    last, _ = model.call_with_cache(PROMPTS, positions, cache, logits_at=LENGTHS - 1)
    assert last.shape == (3, 1, 32)
    np.testing.assert_allclose(last.numpy()[:, 0], full.numpy()[np.arange(3), LENGTHS - 1], rtol=1e-5, atol=1e-5)

    def prefill(token_ids, positions, cache, at):
        return model.call_with_cache(token_ids, positions, cache, logits_at=at)

    kwargs = dict(max_length=16, max_new_tokens=10, grow_cache=grow)
    for strategy in ("greedy", "beam"):
        plain = _run(model.call_with_cache, cache, strategy=strategy, **kwargs)
        lean = _run(model.call_with_cache, cache, strategy=strategy, prefill_fn=prefill, **kwargs)
        np.testing.assert_array_equal(lean["sequences"], plain["sequences"])
        np.testing.assert_allclose(lean["scores"], plain["scores"], rtol=1e-5, atol=1e-5)
        assert len(np.unique(plain["sequences"][:, 5:])) > 2
    assert Generator(model, max_length=16, jit_compile=False)._prefill_fn() is not None
