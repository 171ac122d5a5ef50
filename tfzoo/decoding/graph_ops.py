"""Small graph helpers shared by the decoders; each lowers to ops XLA, TFLite builtins and ONNX accept."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from tfzoo.layers.clamp import clamp  # noqa: F401  (re-exported for the decoders)

NEG = -1e9  # The logit of a token that must not be chosen (finite: no NaN from inf - inf).


def is_member(token: tf.Tensor, ids: Sequence[int]) -> tf.Tensor:
    """bool, same shape as `token`: the token is one of the static `ids`.

    Example:
    >>> is_member(tf.constant([0, 1, 2]), (2, 0)).numpy().tolist()
    [True, False, True]
    """
    member = tf.zeros_like(token, dtype=tf.bool)
    for i in ids:
        member |= tf.equal(token, int(i))
    return member


def token_mask(token_ids: Sequence[int], vocabulary_size: int) -> tf.Tensor:
    """A constant bool (V,) that is True at `token_ids` (fixed when traced).

    Example:
    >>> token_mask([1, 3], 4).numpy().tolist()
    [False, True, False, True]
    """
    mask = [False] * vocabulary_size
    for token in token_ids:
        mask[int(token)] = True
    return tf.constant(mask, tf.bool)


def growing_shapes(structure):
    """`tf.while_loop` shape invariants that let every leaf change size (rank kept): a growing cache.

    Example:
    >>> growing_shapes({"k": tf.zeros([1, 2, 0, 4])})["k"].as_list()
    [None, None, None, None]
    """
    return tf.nest.map_structure(lambda t: tf.TensorShape([None] * t.shape.rank), structure)
