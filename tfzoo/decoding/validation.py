"""Checks the arguments of `generate` in Python, before anything is traced or run.

Values that are symbolic tensors (inside a `tf.function`) cannot be checked
here; the graph clamps them instead (see `generate`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

STRATEGIES = ("greedy", "sample", "beam")
LENGTH_PENALTY_FORMS = ("hf", "gnmt")
INT32_MAX = 2**31 - 1


class DecodingError(ValueError):
    """Bad arguments to a decoder; the message is one line naming the problem."""


def concrete(value: Any) -> np.ndarray | None:
    """`value` as a numpy array, or None when it is a symbolic tensor."""
    if isinstance(value, tf.Tensor):
        if not tf.executing_eagerly() or not hasattr(value, "numpy"):
            return None
        return value.numpy()
    if isinstance(value, tf.Variable):
        return value.numpy()
    return np.asarray(value)


def _scalar(name: str, value: Any, integer: bool) -> float | int | None:
    array = concrete(value)
    if array is None:
        return None
    if array.ndim != 0:
        raise DecodingError(f"{name} must be a scalar, got shape {array.shape}")
    if integer:
        if not (np.issubdtype(array.dtype, np.integer) or (array.dtype == bool)):
            if not (np.issubdtype(array.dtype, np.floating) and float(array).is_integer()):
                raise DecodingError(f"{name} must be an integer, got {array.item()!r}")
        number = int(array)
        if abs(number) > INT32_MAX:
            raise DecodingError(f"{name}={number} does not fit in int32")
        return number
    if not (np.issubdtype(array.dtype, np.number)):
        raise DecodingError(f"{name} must be a number, got {array.item()!r}")
    number = float(array)
    if not math.isfinite(number):
        raise DecodingError(f"{name} must be finite, got {number}")
    return number


def _token_ids(name: str, ids: Sequence[int]) -> tuple[int, ...]:
    try:
        values = tuple(int(i) for i in ids)
    except (TypeError, ValueError):
        raise DecodingError(f"{name} must be a sequence of integer token ids, got {ids!r}") from None
    if any(i < 0 for i in values):
        raise DecodingError(f"{name} must be non-negative token ids, got {list(values)}")
    return values


def validate_static(
    *,
    strategy: str,
    beam_size: int,
    max_length: int,
    eos_ids: Sequence[int],
    banned_ids: Sequence[int],
    pad_id: int,
    length_penalty_form: str,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Checks the trace-time settings; returns `(eos_ids, banned_ids)` as tuples of ints."""
    if strategy not in STRATEGIES:
        raise DecodingError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if isinstance(beam_size, bool) or not isinstance(beam_size, (int, np.integer)) or beam_size < 1:
        raise DecodingError(f"beam_size must be an integer >= 1, got {beam_size!r}")
    if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) or max_length < 1:
        raise DecodingError(f"max_length must be an integer >= 1, got {max_length!r}")
    if length_penalty_form not in LENGTH_PENALTY_FORMS:
        raise DecodingError(
            f"unknown length_penalty_form {length_penalty_form!r}; choose one of {', '.join(LENGTH_PENALTY_FORMS)}"
        )
    if isinstance(pad_id, bool) or not isinstance(pad_id, (int, np.integer)) or pad_id < 0:
        raise DecodingError(f"pad_id must be a non-negative integer, got {pad_id!r}")
    return _token_ids("eos_ids", eos_ids), _token_ids("banned_ids", banned_ids)


def validate_vocabulary(vocabulary_size: int, eos_ids, banned_ids, pad_id: int) -> None:
    """Checks the static token ids against the model's vocabulary (known once its logits are traced)."""
    for name, ids in (("eos_ids", eos_ids), ("banned_ids", banned_ids), ("pad_id", (pad_id,))):
        bad = [i for i in ids if i >= vocabulary_size]
        if bad:
            raise DecodingError(f"{name} has id {bad[0]} outside the vocabulary [0, {vocabulary_size})")


