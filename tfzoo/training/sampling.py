"""Greedy sample completions printed at the end of a run (a quick look at the model).

A plain loop that calls the model on the whole growing sequence; the
in-graph decoders of `tfzoo.decoding` are what generation and export use.
"""

from __future__ import annotations

import keras
import numpy as np


def sample_completions(model: keras.Model, tokenizer, prompts, length: int) -> list[str]:
    """Greedily continues each prompt by `length` tokens.

    The model sees at most its `max_sequence_length` (if it has one) last
    tokens; an empty prompt starts from the end-of-sequence token when the
    tokenizer has one, else from the pad id.

    Args:
        model: keras.Model. Maps token ids (B, T) to logits (B, T, V).
        tokenizer: a tfzoo tokenizer (`encode`, `decode`, `pad_id`).
        prompts: list of str. Text to continue.
        length: int. New tokens per prompt.

    Returns:
        list of str: each prompt followed by its completion.

    Example:
    >>> sample_completions(model, tokenizer, ["def "], 8)  # doctest: +SKIP
    ['def __init__']
    """
    window = getattr(model, "max_sequence_length", None)
    start = getattr(tokenizer, "eos_id", tokenizer.pad_id)
    completions = []
    for prompt in prompts:
        prompt_ids = [int(i) for i in tokenizer.encode(prompt)]
        ids = list(prompt_ids) or [start]
        for _ in range(length):
            context = np.asarray([ids[-window:] if window else ids], dtype="int32")  # (1, T)
            logits = model(context, training=False)  # (1, T, V)
            ids.append(int(np.argmax(keras.ops.convert_to_numpy(logits)[0, -1])))
        new_ids = ids[len(prompt_ids) or 1 :]
        completions.append(prompt + tokenizer.decode(np.asarray(new_ids, dtype="int32")))
    return completions
