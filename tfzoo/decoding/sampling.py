"""Sampling the next token in the graph: temperature, top-k, top-p and a portable seeded PRNG.

Everything here is static-shaped and uses only ops that XLA, the TFLite
builtins and tf2onnx accept, so a sampled `generate` gives the same tokens in
TensorFlow, TFLite and ONNX Runtime for the same seed:

- `uniform_hash(seed, row, step)` is a counter-based PRNG written in int32
  `+`, `*`, and `floordiv` / `floormod` of non-negative operands only (no
  bitwise ops, no overflow, no `Random*` ops, which the converters reject or
  implement differently; tf2onnx truncates int division of negative operands
  toward zero): a few rounds of the cube permutation `x -> (x + key + c)**3
  mod p` over the prime field p = 46337 (p**2 < 2**31, and 3 does not divide
  p - 1, so cubing permutes the field), in the spirit of the MiMC
  construction. Two independent lanes give a float in (0, 1) with ~31 bits.
  The apps' streamed loops carry copies (`apps/edge/sampler.py`,
  `apps/web/static/sampler.mjs`; tested against this module in
  `tests/test_apps_sampler.py`): change them with it.
- `sample_logits(logits, uniform)` draws by inverting the cumulative
  distribution: the token is the number of cumulative weights below
  `uniform * total`, so zero-probability (filtered) tokens are never drawn.
"""

from __future__ import annotations

import tensorflow as tf

from tfzoo.decoding.graph_ops import NEG, clamp

_PRIME = 46337
_ROUND_CONSTANTS = ((1409, 22307), (30011, 3571))  # Two rounds per word and lane; any residues work.


def _cube_round(x: tf.Tensor, key: tf.Tensor, constant: int) -> tf.Tensor:
    x = tf.math.floormod(x + key + constant, _PRIME)  # Operands < p, so the sum stays small.
    squared = tf.math.floormod(x * x, _PRIME)  # < p**2 < 2**31: no int32 overflow.
    return tf.math.floormod(squared * x, _PRIME)


def _lane(words: list[tf.Tensor], constants: tuple[int, ...]) -> tf.Tensor:
    x = tf.zeros_like(words[0])
    for word in words:
        for constant in constants:  # Several rounds per input word to mix it in.
            x = _cube_round(x, word, constant)
    return x


def _base_p_digits(x: tf.Tensor, count: int) -> list[tf.Tensor]:
    """`floormod(floordiv(x, p**i), p)` for i < count, from floordiv/floormod of non-negative operands only.

    tf2onnx converts int32 `FloorDiv` and `FloorMod` to ONNX `Div` and `x - Div(x, y) * y`, which truncate
    toward zero: for a negative `x` they differ from TensorFlow and TFLite. A negative x is the ones'
    complement `-m - 1` of m = -x - 1 >= 0 (no overflow, even for -2**31), whose floored base-p digits
    are `p - 1` minus m's: the same values everywhere.
    """
    negative = x < 0
    magnitude = tf.where(negative, -(x + 1), x)  # >= 0
    digits = []
    for i in range(count):
        digit = tf.math.floormod(tf.math.floordiv(magnitude, _PRIME**i), _PRIME)
        digits.append(tf.where(negative, _PRIME - 1 - digit, digit))
    return digits