def validate_inputs(
    *,
    token_ids: Any,
    lengths: Any,
    max_length: int,
    max_new_tokens: Any,
    min_new_tokens: Any,
    length_penalty: Any,
    repetition_penalty: Any,
    no_repeat_ngram_size: Any,
    temperature: Any,
    top_k: Any,
    top_p: Any,
    seed: Any,
) -> None:
    """Checks prompts and run-time knobs whose values are known (not symbolic); raises `DecodingError`."""
    shape = tf.TensorShape(getattr(token_ids, "shape", np.shape(token_ids)))
    if shape.rank != 2:
        raise DecodingError(f"token_ids must be 2-D (batch, prompt_length), got shape {shape}")
    if shape[1] == 0:
        raise DecodingError("empty prompt: token_ids has no columns")
    if shape[0] == 0:
        raise DecodingError("empty batch: token_ids has no rows")
    if shape[1] is not None and shape[1] > max_length:
        raise DecodingError(f"prompt width {shape[1]} exceeds max_length={max_length}")
    lengths_shape = tf.TensorShape(getattr(lengths, "shape", np.shape(lengths)))
    if lengths_shape.rank != 1:
        raise DecodingError(f"lengths must be 1-D (batch,), got shape {lengths_shape}")
    if shape[0] is not None and lengths_shape[0] is not None and shape[0] != lengths_shape[0]:
        raise DecodingError(f"lengths has {lengths_shape[0]} entries but token_ids has {shape[0]} rows")

    max_new = _scalar("max_new_tokens", max_new_tokens, integer=True)
    if max_new is not None and max_new < 0:
        raise DecodingError(f"max_new_tokens must be >= 0, got {max_new}")
    min_new = _scalar("min_new_tokens", min_new_tokens, integer=True)
    if min_new is not None and min_new < 0:
        raise DecodingError(f"min_new_tokens must be >= 0, got {min_new}")
    values = concrete(lengths)
    if values is not None:
        if not np.issubdtype(values.dtype, np.integer):
            raise DecodingError(f"lengths must be integers, got dtype {values.dtype}")
        if values.size and values.min() < 1:
            row = int(np.argmin(values))
            raise DecodingError(f"empty prompt: row {row} has length {int(values[row])}")
        if shape[1] is not None and values.size and values.max() > shape[1]:
            row = int(np.argmax(values))
            raise DecodingError(f"lengths[{row}]={int(values[row])} exceeds the prompt width {shape[1]}")
        if max_new is not None and values.size and int(values.max()) + max_new > max_length:
            raise DecodingError(
                f"prompt of {int(values.max())} tokens leaves {max_length - int(values.max())} of max_length="
                f"{max_length}, fewer than max_new_tokens={max_new}"
            )

    alpha = _scalar("length_penalty", length_penalty, integer=False)
    if alpha is not None and alpha < 0:
        raise DecodingError(f"length_penalty must be >= 0 (0 disables it), got {alpha}")
    penalty = _scalar("repetition_penalty", repetition_penalty, integer=False)
    if penalty is not None and penalty <= 0:
        raise DecodingError(f"repetition_penalty must be > 0 (1 disables it), got {penalty}")
    ngram = _scalar("no_repeat_ngram_size", no_repeat_ngram_size, integer=True)
    if ngram is not None and ngram < 0:
        raise DecodingError(f"no_repeat_ngram_size must be >= 0 (0 disables it), got {ngram}")
    tau = _scalar("temperature", temperature, integer=False)
    if tau is not None and tau <= 0:
        raise DecodingError(f"temperature must be > 0, got {tau}")
    k = _scalar("top_k", top_k, integer=True)
    if k is not None and k < 0:
        raise DecodingError(f"top_k must be >= 0 (0 disables it), got {k}")
    p = _scalar("top_p", top_p, integer=False)
    if p is not None and not 0 < p <= 1:
        raise DecodingError(f"top_p must be in (0, 1], got {p}")
    _scalar("seed", seed, integer=True)
