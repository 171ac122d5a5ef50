"""The in-graph sampler in numpy: the same seeded draws as an exported `generate` with `--strategy=sample`.

The definition lives in `tfzoo/decoding/sampling.py` (`uniform_hash`, `filter_logits`,
`sample_logits`) and its use in `tfzoo/decoding/greedy_search.py`: the k-th new token of batch
row `row` (k = 0 for the first) is drawn with `uniform_hash(seed, row, k)` from the logits after
the banned ids are set to `NEG`, then temperature, top-k and top-p. This module writes the same
arithmetic in numpy (the apps import no tfzoo), so `prefill`/`decode` streamed with the same knobs
gives the in-graph loop's tokens. The hash is exact (int arithmetic below 2**31, then the same
float32 operations); the filtering and the inverse-CDF draw are the graph's float32 operations in
the graph's order, so a token could differ only where the draw falls within float32 rounding
(a few ulps) of a boundary of the cumulative distribution, as between TFLite and ONNX themselves.

Example:
>>> logits = np.asarray([0.0, 2.0, 1.0, -1.0], np.float32)
>>> token = sample_token(logits, temperature=1.0, top_k=2, top_p=1.0, seed=7, row=0, step=0)
>>> token in (1, 2)
True
"""

from __future__ import annotations

import numpy as np

NEG = np.float32(-1e9)  # the graph's logit of a token that must not be chosen (tfzoo.decoding.graph_ops.NEG)
PRIME = 46337  # p**2 < 2**31: every product below stays in int32 (tfzoo.decoding.sampling._PRIME)
ROUND_CONSTANTS = ((1409, 22307), (30011, 3571))  # the two lanes' round constants, as in the graph
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_INVERSE = np.float32(1.0 / PRIME)


def _int32(name: str, value) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "iu" and not (array.dtype.kind == "f" and np.all(array == np.floor(array))):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    array = array.astype(np.int64)
    if np.any(array < INT32_MIN) or np.any(array > INT32_MAX):
        raise ValueError(f"{name} must be an int32 (between {INT32_MIN} and {INT32_MAX}), got {value!r}")
    return array


def _lane(words: list[np.ndarray], constants: tuple[int, ...]) -> np.ndarray:
    x = np.zeros_like(words[0])
    for word in words:
        for constant in constants:
            x = (x + word + constant) % PRIME  # `%` and `//` of numpy ints floor, as tf.math.floormod / floordiv
            x = (x * x % PRIME) * x % PRIME
    return x


def uniform_hash(seed, row, step) -> np.ndarray:
    """float32 in (0, 1] for each (seed, row, step): bit for bit `tfzoo.decoding.sampling.uniform_hash`.

    Args:
        seed: int or int array, any int32 value (negative allowed). Broadcast with the others.
        row: int or int array (int32): the batch row.
        step: int or int array (int32): the index of the new token (0 for the first).

    Returns:
        float32 of the broadcast shape (a numpy scalar for scalar inputs).

    Example:
    >>> float(uniform_hash(0, 0, 5)) == float(uniform_hash(0, 0, 5)) != float(uniform_hash(0, 0, 6))
    True
    """
    seed, row, step = np.broadcast_arrays(_int32("seed", seed), _int32("row", row), _int32("step", step))
    words = [seed % PRIME, seed // PRIME % PRIME, seed // (PRIME * PRIME) % PRIME, row % PRIME, step % PRIME]
    high = _lane(words, ROUND_CONSTANTS[0]).astype(np.float32)
    low = _lane(words, ROUND_CONSTANTS[1]).astype(np.float32)
    return ((high + (low + np.float32(0.5)) * _INVERSE) * _INVERSE).astype(np.float32)


def _kth_largest(sorted_logits: np.ndarray, k: int) -> np.float32:
    return sorted_logits[min(max(k - 1, 0), sorted_logits.size - 1)]


def _softmax(logits: np.ndarray) -> np.ndarray:
    weights = np.exp(logits - logits.max())
    return weights * (np.float32(1.0) / weights.sum(dtype=np.float32))  # TF's CPU softmax: times 1 / sum


def filter_logits(logits: np.ndarray, temperature: float, top_k: int, top_p: float) -> np.ndarray:
    """Temperature, then top-k (ties at the k-th value kept), then top-p; filtered tokens get `NEG`.

    The float32 operations of `tfzoo.decoding.sampling.filter_logits`, for one row.

    Args:
        logits: float32 (V,).
        temperature: float > 0. Divides the logits (in float32).
        top_k: int >= 0. Keep the `top_k` largest logits; 0 keeps all.
        top_p: float in (0, 1]. Keep the smallest set of the best tokens whose probability reaches it.

    Returns:
        float32 (V,): the tempered logits, `NEG` where filtered out.

    Example:
    >>> filter_logits(np.asarray([1.0, 3.0, 2.0], np.float32), 1.0, 2, 1.0).tolist()
    [-1000000000.0, 3.0, 2.0]
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    logits = np.asarray(logits, np.float32) / np.float32(temperature)
    top_p = np.float32(top_p)
    sorted_logits = np.sort(logits)[::-1]  # descending
    kth = _kth_largest(sorted_logits, int(top_k)) if top_k > 0 else NEG
    keep = logits >= kth
    sorted_logits = np.where(sorted_logits >= kth, sorted_logits, NEG)
    probs = _softmax(sorted_logits)
    mass_before = np.cumsum(probs, dtype=np.float32) - probs  # the probability of the better tokens
    count = int(np.sum(mass_before < top_p))  # >= 1 since top_p > 0
    threshold = _kth_largest(sorted_logits, count)
    keep &= (top_p >= 1.0) | (logits >= threshold)
    return np.where(keep, logits, NEG)


def sample_logits(logits: np.ndarray, uniform: float) -> int:
    """The token whose cumulative weight first reaches `uniform` times the total (inverse CDF), as in the graph.

    Args:
        logits: float32 (V,); `NEG` entries have weight 0 and are never drawn.
        uniform: float32 in (0, 1], e.g. from `uniform_hash`.

    Returns:
        int: the token id.

    Example:
    >>> sample_logits(np.asarray([NEG, 0.0, NEG], np.float32), np.float32(0.3))
    1
    """
    logits = np.asarray(logits, np.float32)
    cdf = np.cumsum(np.exp(logits - logits.max()), dtype=np.float32)  # sequential float32 sums, as tf.cumsum
    target = np.float32(uniform) * cdf[-1]
    return min(int(np.sum(cdf < target)), logits.size - 1)


def sample_token(
    logits: np.ndarray, *, temperature: float, top_k: int, top_p: float, seed: int, row: int = 0, step: int
) -> int:
    """The in-graph sampler's token for one row at one step: `filter_logits`, then `sample_logits` with the hash.

    `logits` are the model's, with the banned ids already at `NEG` (the graph's penalties).

    Example:
    >>> sample_token(np.asarray([NEG, 1.0, NEG], np.float32), temperature=0.7, top_k=0, top_p=0.9, seed=3, step=4)
    1
    """
    filtered = filter_logits(logits, temperature, top_k, top_p)
    return sample_logits(filtered, uniform_hash(seed, row, step))
