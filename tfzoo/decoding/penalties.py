"""Logit penalties and masks applied before choosing the next token, all static-shaped.

Applied in this order (as in Hugging Face `generate`): CTRL repetition
penalty, `no_repeat_ngram_size` blocking, `min_new_tokens` (EOS masked),
banned token ids, banned token sequences (`tfzoo.decoding.sequences`). Masked tokens get the
logit `NEG`.
"""

from __future__ import annotations

import tensorflow as tf

from tfzoo.decoding.graph_ops import NEG, clamp
from tfzoo.decoding.sequences import ban_mask


def repetition_penalty(logits: tf.Tensor, presence: tf.Tensor, penalty) -> tf.Tensor:
    """CTRL repetition penalty: for tokens already present, positive logits / penalty, negative * penalty.

    Args:
        logits: float32 (N, V).
        presence: bool (N, V): the token occurs in the row (prompt or generated).
        penalty: float32 scalar > 0; 1 changes nothing, > 1 discourages repeats.

    Example:
    >>> import tensorflow as tf
    >>> out = repetition_penalty(tf.constant([[2.0, -2.0, 2.0]]), tf.constant([[True, True, False]]), 2.0)
    >>> out.numpy().tolist()
    [[1.0, -4.0, 2.0]]

    References:
        Keskar et al., "CTRL: A Conditional Transformer Language Model for Controllable Generation", 2019.
    """
    penalty = tf.cast(penalty, logits.dtype)
    penalized = tf.where(logits > 0, logits / penalty, logits * penalty)
    return tf.where(presence, penalized, logits)


def no_repeat_ngram_mask(sequences: tf.Tensor, length: tf.Tensor, ngram_size, vocabulary_size: int) -> tf.Tensor:
    """Tokens that would complete an n-gram already present in the row.

    With `L = length` tokens filled, the next token `v` is banned when
    `sequences[L-n+1:L] + [v]` equals some `sequences[q-n+1:q+1]` with q < L.
    Works with a run-time `ngram_size` and static shapes: every candidate end
    position q is compared with the current suffix at every lag k in one
    (N, M, M-1) comparison. `ngram_size` <= 0 bans nothing; 1 bans every
    token already present.

    Args:
        sequences: int32 (N, M): the tokens so far, then anything.
        length: int32 (N,): how many tokens of each row are filled.
        ngram_size: int32 scalar.
        vocabulary_size: int.

    Returns:
        bool (N, V): True for banned tokens.

    Example:
    >>> import tensorflow as tf
    >>> banned = no_repeat_ngram_mask(tf.constant([[1, 2, 1, 0]]), tf.constant([3]), 2, 4)
    >>> banned.numpy().tolist()
    [[False, False, True, False]]
    """
    max_length = sequences.shape[1]
    n = tf.cast(ngram_size, tf.int32)
    length = tf.cast(length, tf.int32)
    # `tf.expand_dims`, not `x[:, None]`: tf2onnx cannot convert a new-axis `StridedSlice` inside the `If`
    # branch that runs this (`apply_penalties`), where the input ranks are not known to it.
    expand = tf.expand_dims
    q = tf.range(max_length, dtype=tf.int32)  # end position of an earlier n-gram
    lags = tf.range(1, max_length, dtype=tf.int32)  # k: compare sequences[q - k] with sequences[L - k]
    earlier = tf.gather(sequences, tf.maximum(expand(q, 1) - expand(lags, 0), 0), axis=1)  # (N, M, M-1)
    suffix_index = clamp(expand(length, 1) - expand(lags, 0), 0, max_length - 1)  # (N, M-1)
    suffix = tf.gather(sequences, suffix_index, batch_dims=1)  # (N, M-1)
    equal = tf.equal(earlier, expand(suffix, 1)) | expand(expand(lags >= n, 0), 0)
    matched = (
        tf.reduce_all(equal, axis=-1)
        & expand(q >= n - 1, 0)
        & (expand(q, 0) < expand(length, 1))
        & expand(length >= n - 1, 1)
        & (n >= 1)
    )  # (N, M): the n-gram ending at q starts with the current (n-1)-suffix
    vocabulary = tf.range(vocabulary_size, dtype=tf.int32)
    banned = expand(matched, 2) & tf.equal(expand(sequences, 2), vocabulary)  # (N, M, V)
    return tf.reduce_any(banned, axis=1)


def _ngram_ban(sequences, length, ngram_size, logits) -> tf.Tensor:
    """`no_repeat_ngram_mask`, built only when `ngram_size` >= 1 (a conditional, not a select).

    The mask costs O(M * V) per step ([N, M, V] comparisons: 18.6 ms at 160
    slots of a 50257-token vocabulary in TFLite, 92 ms at 1024). A knob that is
    a signature input cannot be folded away by a converter, so the graph
    branches on it: XLA's conditional, TFLite's `IF` and ONNX `If` run the mask
    only when it bans something. A Python 0 leaves it out of the graph.
    """
    static = tf.get_static_value(ngram_size)
    if static is not None and int(static) <= 0:
        return tf.zeros_like(logits, tf.bool)
    banned = tf.cond(
        tf.cast(ngram_size, tf.int32) >= 1,
        lambda: no_repeat_ngram_mask(sequences, length, ngram_size, logits.shape[-1]),
        lambda: tf.zeros_like(logits, tf.bool),
    )
    # Static shapes again for what follows (tf2onnx knows nothing of an `If`'s output shape).
    # (A reshape to a constant shape would be dropped by grappler as redundant: this one survives.)
    banned = tf.reshape(banned, tf.shape(logits))
    banned.set_shape(logits.shape)
    return banned


def apply_penalties(
    logits: tf.Tensor,
    *,
    presence: tf.Tensor,
    sequences: tf.Tensor,
    length: tf.Tensor,
    num_new: tf.Tensor,
    repetition_penalty_value,
    no_repeat_ngram_size,
    min_new_tokens,
    eos_mask: tf.Tensor,
    banned_mask: tf.Tensor,
    banned_sequences=None,
) -> tf.Tensor:
    """All logit processors in order: repetition penalty, n-gram blocking, min length, banned ids and sequences.

    Args:
        logits: float32 (N, V): next-token logits.
        presence: bool (N, V): tokens present in each row.
        sequences: int32 (N, M): each row's tokens so far.
        length: int32 (N,): filled length of each row (the new token goes at `length`).
        num_new: int32 scalar or (N,): tokens generated so far.
        repetition_penalty_value: float32 scalar > 0.
        no_repeat_ngram_size: int32 scalar; 0 disables.
        min_new_tokens: int32 scalar; EOS is masked while `num_new < min_new_tokens`.
        eos_mask: bool (V,): the EOS ids.
        banned_mask: bool (V,): ids that are never emitted.
        banned_sequences: int32 (S, T) padded with -1, or None: token sequences that never appear.

    Returns:
        float32 (N, V) processed logits, `NEG` at masked tokens.
    """
    logits = repetition_penalty(logits, presence, repetition_penalty_value)
    masked = _ngram_ban(sequences, length, no_repeat_ngram_size, logits)  # (N, V)
    too_short = tf.reshape(tf.cast(num_new, tf.int32) < tf.cast(min_new_tokens, tf.int32), [-1, 1])  # (N|1, 1)
    masked |= too_short & eos_mask[None, :]
    masked |= banned_mask[None, :]
    masked |= ban_mask(sequences, length, banned_sequences, logits)
    return tf.where(masked, NEG, logits)
