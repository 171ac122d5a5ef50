"""The `decoder` kind: decoder-only language models (`GPT`).

No conditioning input: `generate` continues right-padded prompts; the cache
is `model.init_cache`, the step `model.call_with_cache`. `serving_default`
takes `prompts` strings. Parity runs on fixed code-like prompts
(`PARITY_TEXTS`), the quantized loss check on validation windows of the run's
text dataset.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfzoo.kinds.base import ModelKind

PARITY_TEXTS = ("d", "def ", "import os\n", "class Parser(object):\n    def __init__(self):\n")
MAX_NEW_TOKENS = 16
VALIDATION_WINDOWS = 32


def parity_prompts(tokenizer, max_length: int) -> dict[str, Any]:
    """The fixed prompts: `PARITY_TEXTS` encoded, each cut to at most `max_length // 2` tokens.

    A tokenizer that cannot encode them (the ids tokenizer of a checkpoint
    converted without its vocabulary) gets fixed pseudo-random ids instead,
    one per character of each text, never the end-of-text id.

    Returns:
        dict with `texts`, `token_ids` int32 (B, P) right-padded with the pad
        id, `lengths` int32 (B,) and `max_new_tokens` (room left, at most 16).

    Example:
    >>> from tfzoo.data.char_tokenizer import CharTokenizer
    >>> prompts = parity_prompts(CharTokenizer.from_text("".join(PARITY_TEXTS)), 24)
    >>> prompts["lengths"].tolist(), prompts["max_new_tokens"]
    ([1, 4, 10, 12], 12)
    """
    limit = max(1, max_length // 2)
    try:
        encoded = [np.asarray(tokenizer.encode(text), np.int32)[:limit] for text in PARITY_TEXTS]
    except ValueError:  # e.g. the ids tokenizer (no vocabulary) reads only ids: fixed ids of the same lengths
        encoded = [(np.arange(len(text)) * 7919 + 3) % tokenizer.vocabulary_size for text in PARITY_TEXTS]
        if tokenizer.eos_id is not None:
            other = (tokenizer.eos_id + 1) % tokenizer.vocabulary_size
            encoded = [np.where(ids == tokenizer.eos_id, other, ids) for ids in encoded]
        encoded = [ids.astype(np.int32)[:limit] for ids in encoded]
    empty = tokenizer.pad_id if tokenizer.eos_id is None else tokenizer.eos_id
    encoded = [ids if ids.size else np.asarray([empty], np.int32) for ids in encoded]
    lengths = np.asarray([ids.size for ids in encoded], np.int32)
    token_ids = np.full((len(encoded), int(lengths.max())), tokenizer.pad_id, np.int32)
    for row, ids in enumerate(encoded):
        token_ids[row, : ids.size] = ids
    max_new_tokens = int(min(MAX_NEW_TOKENS, max_length - lengths.max()))
    return {"texts": list(PARITY_TEXTS), "token_ids": token_ids, "lengths": lengths, "max_new_tokens": max_new_tokens}


class DecoderKind(ModelKind):
    """Decoder-only models (`GPT`): `init_cache` / `call_with_cache`, no conditioning input."""

    name = "decoder"
    model_classes = ("GPT",)
    description = "a decoder-only export"

    def parity_inputs(self, run, max_length):
        return parity_prompts(run.tokenizer, max_length)

    def validation_examples(self, run, max_length):
        """Validation windows of the run's dataset (`inputs`, `labels`), or `{"error": ...}` if unavailable."""
        from tfzoo.data.lm_pipeline import lm_eval_windows  # noqa: PLC0415 (TensorFlow only when needed)
        from tfzoo.data.text_datasets import load_text_splits  # noqa: PLC0415 (imported only when needed)

        try:
            splits = load_text_splits(run.config["dataset"])
            tokens = run.tokenizer.encode(splits.validation)
            seq_len = min(int(run.config.get("seq_len", max_length)), max_length)
            inputs, labels = lm_eval_windows(tokens, seq_len=seq_len, batch_size=VALIDATION_WINDOWS, num_batches=1)
        except (KeyError, ValueError, OSError) as error:
            return {"error": " ".join(str(error).split())[:300]}
        return {"inputs": inputs, "labels": labels}


KIND = DecoderKind
