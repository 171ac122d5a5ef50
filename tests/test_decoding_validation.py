"""Bad arguments to the decoders: a `DecodingError` (a ValueError) with a one-line message, before any run."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfzoo.decoding.generate import generate
from tfzoo.decoding.generator import Generator
from tfzoo.decoding.validation import DecodingError
from toy_models import TableLM

MODEL = TableLM(np.zeros((6, 6), np.float32))
PROMPTS = np.array([[2, 3, 4], [5, 0, 0]], np.int32)
LENGTHS = np.array([3, 1], np.int32)


def _generate(token_ids=PROMPTS, lengths=LENGTHS, max_length=10, **kwargs):
    return generate(
        MODEL.call_with_cache, MODEL.init_cache(2, max_length), token_ids, lengths, max_length=max_length, **kwargs
    )


BAD = [
    (dict(lengths=np.array([3, 0], np.int32)), "empty prompt: row 1 has length 0"),
    (dict(token_ids=np.zeros((2, 0), np.int32)), "empty prompt"),
    (dict(token_ids=np.zeros((0, 3), np.int32), lengths=np.zeros((0,), np.int32)), "empty batch"),
    (dict(token_ids=np.array([2, 3], np.int32)), "token_ids must be 2-D"),
    (dict(lengths=np.array([3], np.int32)), "lengths has 1 entries but token_ids has 2 rows"),
    (dict(lengths=np.array([4, 1], np.int32)), "lengths[0]=4 exceeds the prompt width 3"),
    (dict(max_new_tokens=8), "prompt of 3 tokens leaves 7 of max_length=10, fewer than max_new_tokens=8"),
    (dict(max_length=2), "prompt width 3 exceeds max_length=2"),
    (dict(max_new_tokens=-1), "max_new_tokens must be >= 0"),
    (dict(max_new_tokens=2.5), "max_new_tokens must be an integer"),
    (dict(min_new_tokens=-2), "min_new_tokens must be >= 0"),
    (dict(strategy="beam", beam_size=0), "beam_size must be an integer >= 1"),
    (dict(strategy="beam", beam_size=2.0), "beam_size must be an integer >= 1"),
    (dict(strategy="nucleus"), "unknown strategy 'nucleus'"),
    (dict(length_penalty_form="t5"), "unknown length_penalty_form 't5'"),
    (dict(repetition_penalty=0.0), "repetition_penalty must be > 0"),
    (dict(repetition_penalty=-1.5), "repetition_penalty must be > 0"),
    (dict(length_penalty=-0.5), "length_penalty must be >= 0"),
    (dict(length_penalty=float("nan")), "length_penalty must be finite"),
    (dict(no_repeat_ngram_size=-1), "no_repeat_ngram_size must be >= 0"),
    (dict(temperature=0.0), "temperature must be > 0"),
    (dict(top_k=-3), "top_k must be >= 0"),
    (dict(top_p=0.0), "top_p must be in (0, 1]"),
    (dict(top_p=1.5), "top_p must be in (0, 1]"),
    (dict(seed=2**40), "seed=1099511627776 does not fit in int32"),
    (dict(eos_ids=(9,)), "eos_ids has id 9 outside the vocabulary [0, 6)"),
    (dict(banned_ids=(-1,)), "banned_ids must be non-negative token ids"),
    (dict(pad_id=6), "pad_id has id 6 outside the vocabulary [0, 6)"),
    (dict(max_new_tokens=np.array([1, 2])), "max_new_tokens must be a scalar"),
]


@pytest.mark.parametrize("kwargs,message", BAD, ids=[m for _, m in BAD])
def test_bad_arguments_raise_one_line_decoding_errors(kwargs, message):
    with pytest.raises(DecodingError) as error:
        _generate(**{"max_new_tokens": 4, **kwargs})
    assert message in str(error.value)
    assert "\n" not in str(error.value)
    assert isinstance(error.value, ValueError)


def test_good_arguments_pass():
    out = _generate(max_new_tokens=7, strategy="beam", beam_size=2, length_penalty=0.0, top_p=1.0)
    assert out["sequences"].shape == (2, 10)


def test_symbolic_knobs_are_clamped_in_the_graph_instead():
    @tf.function(autograph=False)
    def run(max_new_tokens, top_p, temperature):
        return _generate(strategy="sample", max_new_tokens=max_new_tokens, top_p=top_p, temperature=temperature)

    out = run(tf.constant(50), tf.constant(7.0), tf.constant(0.0))  # out of range: clamped, not an error
    np.testing.assert_array_equal(out["sequence_lengths"].numpy(), [10, 10])  # clamped to the room left


def test_generator_checks_its_arguments():
    generator = Generator(MODEL, max_length=10, strategy="greedy", jit_compile=False)
    with pytest.raises(DecodingError, match="unknown decoding option 'beam_width'"):
        generator(PROMPTS, LENGTHS, beam_width=3)
    with pytest.raises(DecodingError, match="empty prompt"):
        generator(PROMPTS, [0, 1])
    with pytest.raises(DecodingError, match="token_ids must be integers"):
        generator(PROMPTS.astype(np.float32), LENGTHS)
    with pytest.raises(DecodingError, match="has no init_cache"):
        Generator(object(), max_length=10)
    with pytest.raises(DecodingError, match="max_length must be an integer >= 1"):
        Generator(MODEL, max_length=0)
    out = generator(PROMPTS, LENGTHS, max_new_tokens=3)
    np.testing.assert_array_equal(out["sequence_lengths"], [6, 4])
