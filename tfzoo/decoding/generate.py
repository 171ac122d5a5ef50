"""`generate`: prefill a batch of prompts, then greedy, sampled or beam decoding in one graph.

The same function serves every model family: it only needs a `step_fn` and
the model's initial cache. Decoder-only models pass `model.call_with_cache`;
an encoder-decoder puts its encoder outputs (and source mask) into the cache
pytree, so that beams tile and reorder them along with the keys and values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from tfzoo.decoding.beam_search import beam_search
from tfzoo.decoding.graph_ops import clamp
from tfzoo.decoding.greedy_search import StepFn, greedy_search
from tfzoo.decoding.sequences import pad_sequences
from tfzoo.decoding.validation import DecodingError, concrete, validate_inputs, validate_static, validate_vocabulary

PrefillFn = Callable[[tf.Tensor, tf.Tensor, object, tf.Tensor], tuple]


def _float_knob(value, low: float, high: float, default: float) -> tf.Tensor:
    """A float knob in [low, high]; NaN becomes `default`, +-inf the nearest bound.

    Written for tf2onnx: it turns a float select into `c * a + (1 - c) * b`,
    which NaN or inf poisons, except when the condition is `x != x`; and the
    bounds use min/max, not `clamp`'s selects, for the same reason.
    """
    value = tf.cast(value, tf.float32)
    value = tf.where(tf.not_equal(value, value), tf.constant(default, tf.float32), value)
    return tf.minimum(tf.maximum(value, low), high)


def _sequence_table(name: str, table):
    """None (left out of the graph) for None or a known table with no sequence; else int32 (S, T).

    A known table is checked (`pad_sequences`: one-line `DecodingError`s); a symbolic one (a signature
    input) is used as it is: ids out of the vocabulary never match a token.
    """
    if table is None:
        return None
    value = concrete(table)
    if value is not None:
        value = pad_sequences(np.asarray(value, np.int64) if np.ndim(value) == 2 else value, name=name)
        if not np.any(value >= 0):
            return None
        return tf.constant(value, tf.int32)
    table = tf.cast(table, tf.int32)
    if table.shape.rank != 2:
        raise DecodingError(f"{name} must be 2-D (num_sequences, max_tokens), got shape {table.shape}")
    return table


def generate(
    step_fn: StepFn,
    cache,
    token_ids,
    lengths,
    *,
    max_length: int,
    strategy: str = "greedy",
    beam_size: int = 4,
    eos_ids: Sequence[int] = (),
    banned_ids: Sequence[int] = (),
    pad_id: int = 0,
    length_penalty_form: str = "hf",
    return_beams: bool = False,
    grow_cache: bool = False,
    prefill_fn: PrefillFn | None = None,
    max_new_tokens=64,
    min_new_tokens=0,
    length_penalty=1.0,
    repetition_penalty=1.0,
    no_repeat_ngram_size=0,
    temperature=1.0,
    top_k=0,
    top_p=1.0,
    seed=0,
    stop_sequences=None,
    banned_sequences=None,
) -> dict[str, tf.Tensor]:
    """Generates continuations of right-padded prompts; runs eagerly, in a `tf.function` or under XLA.

    Static settings (Python values, fixed when traced): `max_length`,
    `strategy`, `beam_size`, `eos_ids`, `banned_ids`, `pad_id`,
    `length_penalty_form`, `return_beams`, `grow_cache`. Knobs (Python numbers or scalar
    tensors, so they can be signature inputs): `max_new_tokens`,
    `min_new_tokens`, `length_penalty`, `repetition_penalty`,
    `no_repeat_ngram_size`, `temperature`, `top_k`, `top_p`, `seed`. Known
    values are checked (`DecodingError`); symbolic ones are clamped in the graph.

    The prompts are prefilled at positions 0..P-1 in one call, the logits at
    each row's last prompt token are gathered, then each row adds one token per
    step at position `length + step` until it emits an EOS id or reaches
    `min(max_new_tokens, max_length - length)` new tokens.

    Args:
        step_fn: `(token_ids (N, T), positions (N, T), cache) -> (logits (N, T, V) float32, cache)`.
        cache: the initial cache for the batch: a pytree of tensors with the
            batch on axis 0 and room for `max_length` positions.
        token_ids: int (B, P): prompts, right-padded.
        lengths: int (B,): prompt lengths, 1..P.
        max_length: int. Width of the returned sequences (prompt + new tokens).
        strategy: str. "greedy", "sample" or "beam".
        beam_size: int. Beams per row (strategy "beam").
        eos_ids: sequence of int. Ids that end a row (kept in the output). Defaults to none.
        banned_ids: sequence of int. Ids never emitted. Defaults to none.
        pad_id: int. Fills `sequences` after each row's end. Defaults to 0.
        length_penalty_form: str. "hf" (`score / len**alpha`) or "gnmt"
            (`score / ((5 + len) / 6)**alpha`); see `beam_search`. Defaults to "hf".
        return_beams: bool. Beam search also returns `beam_sequences`,
            `beam_lengths` and `beam_scores` (B, beam_size, ...). Defaults to False.
        grow_cache: bool. `cache` is a growing cache (`init_cache(..., grow=True)`): it holds the
            tokens run so far, so each step costs what the cache holds, not `max_length`; prompt
            padding is run at position -1 (never attended). Not for XLA (dynamic shapes).
            Defaults to False.
        prefill_fn: `(token_ids (B, P), positions (B, P), cache, last (B,)) -> (logits (B, 1, V), cache)`:
            the prefill computing only each row's last prompt token's logits (`GPT.call_with_cache`
            with `logits_at`), or None to run `step_fn` and keep that token's. Defaults to None.
        max_new_tokens: int. Most tokens to add per row. Defaults to 64.
        min_new_tokens: int. EOS ids are masked until a row has this many new tokens. Defaults to 0.
        length_penalty: float >= 0. Beam search's alpha; 0 disables. Defaults to 1.0.
        repetition_penalty: float > 0. CTRL penalty for tokens already present; 1 disables. Defaults to 1.0.
        no_repeat_ngram_size: int >= 0. No n-gram of this size occurs twice; 0 disables. Defaults to 0.
        temperature: float > 0. Sampling temperature. Defaults to 1.0.
        top_k: int >= 0. Sample among the k most likely tokens; 0 disables. Defaults to 0.
        top_p: float in (0, 1]. Nucleus sampling; 1 disables. Defaults to 1.0.
        seed: int. Sampling seed; same seed, same sample, in every runtime (TF, XLA, TFLite,
            ONNX). Row b draws from the stream (seed, b, step). Defaults to 0.
        stop_sequences: int (S, T) token sequences padded with -1, or None: a row ends when its new
            tokens end with one (kept in `sequences`). An all -1 table stops nothing; None leaves the
            check out of the graph. See `tfzoo.decoding.sequences`. Defaults to None.
        banned_sequences: int (S, T) padded with -1, or None: token sequences that never appear (the
            last token of one is masked when the row ends with the others). Defaults to None.

    Returns:
        dict with `sequences` int32 (B, max_length) (prompt, new tokens, then
        `pad_id`), `sequence_lengths` int32 (B,) and `scores` float32 (B,): the
        summed log-probabilities of the new tokens (beam search: divided by the
        length penalty).

    Example:
    >>> import tensorflow as tf
    >>> table = tf.math.log(tf.constant([[0.1, 0.9], [0.9, 0.1]]))  # bigram model: 0 -> 1 -> 0 ...
    >>> def step_fn(token_ids, positions, cache):
    ...     return tf.gather(table, token_ids), cache
    >>> out = generate(step_fn, (), tf.constant([[0]]), tf.constant([1]), max_length=4, max_new_tokens=3)
    >>> out["sequences"].numpy().tolist()
    [[0, 1, 0, 1]]
    """
    eos_ids, banned_ids = validate_static(
        strategy=strategy,
        beam_size=beam_size,
        max_length=max_length,
        eos_ids=eos_ids,
        banned_ids=banned_ids,
        pad_id=pad_id,
        length_penalty_form=length_penalty_form,
    )
    validate_inputs(
        token_ids=token_ids,
        lengths=lengths,
        max_length=max_length,
        max_new_tokens=max_new_tokens,
        min_new_tokens=min_new_tokens,
        length_penalty=length_penalty,
        repetition_penalty=repetition_penalty,
        no_repeat_ngram_size=no_repeat_ngram_size,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
    )
    stop_sequences = _sequence_table("stop_sequences", stop_sequences)
    banned_sequences = _sequence_table("banned_sequences", banned_sequences)
    token_ids = tf.cast(token_ids, tf.int32)
    batch, prompt_length = tf.shape(token_ids)[0], tf.shape(token_ids)[1]  # the width may be dynamic
    lengths = clamp(tf.cast(lengths, tf.int32), 1, prompt_length)  # (B,)

    # Prefill every prompt at positions 0..P-1; keep the logits at each row's last token.
    positions = tf.tile(tf.range(prompt_length, dtype=tf.int32)[None, :], [batch, 1])  # (B, P)
    if grow_cache:  # a growing cache keeps every prompt slot: mark the padding (position -1)
        positions = tf.where(positions < lengths[:, None], positions, -1)
    if prefill_fn is None:
        logits, cache = step_fn(token_ids, positions, cache)
        first_logits = tf.gather(logits, lengths - 1, batch_dims=1)  # (B, V)
    else:
        logits, cache = prefill_fn(token_ids, positions, cache, lengths - 1)  # (B, 1, V)
        first_logits = tf.reshape(logits, [-1, logits.shape[-1]])  # (B, V)
    vocabulary_size = first_logits.shape[-1]
    validate_vocabulary(vocabulary_size, eos_ids, banned_ids, pad_id)

    slots = tf.range(max_length, dtype=tf.int32)
    in_prompt = slots[None, :] < lengths[:, None]  # (B, M)
    widened = tf.gather(token_ids, clamp(slots, 0, prompt_length - 1), axis=1)  # (B, M), static width
    sequences = tf.where(in_prompt, clamp(widened, 0, vocabulary_size - 1), pad_id)  # (B, M)
    # Tokens in each prompt, compared over the prompt's width, not `max_length`: a (B, M, V) comparison
    # at M = 1024, V = 50257 cost 0.4 s in TFLite, more than the whole prefill.
    vocabulary = tf.range(vocabulary_size, dtype=tf.int32)
    prompt_tokens = clamp(token_ids, 0, vocabulary_size - 1)  # (B, P): as `sequences` holds them
    in_width = tf.range(prompt_length, dtype=tf.int32)[None, :] < lengths[:, None]  # (B, P)
    # `tf.expand_dims`, not `[:, :, None]`: a new-axis StridedSlice on a dynamic width is not a TFLite builtin.
    presence = tf.reduce_any(
        tf.expand_dims(in_width, 2) & tf.equal(tf.expand_dims(prompt_tokens, 2), vocabulary), axis=1
    )  # (B, V)
    max_new_tokens = tf.maximum(tf.cast(max_new_tokens, tf.int32), 0)
    limits = tf.maximum(tf.minimum(max_new_tokens, max_length - lengths), 0)  # (B,)

    knobs = dict(
        eos_ids=eos_ids,
        banned_ids=banned_ids,
        min_new_tokens=tf.cast(min_new_tokens, tf.int32),
        repetition_penalty=_float_knob(repetition_penalty, 1e-6, 1e6, 1.0),
        no_repeat_ngram_size=clamp(tf.cast(no_repeat_ngram_size, tf.int32), 0, max_length),
        stop_sequences=stop_sequences,
        banned_sequences=banned_sequences,
    )
    state = (cache, first_logits, sequences, presence, lengths, limits)
    if strategy == "beam":
        outputs = beam_search(
            step_fn,
            *state,
            beam_size=beam_size,
            grow_cache=grow_cache,
            length_penalty_form=length_penalty_form,
            length_penalty=_float_knob(length_penalty, 0.0, 100.0, 1.0),
            **knobs,
        )
        if not return_beams:
            outputs = {key: outputs[key] for key in ("sequences", "sequence_lengths", "scores")}
        return outputs
    return greedy_search(
        step_fn,
        *state,
        sample=strategy == "sample",
        grow_cache=grow_cache,
        pad_id=pad_id,
        temperature=_float_knob(temperature, 1e-6, 1e6, 1.0),
        top_k=clamp(tf.cast(top_k, tf.int32), 0, vocabulary_size),
        top_p=_float_knob(top_p, 1e-6, 1.0, 1.0),
        seed=tf.cast(seed, tf.int32),
        **knobs,
    )