def uniform_hash(seed: tf.Tensor, row: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
    """A reproducible uniform float32 in (0, 1) for each (seed, row, step).

    The same inputs give the same bits in TensorFlow, XLA, TFLite and ONNX
    Runtime: the hash is int32 arithmetic that never overflows.

    Args:
        seed: int32 tensor, any value (negative allowed), broadcastable.
        row: int32 tensor, e.g. the batch row.
        step: int32 tensor, e.g. the decoding step.

    Returns:
        float32 tensor of the broadcast shape, strictly between 0 and 1.

    Example:
    >>> import tensorflow as tf
    >>> u = uniform_hash(tf.constant(0), tf.range(3), tf.constant(5))
    >>> bool(tf.reduce_all((u > 0) & (u < 1)))
    True
    """
    seed = tf.cast(seed, tf.int32)
    row = tf.cast(row, tf.int32)
    step = tf.cast(step, tf.int32)
    # Broadcast by adding zeros: `broadcast_dynamic_shape` emits BroadcastArgs, which tf2onnx cannot convert.
    zero = tf.zeros_like(seed) + tf.zeros_like(row) + tf.zeros_like(step)
    seed, row, step = seed + zero, row + zero, step + zero
    words = [*_base_p_digits(seed, 3), *_base_p_digits(row, 1), *_base_p_digits(step, 1)]  # every int32 seed differs
    high = tf.cast(_lane(words, _ROUND_CONSTANTS[0]), tf.float32)
    low = tf.cast(_lane(words, _ROUND_CONSTANTS[1]), tf.float32)
    inverse = 1.0 / _PRIME
    return (high + (low + 0.5) * inverse) * inverse  # In (0, 1]; 1 only by float rounding.


def _kth_largest(sorted_logits: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
    """The k-th largest value of each row of descending `sorted_logits` (N, V); k (scalar or (N,)) in [1, V]."""
    vocabulary_size = sorted_logits.shape[-1]
    index = clamp(k - 1, 0, vocabulary_size - 1)
    index = tf.broadcast_to(index, tf.shape(sorted_logits)[:1])  # (N,)
    return tf.gather(sorted_logits, index, batch_dims=1)  # (N,)


def filter_logits(logits: tf.Tensor, temperature, top_k, top_p) -> tf.Tensor:
    """Applies temperature, then top-k, then top-p (nucleus) filtering, all with run-time values.

    Filtered tokens get the logit `NEG`. Ties at the top-k threshold are all
    kept (as in Hugging Face). Top-p keeps the smallest set of the most likely
    tokens whose probability reaches `top_p` (the most likely token always).

    Args:
        logits: float32 (N, V).
        temperature: float32 scalar > 0. Divides the logits.
        top_k: int32 scalar. Keep the `top_k` largest logits; 0 keeps all.
        top_p: float32 scalar in (0, 1]. 1 keeps all.

    Returns:
        float32 (N, V): the tempered logits, `NEG` where filtered out.

    Example:
    >>> import tensorflow as tf
    >>> out = filter_logits(tf.constant([[1.0, 3.0, 2.0]]), 1.0, 2, 1.0)
    >>> [float(v) > NEG for v in out[0]]
    [False, True, True]
    """
    logits = logits / tf.cast(temperature, tf.float32)
    top_k = tf.cast(top_k, tf.int32)
    top_p = tf.cast(top_p, tf.float32)
    vocabulary_size = logits.shape[-1]
    sorted_logits = tf.math.top_k(logits, k=vocabulary_size, sorted=True).values  # (N, V) descending
    kth = tf.where(top_k > 0, _kth_largest(sorted_logits, top_k), NEG)  # (N,)
    keep = logits >= kth[:, None]
    sorted_logits = tf.where(sorted_logits >= kth[:, None], sorted_logits, NEG)
    probs = tf.nn.softmax(sorted_logits, axis=-1)
    mass_before = tf.cumsum(probs, axis=-1) - probs  # (N, V): probability of the better tokens
    count = tf.reduce_sum(tf.cast(mass_before < top_p, tf.int32), axis=-1)  # >= 1 since top_p > 0
    threshold = _kth_largest(sorted_logits, count)  # (N,)
    keep &= (top_p >= 1.0) | (logits >= threshold[:, None])
    return tf.where(keep, logits, NEG)


def sample_logits(logits: tf.Tensor, uniform: tf.Tensor) -> tf.Tensor:
    """Draws one token per row from softmax(`logits`) by inverting the CDF with `uniform`.

    Args:
        logits: float32 (N, V); entries at `NEG` have probability 0 and are never drawn.
        uniform: float32 (N,) in (0, 1], e.g. from `uniform_hash`.

    Returns:
        int32 (N,) token ids.

    Example:
    >>> import tensorflow as tf
    >>> int(sample_logits(tf.constant([[NEG, 0.0, NEG]]), tf.constant([0.3]))[0])
    1
    """
    weights = tf.exp(logits - tf.reduce_max(logits, axis=-1, keepdims=True))  # (N, V), max entry 1
    cdf = tf.cumsum(weights, axis=-1)  # (N, V)
    target = uniform[:, None] * cdf[:, -1:]  # (N, 1) in (0, total]
    token = tf.reduce_sum(tf.cast(cdf < target, tf.int32), axis=-1)
    return tf.minimum(token, logits.shape[-1] - 1)
