"""Tokenizer base class and the `tokenizer.json` format (the registry is `tfzoo.data.tokenizers`).

Tokenizers map text to int32 ids and back with numpy only (no TensorFlow), and
save themselves as one plain JSON file, `tokenizer.json`, that an app without
TensorFlow (or a web page) can read:

    {"type": "char" | "byte", "version": 1, "vocabulary_size": N,
     "special_tokens": {"<pad>": 0, "<eos>": 1, ...}, ...type-specific fields}

The type-specific fields are documented on each subclass. `build_tokenizer`
and `load_tokenizer` (type name -> class) live in `tfzoo.data.tokenizers`,
which imports the subclasses; this module imports none of them.
"""

from __future__ import annotations

import json
import os

import numpy as np

from tfzoo.files import atomic_write_text

TOKENIZER_FILENAME = "tokenizer.json"
FORMAT_VERSION = 1


class Tokenizer:
    """Base class of the zoo's tokenizers: text <-> int32 ids, saved as JSON.

    Subclasses set `type_name` and `special_tokens`, and implement
    `vocabulary_size`, `encode`, `decode`, `get_config`, `_json_fields` and
    `_from_json`.
    """

    type_name: str = ""
    special_tokens: dict[str, int] = {}
    pad_id = 0
    eos_id = 1

    @property
    def vocabulary_size(self) -> int:
        raise NotImplementedError

    def encode(self, text: str) -> np.ndarray:
        """Returns the ids of `text`, int32 (len,), without any special token."""
        raise NotImplementedError

    def decode(self, ids) -> str:
        """Returns the text of `ids` (1-D ints); padding and end-of-sequence ids are dropped."""
        raise NotImplementedError

    def get_config(self) -> dict:
        """Returns the constructor arguments; `type(self)(**config)` rebuilds it."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict) -> Tokenizer:
        return cls(**config)

    def _json_fields(self) -> dict:
        """Type-specific fields of `tokenizer.json`."""
        raise NotImplementedError

    @classmethod
    def _from_json(cls, data: dict, source: str) -> Tokenizer:
        """Validates the type-specific fields of `data` (read from `source`) and builds the tokenizer."""
        raise NotImplementedError

    def to_json(self) -> dict:
        """Returns the content of `tokenizer.json` as a dict."""
        return {
            "type": self.type_name,
            "version": FORMAT_VERSION,
            "vocabulary_size": self.vocabulary_size,
            "special_tokens": dict(self.special_tokens),
            **self._json_fields(),
        }

    def save(self, directory: str) -> str:
        """Writes `directory/tokenizer.json` atomically and returns its path.

        Args:
            directory: str. Created if missing.
        """
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, TOKENIZER_FILENAME)
        atomic_write_text(path, json.dumps(self.to_json(), indent=1) + "\n")
        return path

    def _check_ids(self, ids) -> np.ndarray:
        """Returns `ids` as a 1-D int64 array; raises ValueError on ids outside the vocabulary."""
        ids = np.asarray(ids)
        if ids.size == 0:
            return np.zeros((0,), np.int64)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"decode expects a 1-D array of integer ids, got dtype {ids.dtype} shape {ids.shape}")
        ids = ids.astype(np.int64)
        bad = (ids < 0) | (ids >= self.vocabulary_size)
        if bad.any():
            raise ValueError(f"id {int(ids[bad][0])} is outside the vocabulary [0, {self.vocabulary_size})")
        return ids

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash((self.type_name, self.vocabulary_size))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocabulary_size={self.vocabulary_size})"
