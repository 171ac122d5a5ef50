"""Greedy decoding and sampling: one token per row per step inside one `tf.while_loop`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf

from tfzoo.decoding.graph_ops import NEG, clamp, growing_shapes, is_member, token_mask
from tfzoo.decoding.penalties import apply_penalties
from tfzoo.decoding.sampling import filter_logits, sample_logits, uniform_hash
from tfzoo.decoding.sequences import stop_mask

StepFn = Callable[[tf.Tensor, tf.Tensor, object], tuple]


def greedy_search(
    step_fn: StepFn,
    cache,
    first_logits: tf.Tensor,
    sequences: tf.Tensor,
    presence: tf.Tensor,
    lengths: tf.Tensor,
    limits: tf.Tensor,
    *,
    sample: bool = False,
    grow_cache: bool = False,
    eos_ids: Sequence[int] = (),
    banned_ids: Sequence[int] = (),
    pad_id: int = 0,
    min_new_tokens=0,
    repetition_penalty=1.0,
    no_repeat_ngram_size=0,
    temperature=1.0,
    top_k=0,
    top_p=1.0,
    seed=0,
    stop_sequences=None,
    banned_sequences=None,
) -> dict[str, tf.Tensor]:
    """Decodes every row greedily (or by sampling) until EOS, a stop sequence or its token limit.

    Called by `generate` after the prefill; see `generate` for the arguments'
    meaning. Rows stop independently (EOS, their token limit, or no token
    left that the penalties allow); the loop ends when all rows have.

    Args:
        step_fn: `(token_ids (B, 1), positions (B, 1), cache) -> (logits (B, 1, V), cache)`.
        cache: the cache after the prefill (batch axis 0 on every leaf).
        first_logits: float32 (B, V): logits for each row's first new token.
        sequences: int32 (B, M): prompts, then the pad id.
        presence: bool (B, V): tokens in each prompt.
        lengths: int32 (B,): prompt lengths.
        limits: int32 (B,): how many tokens each row may add.
        sample: bool. Sample (temperature, top-k, top-p, seed) instead of argmax.
        grow_cache: bool. The cache grows by a slot per step (its leaves change size in the loop).

    Returns:
        `sequences` (B, M), `sequence_lengths` (B,) and `scores` (B,): the sum of
        the chosen tokens' log-probabilities under the distribution they were
        chosen from (after penalties, and for sampling after filtering).
    """
    max_length = sequences.shape[1]
    vocabulary_size = first_logits.shape[-1]
    eos_mask = token_mask(eos_ids, vocabulary_size)
    banned_mask = token_mask(banned_ids, vocabulary_size)
    slots = tf.range(max_length, dtype=tf.int32)
    vocabulary = tf.range(vocabulary_size, dtype=tf.int32)
    rows = tf.range(tf.shape(sequences)[0], dtype=tf.int32)

    def choose(logits, step, sequences, presence, num_new, done, scores):
        length = lengths + num_new  # (B,): where this step's token goes
        logits = apply_penalties(
            logits,
            presence=presence,
            sequences=sequences,
            length=length,
            num_new=num_new,
            repetition_penalty_value=repetition_penalty,
            no_repeat_ngram_size=no_repeat_ngram_size,
            min_new_tokens=min_new_tokens,
            eos_mask=eos_mask,
            banned_mask=banned_mask,
            banned_sequences=banned_sequences,
        )
        if sample:
            logits = filter_logits(logits, temperature, top_k, top_p)
            token = sample_logits(logits, uniform_hash(seed, rows, step))
        else:
            token = tf.argmax(logits, axis=-1, output_type=tf.int32)
        log_prob = tf.gather(tf.nn.log_softmax(logits, axis=-1), token, batch_dims=1)  # (B,)
        stuck = tf.reduce_max(logits, axis=-1) <= NEG / 2  # every token is banned: the row ends here
        done |= stuck
        active = ~done
        token = tf.where(active, token, pad_id)
        sequences = tf.where(active[:, None] & tf.equal(slots[None, :], length[:, None]), token[:, None], sequences)
        presence |= active[:, None] & tf.equal(vocabulary[None, :], token[:, None])
        scores += tf.where(active, log_prob, 0.0)
        num_new += tf.cast(active, tf.int32)
        done |= active & (is_member(token, eos_ids) | (num_new >= limits))
        done |= active & stop_mask(sequences, lengths + num_new, num_new, stop_sequences)
        return step + 1, sequences, presence, num_new, done, scores, token

    def cond(step, sequences, presence, num_new, done, scores, logits, cache):
        return tf.reduce_any(~done)

    def body(step, sequences, presence, num_new, done, scores, logits, cache):
        step, sequences, presence, num_new, done, scores, token = choose(
            logits, step, sequences, presence, num_new, done, scores
        )
        # Run the model on the new token (after the last step too: one spare call keeps a single copy
        # of `choose` in the graph, which halves what XLA and the converters have to compile).
        position = clamp(lengths + num_new - 1, 0, max_length - 1)  # where the token was written
        logits, cache = step_fn(token[:, None], position[:, None], cache)
        logits = tf.reshape(logits, [-1, vocabulary_size])  # (B, V)
        return step, sequences, presence, num_new, done, scores, logits, cache

    zeros = tf.zeros_like(lengths)
    state = (tf.constant(0, tf.int32), sequences, presence, zeros, limits <= 0, tf.cast(zeros, tf.float32))
    invariants = None
    if grow_cache:
        invariants = (*(t.shape for t in state), first_logits.shape, growing_shapes(cache))
    step, sequences, presence, num_new, done, scores, logits, cache = tf.while_loop(
        cond, body, (*state, first_logits, cache), shape_invariants=invariants
    )
    return {"sequences": sequences, "sequence_lengths": lengths + num_new, "scores": scores}
