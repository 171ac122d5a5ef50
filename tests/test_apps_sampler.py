"""The apps' copies of the in-graph sampler (`apps/edge/sampler.py`, `apps/web/static/sampler.mjs`) against
`tfzoo.decoding.sampling`: the hash bit for bit on a table of (seed, row, step) with extreme seeds, and the
filtered draw (temperature, top-k, top-p, banned ids, ties) token for token on random logits.

The JS module runs in `node` (no browser).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from apps.edge import sampler
from tfzoo.decoding.graph_ops import NEG
from tfzoo.decoding.sampling import filter_logits, sample_logits, uniform_hash

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEB_STATIC = os.path.join(REPO, "apps", "web", "static")
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
P = 46337
EXTREME = [0, 1, -1, 2, P - 1, P, P + 1, P * P - 1, P * P, P * P + 1, -P, -P * P, INT32_MAX, INT32_MAX - 1]
EXTREME += [INT32_MIN, INT32_MIN + 1]
KNOBS = [  # (temperature, top_k, top_p)
    (1.0, 0, 1.0),
    (0.7, 0, 1.0),
    (1.3, 5, 1.0),
    (1.0, 1, 1.0),
    (0.9, 0, 0.9),
    (2.0, 8, 0.5),
    (0.5, 3, 0.95),
    (1e4, 0, 1.0),
    (0.05, 0, 1.0),
    (1.0, 100, 1e-6),
]


def _table() -> np.ndarray:
    """(N, 3) int64 (seed, row, step): the extremes crossed with small rows and steps, plus random int32 triples."""
    small = [0, 1, 2, 3, 7, 31, 100, P - 1, P, 2 * P + 5, INT32_MAX]
    grid = np.array(np.meshgrid(EXTREME, small[:5], small), np.int64).reshape(3, -1).T
    rng = np.random.default_rng(0)
    random = rng.integers(INT32_MIN, INT32_MAX, size=(2000, 3), endpoint=True)
    return np.concatenate([grid, random])


def _graph_uniform(table: np.ndarray) -> np.ndarray:
    seed, row, step = (tf.constant(column, tf.int32) for column in table.T)
    return uniform_hash(seed, row, step).numpy()


def _cases(count: int = 120) -> list[np.ndarray]:
    """Random logit rows of a 64-token vocabulary: spread, flat, tied (rounded), with banned ids at NEG."""
    rng = np.random.default_rng(1)
    rows = []
    for i in range(count):
        scale = (0.1, 1.0, 3.0, 10.0)[i % 4]
        logits = (rng.standard_normal(64) * scale).astype(np.float32)
        if i % 3 == 0:
            logits = np.round(logits).astype(np.float32)  # many ties, also at the top-k threshold
        logits[rng.integers(0, 64, size=i % 4)] = NEG  # banned ids (the graph sets them before filtering)
        rows.append(logits)
    return rows


def _graph_tokens(rows, temperature, top_k, top_p, seeds) -> np.ndarray:
    """The in-graph tokens: row i of the batch drawn at step i with seed seeds[i] (as greedy_search calls it)."""
    logits = tf.constant(np.stack(rows))
    filtered = filter_logits(logits, temperature, top_k, top_p)
    steps = tf.range(len(rows), dtype=tf.int32)
    uniform = uniform_hash(tf.constant(seeds, tf.int32), tf.zeros_like(steps), steps)
    return filtered.numpy(), sample_logits(filtered, uniform).numpy()


def test_numpy_hash_is_the_graph_hash_bit_for_bit():
    table = _table()
    expected = _graph_uniform(table)
    got = sampler.uniform_hash(table[:, 0], table[:, 1], table[:, 2])
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_array_equal(got.view(np.int32), expected.view(np.int32))
    random = got[-2000:]  # (the grid repeats itself on purpose: the graph hashes row and step modulo 46337)
    assert len(set(random.tolist())) > 0.99 * random.size  # not degenerate
    scalar = sampler.uniform_hash(5, 0, 3)
    assert scalar.dtype == np.float32 and scalar.shape == () and scalar == _graph_uniform(np.array([[5, 0, 3]]))[0]


def test_numpy_hash_rejects_what_is_not_an_int32():
    for bad, message in ((2**31, "seed must be an int32"), (INT32_MIN - 1, "seed must be an int32"),
                         (1.5, "seed must be a whole number")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            sampler.uniform_hash(bad, 0, 0)
    with pytest.raises(ValueError, match="step must be an int32"):
        sampler.uniform_hash(0, 0, 2**40)


@pytest.mark.parametrize("knobs", KNOBS, ids=lambda k: "t{}-k{}-p{}".format(*k))
def test_numpy_sampling_gives_the_graph_tokens(knobs):
    temperature, top_k, top_p = knobs
    rows = _cases()
    seeds = [EXTREME[i % len(EXTREME)] for i in range(len(rows))]
    filtered, tokens = _graph_tokens(rows, temperature, top_k, top_p, seeds)
    for i, logits in enumerate(rows):
        mine = sampler.filter_logits(logits, temperature, top_k, top_p)
        np.testing.assert_array_equal(mine, filtered[i])
        token = sampler.sample_token(logits, temperature=temperature, top_k=top_k, top_p=top_p, seed=seeds[i], step=i)
        assert token == tokens[i], (i, knobs)
        assert mine[token] > NEG  # never a filtered or banned token
    if knobs != (1e4, 0, 1.0):
        assert len(set(tokens.tolist())) > 3  # the draws vary from row to row


def test_numpy_filter_rejects_bad_knobs():
    logits = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        sampler.filter_logits(logits, 0.0, 0, 1.0)
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]"):
        sampler.filter_logits(logits, 1.0, 0, 0.0)


JS_SAMPLER = """
import { readFileSync } from 'node:fs';
import { uniformHash, filterLogits, sampleToken } from './sampler.mjs';
const { table, rows, seeds, knobs } = JSON.parse(readFileSync(0, 'utf8'));
const hashes = table.map(([seed, row, step]) => uniformHash(seed, row, step));
const sampled = knobs.map(([temperature, topK, topP]) => rows.map((row, i) => {
  const logits = Float32Array.from(row);
  const filtered = Array.from(filterLogits(logits, temperature, topK, topP));
  return [filtered, sampleToken(logits, { temperature, topK, topP, seed: seeds[i], step: i })];
}));
const errors = [];
for (const bad of [2 ** 31, -(2 ** 31) - 1, 0.5]) {
  try { uniformHash(bad, 0, 0); } catch (error) { errors.push(error.message); }
}
console.log(JSON.stringify({ hashes, sampled, errors }));
"""


def test_js_sampler_equals_the_graph():
    assert shutil.which("node"), "missing node: run .ci/setup_apps"
    table = _table()
    rows = _cases(60)
    seeds = [EXTREME[i % len(EXTREME)] for i in range(len(rows))]
    spec = {"table": table.tolist(), "rows": [r.tolist() for r in rows], "seeds": seeds, "knobs": KNOBS}
    result = subprocess.run(
        ["node", "--input-type=module", "-e", JS_SAMPLER],
        input=json.dumps(spec),
        cwd=WEB_STATIC,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)
    hashes = np.asarray(out["hashes"], np.float64)
    assert (hashes.astype(np.float32).astype(np.float64) == hashes).all()  # JS returned float32 values
    np.testing.assert_array_equal(hashes.astype(np.float32).view(np.int32), _graph_uniform(table).view(np.int32))
    for (temperature, top_k, top_p), sampled in zip(KNOBS, out["sampled"], strict=True):
        filtered, tokens = _graph_tokens(rows, temperature, top_k, top_p, seeds)
        np.testing.assert_array_equal(np.asarray([f for f, _ in sampled], np.float32), filtered)
        assert [t for _, t in sampled] == tokens.tolist(), (temperature, top_k, top_p)
    assert [message.split(" must")[0] for message in out["errors"]] == ["seed"] * 3
