"""Sample completions printed at the end of a language-model run (a quick look at the model).

They go through the same in-graph decoder as `python -m tfzoo.generate`
(`tfzoo.decoding.Generator`, top-k sampling with a fixed seed), so what the
end of training shows is what generation and the exports will produce.
"""

from __future__ import annotations

import keras
import numpy as np

from tfzoo.decoding.generator import Generator


def sample_completions(
    model: keras.Model,
    tokenizer,
    prompts,
    length: int,
    *,
    temperature: float = 0.8,
    top_k: int = 40,
    seed: int = 0,
) -> list[str]:
    """Continues each prompt by `length` sampled tokens (special tokens are never emitted).

    A prompt longer than the model's `max_sequence_length` leaves room for is
    cut to its last tokens; an empty prompt starts from the end-of-sequence token.

    Args:
        model: keras.Model with `init_cache`/`call_with_cache` and `max_sequence_length` (e.g. `GPT`).
        tokenizer: a tfzoo tokenizer (`encode`, `decode`, `pad_id`, `eos_id`).
        prompts: list of str. Text to continue.
        length: int. New tokens per prompt.
        temperature: float. Softmax temperature. Defaults to 0.8.
        top_k: int. Sample among the k likeliest tokens. Defaults to 40.
        seed: int. Sampling seed. Defaults to 0.

    Returns:
        list of str: each prompt followed by its completion.

    Example:
    >>> sample_completions(model, tokenizer, ["def "], 8)  # doctest: +SKIP
    ['def __init__']
    """
    if not prompts:
        return []
    window = int(model.max_sequence_length)
    length = max(0, min(int(length), window - 1))
    specials = sorted({tokenizer.pad_id, tokenizer.eos_id, getattr(tokenizer, "unk_id", tokenizer.pad_id)} - {None})
    encoded = [np.asarray(tokenizer.encode(p), np.int32)[-(window - length) :] for p in prompts]
    empty = tokenizer.pad_id if tokenizer.eos_id is None else tokenizer.eos_id
    encoded = [ids if ids.size else np.asarray([empty], np.int32) for ids in encoded]
    lengths = np.asarray([ids.size for ids in encoded], np.int32)
    token_ids = np.full((len(encoded), int(lengths.max())), tokenizer.pad_id, np.int32)
    for row, ids in enumerate(encoded):
        token_ids[row, : ids.size] = ids
    generator = Generator(
        model, max_length=window, strategy="sample", banned_ids=specials, pad_id=tokenizer.pad_id, jit_compile=False
    )
    out = generator(token_ids, lengths, max_new_tokens=length, temperature=temperature, top_k=top_k, seed=seed)
    completions = []
    for row, prompt in enumerate(prompts):
        new_ids = out["sequences"][row, lengths[row] : out["sequence_lengths"][row]]
        completions.append(prompt + tokenizer.decode(np.asarray(new_ids, np.int32)))
    return completions
