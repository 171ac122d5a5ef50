"""Id tokenizer: text is a list of token ids, for checkpoints converted without their vocabulary."""

from __future__ import annotations

import numpy as np

from tfzoo.data.tokenizer import Tokenizer


class IdTokenizer(Tokenizer):
    """Reads and writes token ids as text: `"464 3290 318"` <-> `[464, 3290, 318]`.

    A checkpoint converted without `vocab.json`/`merges.txt` still generates,
    exports and trains on token ids: prompts are ids separated by spaces (or
    commas), and each decoded id is written as `" <id>"`, so decoding pieces
    and concatenating them gives the decoding of the whole. The end-of-text id
    is also the padding id (GPT-2 has no padding token). A checkpoint whose
    end-of-text id lies outside its vocabulary (transformers keeps
    `GPT2Config`'s 50256 for tiny test models) has none: `eos_id=None`, id 0
    pads, and generation runs to `max_new_tokens`.

    `tokenizer.json`: `{"type": "ids", "vocabulary_size": N,
    "special_tokens": {"<|endoftext|>": EOS}, ...}` (`{}` without an end-of-text id).

    Args:
        vocabulary_size: int. Number of ids.
        eos_id: int or None. The end-of-text id (also used as padding); None for none (0 pads).

    Example:
    >>> tokenizer = IdTokenizer(vocabulary_size=100, eos_id=99)
    >>> tokenizer.encode("5, 7 8").tolist()
    [5, 7, 8]
    >>> tokenizer.decode([5, 7, 99])
    ' 5 7'
    """

    type_name = "ids"
    special_tokens = None  # Per file: {"<|endoftext|>": eos_id}, checked by `_from_json`.
    end_of_text = "<|endoftext|>"

    def __init__(self, vocabulary_size: int, eos_id: int | None):
        checked = (("vocabulary_size", vocabulary_size),) + ((("eos_id", eos_id),) if eos_id is not None else ())
        for name, value in checked:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if eos_id is not None and not 0 <= eos_id < vocabulary_size:
            raise ValueError(f"eos_id {eos_id} is outside the vocabulary [0, {vocabulary_size})")
        self._vocabulary_size = int(vocabulary_size)
        self.eos_id = None if eos_id is None else int(eos_id)
        self.pad_id = 0 if eos_id is None else self.eos_id
        self.special_tokens = {} if eos_id is None else {self.end_of_text: self.eos_id}

    @classmethod
    def from_text(cls, text: str) -> IdTokenizer:
        raise ValueError("the ids tokenizer is not learned from text: use tokenizer='file:WORKDIR/tokenizer'")

    @property
    def vocabulary_size(self) -> int:
        return self._vocabulary_size

    def encode(self, text: str) -> np.ndarray:
        words = text.replace(",", " ").split()
        try:
            ids = np.asarray([int(w) for w in words], np.int64)
        except ValueError:
            bad = next(w for w in words if not w.lstrip("-").isdigit())
            raise ValueError(
                f"this model has no vocabulary (converted without vocab.json/merges.txt): text must be token "
                f"ids separated by spaces, got {bad!r}"
            ) from None
        if ids.size and (ids.min() < 0 or ids.max() >= self._vocabulary_size):
            raise ValueError(f"token ids must be in [0, {self._vocabulary_size}), got {text!r}")
        return ids.astype(np.int32)

    def decode(self, ids) -> str:
        ids = self._check_ids(ids)
        return "".join(f" {i}" for i in ids.tolist() if i != self.eos_id)

    def get_config(self) -> dict:
        return {"vocabulary_size": self._vocabulary_size, "eos_id": self.eos_id}

    def _json_fields(self) -> dict:
        return {}

    @classmethod
    def _from_json(cls, data: dict, source: str) -> IdTokenizer:
        specials = data["special_tokens"]
        if not isinstance(specials, dict) or list(specials) not in ([cls.end_of_text], []):
            raise ValueError(f"{source}: special_tokens must be {{{cls.end_of_text!r}: ID}} or {{}}, got {specials!r}")
        try:
            return cls(data.get("vocabulary_size"), specials.get(cls.end_of_text))
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None
