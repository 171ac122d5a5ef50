"""Greedy, sampled and beam decoding on toy models whose answers can be computed exactly."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from tfzoo.decoding.generate import generate
from tfzoo.decoding.uncached import uncached_step_fn
from toy_models import TableLM, ToyLM

EOS = 1


def _run(model, token_ids, lengths, max_length, jit_compile=False, step_fn=None, cache=None, **kwargs):
    token_ids = np.asarray(token_ids, np.int32)
    if step_fn is None:
        step_fn, cache = model.call_with_cache, model.init_cache(token_ids.shape[0], max_length)

    def fn(token_ids, lengths):
        return generate(step_fn, cache, token_ids, lengths, max_length=max_length, **kwargs)

    if jit_compile:
        fn = tf.function(fn, jit_compile=True, autograph=False)
    out = fn(tf.constant(token_ids), tf.constant(np.asarray(lengths, np.int32)))
    return {key: value.numpy() for key, value in out.items()}


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _divisor(length, alpha, form):
    return length**alpha if form == "hf" else ((5.0 + length) / 6.0) ** alpha


def _exhaustive(model, prompt, max_new, alpha, form):
    """Every continuation of `prompt` (ending at EOS or after max_new tokens), best score first."""
    vocab = model.vocabulary_size
    hypotheses = []
    for n in range(1, max_new + 1):
        for tail in itertools.product(range(vocab), repeat=n):
            if EOS in tail[:-1] or (n < max_new and tail[-1] != EOS):
                continue
            sequence = list(prompt) + list(tail)
            log_probs = _log_softmax(model(np.array([sequence], np.int32)).numpy()[0])
            total = sum(log_probs[len(prompt) + i - 1, t] for i, t in enumerate(tail))
            hypotheses.append((total / _divisor(n, alpha, form), tail))
    return sorted(hypotheses, key=lambda h: -h[0])


def test_greedy_matches_a_step_by_step_argmax_loop():
    model = ToyLM(vocabulary_size=7, max_sequence_length=16, seed=3)
    prompts = [[2, 3, 4, 5], [6, 2, 0, 0]]
    out = _run(model, prompts, [4, 2], max_length=12, max_new_tokens=6, eos_ids=(EOS,))
    for row, length in enumerate([4, 2]):
        sequence, score = list(prompts[row][:length]), 0.0
        for _ in range(6):
            log_probs = _log_softmax(model(np.array([sequence], np.int32)).numpy()[0, -1])
            sequence.append(int(log_probs.argmax()))
            score += log_probs.max()
            if sequence[-1] == EOS:
                break
        assert out["sequence_lengths"][row] == len(sequence)
        np.testing.assert_array_equal(out["sequences"][row, : len(sequence)], sequence)
        assert (out["sequences"][row, len(sequence) :] == 0).all()  # padded with pad_id
        np.testing.assert_allclose(out["scores"][row], score, rtol=1e-5)


@pytest.mark.parametrize("eos_ids", [(), (EOS,)])
def test_beam_size_one_equals_greedy(eos_ids):
    model = ToyLM(vocabulary_size=6, max_sequence_length=16, seed=5)
    prompts, lengths = [[2, 3, 4], [5, 0, 0], [3, 3, 0]], [3, 1, 2]
    kwargs = dict(max_length=12, max_new_tokens=8, eos_ids=eos_ids)
    greedy = _run(model, prompts, lengths, **kwargs)
    beam = _run(model, prompts, lengths, strategy="beam", beam_size=1, length_penalty=0.0, **kwargs)
    np.testing.assert_array_equal(beam["sequences"], greedy["sequences"])
    np.testing.assert_array_equal(beam["sequence_lengths"], greedy["sequence_lengths"])
    np.testing.assert_allclose(beam["scores"], greedy["scores"], rtol=1e-5)


@pytest.mark.parametrize("form,alpha", [("hf", 0.0), ("hf", 1.0), ("hf", 2.5), ("gnmt", 0.6), ("gnmt", 3.0)])
def test_beam_search_equals_exhaustive_search(form, alpha):
    # Vocabulary 4 (EOS = 1), 3 new tokens: 16 beams keep every hypothesis until the last step, so beam
    # search is exact and its 16 finished hypotheses are the 16 best of all 40 continuations.
    model = ToyLM(vocabulary_size=4, max_sequence_length=12, scale=3.0, seed=11)
    prompts, lengths, max_new = [[2, 3, 0], [3, 0, 2]], [2, 3], 3
    out = _run(
        model,
        prompts,
        lengths,
        max_length=8,
        strategy="beam",
        beam_size=16,
        eos_ids=(EOS,),
        return_beams=True,
        max_new_tokens=max_new,
        length_penalty=alpha,
        length_penalty_form=form,
    )
    for row, length in enumerate(lengths):
        best = _exhaustive(model, prompts[row][:length], max_new, alpha, form)[:16]
        for rank, (score, tail) in enumerate(best):
            end = length + len(tail)
            assert out["beam_lengths"][row, rank] == end, (rank, tail)
            np.testing.assert_array_equal(out["beam_sequences"][row, rank, length:end], tail)
            np.testing.assert_allclose(out["beam_scores"][row, rank], score, rtol=1e-4)
        np.testing.assert_array_equal(out["sequences"][row], out["beam_sequences"][row, 0])
        np.testing.assert_allclose(out["scores"][row], best[0][0], rtol=1e-4)


def test_length_penalty_changes_the_winner():
    # EOS right away is likely, but a long continuation has a higher per-token probability.
    table = np.full((4, 4), -4.0, np.float32)
    table[2, EOS], table[2, 3] = 0.0, -0.3  # from 2: EOS (p~.55) or 3 (p~.41)
    table[3, 3] = 3.0  # then 3 repeats with p~.99
    model = TableLM(table)
    kwargs = dict(max_length=8, strategy="beam", beam_size=4, eos_ids=(EOS,), max_new_tokens=6)
    short = _run(model, [[2]], [1], length_penalty=0.0, **kwargs)
    long = _run(model, [[2]], [1], length_penalty=2.0, **kwargs)
    assert short["sequence_lengths"][0] == 2  # prompt + EOS
    assert long["sequence_lengths"][0] == 7  # prompt + 6 tokens


def test_beam_search_stops_when_no_beam_can_improve():
    table = np.full((5, 5), -3.0, np.float32)
    table[:, EOS] = 3.0  # every hypothesis ends almost surely right away
    model = TableLM(table)
    calls = tf.Variable(0)

    def counting_step(token_ids, positions, cache):
        calls.assign_add(1)
        return model.call_with_cache(token_ids, positions, cache)

    fn = tf.function(
        autograph=False,
        func=lambda ids, lens: generate(
            counting_step,
            model.init_cache(1, 40),
            ids,
            lens,
            max_length=40,
            strategy="beam",
            beam_size=3,
            eos_ids=(EOS,),
            max_new_tokens=30,
            length_penalty=0.0,
        ),
    )
    out = fn(tf.constant([[2]]), tf.constant([1]))
    assert int(out["sequence_lengths"][0]) == 2
    # Prefill, then 2 steps (each runs the model once on its new tokens): step 2 fills the finished set
    # and no live beam can beat it. 3 calls, not 31.
    assert int(calls.numpy()) == 3, int(calls.numpy())


@pytest.mark.parametrize("strategy", ["greedy", "sample", "beam"])
def test_cached_decoding_equals_uncached(strategy):
    model = ToyLM(vocabulary_size=9, max_sequence_length=20, seed=7)
    prompts, lengths, max_length = [[2, 3, 4, 5, 6], [7, 8, 0, 0, 0], [4, 4, 4, 0, 0]], [5, 2, 3], 16
    knobs = dict(
        max_new_tokens=10,
        strategy=strategy,
        beam_size=3,
        eos_ids=(EOS,),
        repetition_penalty=1.3,
        no_repeat_ngram_size=3,
        temperature=1.5,
        top_k=5,
        top_p=0.95,
        seed=3,
        length_penalty=0.7,
    )
    cached = _run(model, prompts, lengths, max_length, **knobs)
    step_fn, init_cache = uncached_step_fn(model, max_length)
    uncached = _run(model, prompts, lengths, max_length, step_fn=step_fn, cache=init_cache(3), **knobs)
    np.testing.assert_array_equal(cached["sequences"], uncached["sequences"])
    np.testing.assert_array_equal(cached["sequence_lengths"], uncached["sequence_lengths"])
    np.testing.assert_allclose(cached["scores"], uncached["scores"], rtol=1e-4)
    assert (cached["sequence_lengths"] > np.array(lengths)).all()


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_a_batch_equals_its_rows_one_by_one(strategy):
    model = ToyLM(vocabulary_size=8, max_sequence_length=20, seed=9)
    prompts, lengths = [[2, 3, 4, 5], [6, 0, 0, 0], [7, 7, 2, 0]], [4, 1, 3]
    knobs = dict(
        max_length=14,
        strategy=strategy,
        beam_size=3,
        eos_ids=(EOS,),
        max_new_tokens=9,
        repetition_penalty=1.2,
        no_repeat_ngram_size=2,
    )
    batch = _run(model, prompts, lengths, **knobs)
    for row in range(3):
        single = _run(model, [prompts[row][: lengths[row]]], [lengths[row]], **knobs)
        np.testing.assert_array_equal(batch["sequences"][row], single["sequences"][0])
        assert batch["sequence_lengths"][row] == single["sequence_lengths"][0]
        np.testing.assert_allclose(batch["scores"][row], single["scores"][0], rtol=1e-5)


def _repeated_ngram(sequence, prompt_length, n):
    """An n-gram ending in the generated part that already occurred earlier, or None."""
    grams = [tuple(sequence[i : i + n]) for i in range(len(sequence) - n + 1)]
    for end in range(max(prompt_length + 1, n), len(sequence) + 1):
        gram = tuple(sequence[end - n : end])
        if gram in grams[: end - n]:
            return gram
    return None


_TABLE_MODEL = TableLM(np.zeros((5, 5), np.float32))
_PROMPTS = tf.TensorSpec([2, 4], tf.int32)


@tf.function(input_signature=[_PROMPTS, tf.TensorSpec([2], tf.int32), tf.TensorSpec([], tf.int32)], autograph=False)
def _greedy_ngram(token_ids, lengths, n):
    return generate(
        _TABLE_MODEL.call_with_cache,
        _TABLE_MODEL.init_cache(2, 16),
        token_ids,
        lengths,
        max_length=16,
        max_new_tokens=12,
        no_repeat_ngram_size=n,
    )


@tf.function(input_signature=[_PROMPTS, tf.TensorSpec([2], tf.int32), tf.TensorSpec([], tf.int32)], autograph=False)
def _beam_ngram(token_ids, lengths, n):
    return generate(
        _TABLE_MODEL.call_with_cache,
        _TABLE_MODEL.init_cache(2, 16),
        token_ids,
        lengths,
        max_length=16,
        max_new_tokens=12,
        no_repeat_ngram_size=n,
        strategy="beam",
        beam_size=2,
        length_penalty=1.0,
    )


@settings(max_examples=30, deadline=None)
@given(
    table=st.lists(st.floats(-3, 3, width=32), min_size=25, max_size=25),
    prompt=st.lists(st.integers(0, 4), min_size=8, max_size=8),
    lengths=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    n=st.integers(1, 4),
    beam=st.booleans(),
)
def test_no_repeat_ngram_leaves_no_repeated_ngram(table, prompt, lengths, n, beam):
    table = np.array(table, np.float32).reshape(5, 5) + 4.0 * np.eye(5, dtype=np.float32)  # likes to repeat
    _TABLE_MODEL.table.assign(table)
    token_ids = np.array(prompt, np.int32).reshape(2, 4)
    out = (_beam_ngram if beam else _greedy_ngram)(token_ids, np.array(lengths, np.int32), n)
    out = {key: value.numpy() for key, value in out.items()}
    for row in range(2):
        sequence = out["sequences"][row, : out["sequence_lengths"][row]].tolist()
        assert _repeated_ngram(sequence, lengths[row], n) is None, (sequence, lengths[row], n)


def test_without_blocking_the_repeating_model_repeats():
    # The control for the property above: the same kind of model does repeat n-grams when not blocked.
    _TABLE_MODEL.table.assign(4.0 * np.eye(5, dtype=np.float32))
    out = _greedy_ngram(np.array([[2, 3, 0, 0], [4, 0, 0, 0]], np.int32), np.array([2, 1], np.int32), 0)
    out = {key: value.numpy() for key, value in out.items()}
    assert _repeated_ngram(out["sequences"][0, : out["sequence_lengths"][0]].tolist(), 2, 2) is not None


def _adjacent_repeats(sequence):
    return sum(a == b for a, b in zip(sequence, sequence[1:]))


def _ctrl_greedy(table, prompt, steps, penalty):
    """Reference greedy decoding of a bigram table with the CTRL penalty, in numpy."""
    sequence = list(prompt)
    for _ in range(steps):
        logits = table[sequence[-1]].copy()
        present = np.isin(np.arange(len(logits)), sequence)
        logits[present] = np.where(logits[present] > 0, logits[present] / penalty, logits[present] * penalty)
        sequence.append(int(logits.argmax()))
    return sequence


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_repetition_penalty_lowers_repeats(strategy):
    rng = np.random.default_rng(0)
    table = rng.uniform(-1.0, 1.0, size=(8, 8)).astype(np.float32) + 2.0 * np.eye(8, dtype=np.float32)
    model = TableLM(table)  # the current token is always the most likely next: it repeats itself forever
    kwargs = dict(max_length=20, max_new_tokens=16, strategy=strategy, beam_size=2, length_penalty=0.0)
    plain = _run(model, [[3]], [1], repetition_penalty=1.0, **kwargs)["sequences"][0, :17].tolist()
    penalized = _run(model, [[3]], [1], repetition_penalty=3.0, **kwargs)["sequences"][0, :17].tolist()
    assert _adjacent_repeats(plain) == 16
    assert _adjacent_repeats(penalized) < 16
    assert len(set(penalized)) >= 3
    if strategy == "greedy":
        assert penalized == _ctrl_greedy(table, [3], 16, 3.0)


def test_same_seed_same_sample_different_seed_different_sample():
    model = ToyLM(vocabulary_size=9, max_sequence_length=40, scale=0.5, seed=1)
    kwargs = dict(max_length=18, strategy="sample", max_new_tokens=16, temperature=1.5)
    prompts = [[2, 3], [4, 5]]
    first = _run(model, prompts, [2, 2], seed=42, **kwargs)["sequences"]
    again = _run(model, prompts, [2, 2], seed=42, **kwargs)["sequences"]
    other = _run(model, prompts, [2, 2], seed=43, **kwargs)["sequences"]
    xla = _run(model, prompts, [2, 2], seed=42, jit_compile=True, **kwargs)["sequences"]
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, xla)
    assert (first != other).any(axis=1).all()  # both rows change
    greedy = _run(model, prompts, [2, 2], max_length=18, max_new_tokens=16)["sequences"]
    assert (first != greedy).any()


def test_banned_ids_are_never_emitted_and_min_new_tokens_holds_eos_back():
    table = np.zeros((6, 6), np.float32)
    table[:, 4] = 12.0  # token 4 is by far the most likely
    table[:, EOS] = 10.0  # then EOS
    model = TableLM(table)
    for strategy in ("greedy", "sample", "beam"):
        kwargs = dict(
            max_length=12,
            strategy=strategy,
            beam_size=2,
            eos_ids=(EOS,),
            banned_ids=(4,),
            max_new_tokens=10,
            length_penalty=0.0,
        )
        out = _run(model, [[2, 3]], [2], **kwargs)
        assert out["sequence_lengths"][0] == 3 and out["sequences"][0, 2] == EOS, strategy
        out = _run(model, [[2, 3]], [2], min_new_tokens=4, **kwargs)
        sequence = out["sequences"][0, : out["sequence_lengths"][0]].tolist()
        assert 4 not in sequence, strategy
        assert len(sequence) == 7 and sequence[-1] == EOS and EOS not in sequence[:-1], (strategy, sequence)


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_token_limits_and_padding(strategy):
    model = ToyLM(vocabulary_size=6, max_sequence_length=16, seed=2)
    kwargs = dict(max_length=8, strategy=strategy, beam_size=2, pad_id=0, length_penalty=0.0)
    out = _run(model, [[2, 3, 4, 5, 2, 3], [4, 0, 0, 0, 0, 0]], [6, 1], max_new_tokens=2, **kwargs)
    np.testing.assert_array_equal(out["sequence_lengths"], [8, 3])
    assert (out["sequences"][1, 3:] == 0).all()
    out = _run(model, [[2, 3], [4, 0]], [2, 1], max_new_tokens=0, **kwargs)
    np.testing.assert_array_equal(out["sequences"], [[2, 3, 0, 0, 0, 0, 0, 0], [4, 0, 0, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(out["sequence_lengths"], [2, 1])
    np.testing.assert_array_equal(out["scores"], [0.0, 0.0])


@pytest.mark.parametrize("strategy", ["greedy", "sample", "beam"])
def test_generate_compiles_with_xla_and_matches_graph_mode(strategy):
    model = ToyLM(vocabulary_size=8, max_sequence_length=20, seed=4)
    kwargs = dict(
        max_length=14,
        strategy=strategy,
        beam_size=3,
        eos_ids=(EOS,),
        max_new_tokens=9,
        repetition_penalty=1.2,
        no_repeat_ngram_size=2,
        top_k=4,
        top_p=0.9,
        seed=5,
    )
    prompts, lengths = [[2, 3, 4], [5, 6, 0]], [3, 2]
    xla = _run(model, prompts, lengths, jit_compile=True, **kwargs)
    graph = _run(model, prompts, lengths, **kwargs)
    np.testing.assert_array_equal(xla["sequences"], graph["sequences"])
    np.testing.assert_allclose(xla["scores"], graph["scores"], rtol=1e-5)
