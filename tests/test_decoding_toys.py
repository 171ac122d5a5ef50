"""The toy models of the decoding tests (`tests/toy_models.py`) checked themselves: cached == uncached."""

from __future__ import annotations

import numpy as np

from tfzoo.decoding.uncached import uncached_step_fn
from toy_models import ToyLM


def test_toy_cached_logits_equal_uncached():
    model = ToyLM(vocabulary_size=6, max_sequence_length=12)
    tokens = np.random.default_rng(1).integers(0, 6, size=(2, 9)).astype("int32")
    full = model(tokens).numpy()
    cache = model.init_cache(2, 12)
    logits, cache = model.call_with_cache(tokens[:, :4], np.tile(np.arange(4), (2, 1)), cache)
    np.testing.assert_allclose(logits.numpy(), full[:, :4], atol=1e-5)
    for t in range(4, 9):
        logits, cache = model.call_with_cache(tokens[:, t : t + 1], np.full((2, 1), t), cache)
        np.testing.assert_allclose(logits.numpy()[:, 0], full[:, t], atol=1e-5)


def test_uncached_adapter_equals_full_forward():
    model = ToyLM(vocabulary_size=6, max_sequence_length=12)
    tokens = np.random.default_rng(2).integers(0, 6, size=(2, 7)).astype("int32")
    full = model(tokens).numpy()
    step_fn, init_cache = uncached_step_fn(model, max_length=10)
    cache = init_cache(2)
    logits, cache = step_fn(tokens[:, :3], np.tile(np.arange(3), (2, 1)), cache)
    np.testing.assert_allclose(logits.numpy(), full[:, :3], atol=1e-5)
    for t in range(3, 7):
        logits, cache = step_fn(tokens[:, t : t + 1], np.full((2, 1), t), cache)
        np.testing.assert_allclose(logits.numpy()[:, 0], full[:, t], atol=1e-5)
