"""The portable PRNG, top-k / top-p filtering and inverse-CDF sampling against numpy references."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from tfzoo.decoding.graph_ops import NEG
from tfzoo.decoding.sampling import filter_logits, sample_logits, uniform_hash


def _uniforms(seeds, rows, steps):
    seed, row, step = np.meshgrid(seeds, rows, steps, indexing="ij")
    return (
        uniform_hash(
            tf.constant(seed.ravel(), tf.int32), tf.constant(row.ravel(), tf.int32), tf.constant(step.ravel(), tf.int32)
        )
        .numpy()
        .reshape(seed.shape)
    )


def test_uniform_hash_is_deterministic_and_in_the_open_interval():
    u = _uniforms(np.arange(-3, 3), np.arange(4), np.arange(5))
    np.testing.assert_array_equal(u, _uniforms(np.arange(-3, 3), np.arange(4), np.arange(5)))
    assert ((u > 0) & (u < 1)).all()
    extremes = _uniforms(np.array([2**31 - 1, -(2**31), 0, 46337, 46337 * 46337]), [0], [0]).ravel()
    assert len(set(extremes.tolist())) == 5  # big seeds do not collide with small ones
    xla = tf.function(uniform_hash, jit_compile=True)(tf.constant(7), tf.range(6), tf.constant(3)).numpy()
    np.testing.assert_array_equal(xla, uniform_hash(tf.constant(7), tf.range(6), tf.constant(3)).numpy())


def test_uniform_hash_is_uniform_and_uncorrelated():
    u = _uniforms(np.arange(40), np.arange(10), np.arange(50))  # 20,000 draws
    counts, _ = np.histogram(u.ravel(), bins=20, range=(0, 1))
    chi2 = ((counts - u.size / 20) ** 2 / (u.size / 20)).sum()
    assert chi2 < 50, chi2  # 19 degrees of freedom: p < 1e-4 for a true uniform
    centered = u - 0.5
    for a, b in [
        (centered[:, :, 1:], centered[:, :, :-1]),  # consecutive steps
        (centered[:, 1:], centered[:, :-1]),  # neighbouring rows
        (centered[1:], centered[:-1]),
    ]:  # neighbouring seeds
        correlation = (a * b).mean() / centered.var()
        assert abs(correlation) < 0.04, correlation


def _reference_filter(logits, temperature, top_k, top_p):
    """numpy: temperature, keep logits >= the k-th largest, then the top-p nucleus (ties kept)."""
    logits = logits / temperature
    keep = np.ones_like(logits, bool)
    if top_k > 0:
        keep &= logits >= np.sort(logits)[::-1][min(top_k, logits.size) - 1]
    if top_p < 1.0:
        kept = np.where(keep, logits, -np.inf)
        order = np.sort(kept)[::-1]
        probs = np.exp(order - order[0])
        probs /= probs.sum()
        before = np.cumsum(probs) - probs
        count = int((before < top_p).sum())
        keep &= logits >= order[count - 1]
    return keep


_filter = tf.function(filter_logits, autograph=False)


@settings(max_examples=60, deadline=None)
@given(
    logits=st.lists(st.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.3, 1.0, 1.7, 2.5]), min_size=9, max_size=9),
    temperature=st.sampled_from([0.5, 1.0, 2.0]),
    top_k=st.integers(0, 11),
    top_p=st.sampled_from([0.05, 0.3, 0.6, 0.9, 0.999, 1.0]),
)
def test_filter_logits_matches_numpy(logits, temperature, top_k, top_p):
    logits = np.array(logits, np.float32)
    out = _filter(tf.constant(logits[None]), tf.constant(temperature), tf.constant(top_k), tf.constant(top_p))
    out = out.numpy()[0]
    keep = _reference_filter(logits, temperature, top_k, top_p)
    np.testing.assert_array_equal(out > NEG / 2, keep)
    np.testing.assert_allclose(out[keep], logits[keep] / temperature, rtol=1e-6)


def test_samples_follow_the_filtered_distribution():
    logits = np.array([0.0, 1.0, 2.0, -1.0, 0.5, NEG], np.float32)
    rows = 6000
    uniform = uniform_hash(tf.constant(123), tf.range(rows), tf.constant(0))
    for top_k, top_p in [(0, 1.0), (3, 1.0), (0, 0.8)]:
        filtered = filter_logits(tf.constant(np.tile(logits, (rows, 1))), 1.0, top_k, top_p)
        tokens = sample_logits(filtered, uniform).numpy()
        expected = tf.nn.softmax(filtered[0]).numpy()
        frequencies = np.bincount(tokens, minlength=logits.size) / rows
        np.testing.assert_allclose(frequencies, expected, atol=0.02)
        assert frequencies[expected == 0].sum() == 0  # filtered tokens never drawn
    assert set(np.unique(tokens)) == {1, 2, 4}  # top-p 0.8: the three most likely


@settings(max_examples=40, deadline=None)
@given(
    mask=st.lists(st.booleans(), min_size=7, max_size=7).filter(any),
    u=st.floats(1e-6, 1.0),
)
def test_sampling_never_draws_a_masked_token(mask, u):
    logits = np.where(mask, np.linspace(-3, 3, 7), NEG).astype(np.float32)
    token = int(sample_logits(tf.constant(logits[None]), tf.constant([u], tf.float32))[0])
    assert mask[token]
