"""Beam search inside one `tf.while_loop`, with length penalty, finished-beam bookkeeping and exact stopping.

Each batch row keeps `beam_size` alive beams and a set of `beam_size`
finished hypotheses. A step scores every (beam, token) candidate by its
summed log-probability, takes the best `(len(eos_ids) + 1) * beam_size`
(enough to always leave `beam_size` candidates that do not end), moves the
candidates that end (an EOS id, or the row's last allowed token) and rank
among the best `beam_size` into the finished set, ranked by their
length-penalized score (so `beam_size=1` is exactly greedy decoding), and
keeps the best non-ending candidates alive. The KV cache follows its beams by a gather along the
batch axis.

A beam whose every continuation is banned (n-gram blocking, banned ids)
finishes as it is. A row stops when no alive beam can still beat its worst finished hypothesis:
log-probabilities only fall as a beam grows, so the best an alive beam can
reach is its current sum divided by the largest length penalty still
reachable. This bound never stops too early, which is why beam search with
enough beams equals exhaustive search (but with a large alpha a row may run
on towards its token limit).

Length penalties (`len` = generated tokens, including the EOS):
- `"hf"` (Hugging Face): `score = sum_log_prob / len**alpha`.
- `"gnmt"` (Wu et al. 2016): `score = sum_log_prob / ((5 + len) / 6)**alpha`.
`alpha = 0` ranks by the plain sum; larger alpha favours longer outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from tfzoo.decoding.graph_ops import NEG, clamp, growing_shapes, is_member, token_mask
from tfzoo.decoding.greedy_search import StepFn
from tfzoo.decoding.penalties import apply_penalties
from tfzoo.decoding.sequences import stop_mask
from tfzoo.decoding.validation import LENGTH_PENALTY_FORMS


def length_penalty_divisor(length: tf.Tensor, alpha, form: str) -> tf.Tensor:
    """The divisor of a hypothesis' summed log-probability for `length` generated tokens.

    Example:
    >>> import tensorflow as tf
    >>> float(length_penalty_divisor(tf.constant(4.0), 1.0, "hf"))
    4.0
    >>> float(length_penalty_divisor(tf.constant(1.0), 1.0, "gnmt"))
    1.0
    """
    length = tf.cast(length, tf.float32)
    alpha = tf.cast(alpha, tf.float32)
    if form == "hf":
        return tf.pow(length, alpha)
    if form == "gnmt":
        return tf.pow((5.0 + length) / 6.0, alpha)
    raise ValueError(f"unknown length penalty form {form!r}; choose one of {', '.join(LENGTH_PENALTY_FORMS)}")


def _take(values: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
    """values (B, C, ...) gathered at indices (B, K) along axis 1."""
    return tf.gather(values, indices, batch_dims=1)


def _reorder(x: tf.Tensor, beams: tf.Tensor) -> tf.Tensor:
    """Gathers rows of `x` (N, ...) at `beams` (N,), keeping the static shape for the loop."""
    gathered = tf.gather(x, beams, axis=0)
    gathered.set_shape(x.shape)
    return gathered


def beam_search(
    step_fn: StepFn,
    cache,
    first_logits: tf.Tensor,
    sequences: tf.Tensor,
    presence: tf.Tensor,
    lengths: tf.Tensor,
    limits: tf.Tensor,
    *,
    beam_size: int = 4,
    grow_cache: bool = False,
    eos_ids: Sequence[int] = (),
    banned_ids: Sequence[int] = (),
    length_penalty_form: str = "hf",
    min_new_tokens=0,
    length_penalty=1.0,
    repetition_penalty=1.0,
    no_repeat_ngram_size=0,
    stop_sequences=None,
    banned_sequences=None,
) -> dict[str, tf.Tensor]:
    """Beam search for every row of a batch; see the module docstring.

    A candidate whose new tokens end with a stop sequence ends, as one that emits an EOS id does.

    Called by `generate` after the prefill (batch B, not yet tiled to beams).

    Args:
        step_fn: `(token_ids (N, 1), positions (N, 1), cache) -> (logits (N, 1, V), cache)`, N = B * beam_size.
        cache: the cache after the prefill, batch B on axis 0 of every leaf.
        first_logits: float32 (B, V): logits for each row's first new token.
        sequences: int32 (B, M): prompts, then the pad id.
        presence: bool (B, V): tokens in each prompt.
        lengths: int32 (B,): prompt lengths.
        limits: int32 (B,): how many tokens each row may add.
        beam_size: int. Beams per row.
        grow_cache: bool. The cache grows by a slot per step (its leaves change size in the loop).

    Returns:
        `sequences` (B, M), `sequence_lengths` (B,), `scores` (B,) of the best
        hypothesis, and `beam_sequences` (B, K, M), `beam_lengths` (B, K),
        `beam_scores` (B, K) of all finished hypotheses, best first (score
        `NEG` marks an empty slot). Rows that may add no token return the prompt
        with score 0.
    """
    k = beam_size
    max_length = sequences.shape[1]
    vocabulary_size = first_logits.shape[-1]
    ending = len(eos_ids) + (stop_sequences is not None)  # kinds of ending: enough candidates left alive
    num_candidates = min((ending + 1) * k, k * vocabulary_size)
    eos_mask = token_mask(eos_ids, vocabulary_size)
    banned_mask = token_mask(banned_ids, vocabulary_size)
    slots = tf.range(max_length, dtype=tf.int32)
    vocabulary = tf.range(vocabulary_size, dtype=tf.int32)
    batch = tf.shape(sequences)[0]
    beam_rows = tf.range(batch * k, dtype=tf.int32) // k  # (N,): the batch row of each beam
    limits_f = tf.cast(tf.maximum(limits, 1), tf.float32)

    def tile(x):  # (B, ...) -> (N, ...), each row repeated k times
        return tf.gather(x, beam_rows, axis=0)

    def choose(logits, step, alive_seq, alive_log_prob, alive_presence, fin_seq, fin_score, fin_new, done):
        """One step: logits (N, V) of the alive beams -> new alive and finished sets."""
        length = lengths + step  # (B,): where this step's token goes
        flat_seq = tf.reshape(alive_seq, [-1, max_length])
        logits = apply_penalties(
            logits,
            presence=tf.reshape(alive_presence, [-1, vocabulary_size]),
            sequences=flat_seq,
            length=tile(length),
            num_new=step,
            repetition_penalty_value=repetition_penalty,
            no_repeat_ngram_size=no_repeat_ngram_size,
            min_new_tokens=min_new_tokens,
            eos_mask=eos_mask,
            banned_mask=banned_mask,
            banned_sequences=banned_sequences,
        )
        log_probs = tf.reshape(tf.nn.log_softmax(logits, axis=-1), [-1, k, vocabulary_size])  # (B, K, V)
        # A live beam whose every continuation is banned finishes as it is.
        stuck = (tf.reshape(tf.reduce_max(logits, axis=-1), [-1, k]) <= NEG / 2) & (alive_log_prob > NEG / 2)
        stuck &= ~done[:, None]
        candidates = tf.reshape(alive_log_prob[:, :, None] + log_probs, [-1, k * vocabulary_size])
        values, indices = tf.math.top_k(candidates, k=num_candidates)  # (B, C)
        parent = indices // vocabulary_size
        token = indices % vocabulary_size
        valid = (values > NEG / 2) & ~done[:, None]
        ends = is_member(token, eos_ids) | (step + 1 >= limits)[:, None]
        prev_seq = alive_seq
        cand_seq = _take(alive_seq, parent)  # (B, C, M)
        write = tf.equal(slots[None, None, :], length[:, None, None])
        cand_seq = tf.where(write, token[:, :, None], cand_seq)
        if stop_sequences is not None:  # (B, C): the candidate's new tokens end with a stop sequence
            flat = tf.reshape(cand_seq, [-1, max_length])
            ends_at = tf.reshape(tf.tile(tf.expand_dims(length + 1, 1), [1, num_candidates]), [-1])
            stopped = stop_mask(flat, ends_at, step + 1, stop_sequences)
            ends |= tf.reshape(stopped, tf.shape(token))

        # Alive: the best candidates that do not end.
        alive_values, alive_index = tf.math.top_k(tf.where(valid & ~ends, values, NEG), k=k)  # (B, K)
        alive_token = _take(token, alive_index)
        alive_parent = _take(parent, alive_index)
        alive_seq = _take(cand_seq, alive_index)
        alive_presence = _take(alive_presence, alive_parent) | tf.equal(vocabulary, alive_token[:, :, None])
        beam_source = tf.reshape(alive_parent + tf.range(batch)[:, None] * k, [-1])  # (N,) flat parent beam

        # Finished: merge the ending candidates into the best-k finished set.
        divisor = length_penalty_divisor(tf.cast(step + 1, tf.float32), length_penalty, length_penalty_form)
        top_ranked = tf.range(num_candidates) < k  # as in HF: only the k best candidates may finish
        end_score = tf.where(valid & ends & top_ranked[None, :], values / divisor, NEG)
        stuck_divisor = length_penalty_divisor(
            tf.cast(tf.maximum(step, 1), tf.float32), length_penalty, length_penalty_form
        )
        stuck_score = tf.where(stuck, alive_log_prob / stuck_divisor, NEG)
        all_scores = tf.concat([fin_score, end_score, stuck_score], axis=1)  # (B, K + C + K)
        fin_score, fin_index = tf.math.top_k(all_scores, k=k)
        fin_seq = _take(tf.concat([fin_seq, cand_seq, prev_seq], axis=1), fin_index)
        all_new = [fin_new, tf.fill(tf.shape(token), step + 1), tf.fill(tf.shape(stuck_score), step)]
        fin_new = _take(tf.concat(all_new, axis=1), fin_index)

        # Stop a row when no alive beam can still beat its worst finished hypothesis.
        best_divisor = tf.maximum(
            length_penalty_divisor(tf.cast(step + 1, tf.float32), length_penalty, length_penalty_form),
            length_penalty_divisor(limits_f, length_penalty, length_penalty_form),
        )  # (B,): the largest divisor an alive beam can still get
        best_alive = alive_values[:, 0] / best_divisor
        worst_finished = fin_score[:, k - 1]
        hopeless = (worst_finished > NEG / 2) & (best_alive <= worst_finished)
        done |= (step + 1 >= limits) | (alive_values[:, 0] <= NEG / 2) | hopeless
        state = (step + 1, alive_seq, alive_values, alive_presence, fin_seq, fin_score, fin_new, done)
        return state, tf.reshape(alive_token, [-1]), beam_source

    alive_log_prob = tf.concat(
        [tf.zeros_like(lengths, tf.float32)[:, None], tf.fill([batch, k - 1], NEG)], axis=1
    )  # (B, K): only the first copy of the prompt is alive at first
    beams = tf.tile(sequences[:, None, :], [1, k, 1])  # (B, K, M)
    state = (
        tf.constant(0, tf.int32),
        beams,
        alive_log_prob,
        tf.tile(presence[:, None, :], [1, k, 1]),
        beams,  # finished hypotheses: empty (score NEG) for now
        tf.fill([batch, k], NEG),
        tf.zeros([batch, k], tf.int32),
        limits <= 0,
    )
    cache = tf.nest.map_structure(tile, cache)  # (B, ...) -> (N, ...)

    def cond(state, logits, cache):
        return tf.reduce_any(~state[-1])

    def body(state, logits, cache):
        state, token, beam_source = choose(logits, *state)
        cache = tf.nest.map_structure(lambda x: _reorder(x, beam_source), cache)
        # Run the model on the new tokens (after the last step too: one spare call keeps a single copy
        # of `choose` in the graph, which halves what XLA and the converters have to compile).
        position = clamp(tile(lengths) + state[0] - 1, 0, max_length - 1)  # where the tokens were written
        logits, cache = step_fn(token[:, None], position[:, None], cache)
        return state, tf.reshape(logits, [-1, vocabulary_size]), cache

    first_logits = tile(first_logits)
    invariants = None
    if grow_cache:
        invariants = (tf.nest.map_structure(lambda t: t.shape, state), first_logits.shape, growing_shapes(cache))
    state, _, cache = tf.while_loop(cond, body, (state, first_logits, cache), shape_invariants=invariants)
    _, _, _, _, fin_seq, fin_score, fin_new, _ = state
    found = fin_score[:, 0] > NEG / 2
    return {
        "sequences": tf.where(found[:, None], fin_seq[:, 0], sequences),
        "sequence_lengths": lengths + tf.where(found, fin_new[:, 0], 0),
        "scores": tf.where(found, fin_score[:, 0], 0.0),
        "beam_sequences": fin_seq,
        "beam_lengths": lengths[:, None] + fin_new,
        "beam_scores": fin_score,
    }
