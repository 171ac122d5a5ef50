"""Tokenizer base class, `build_tokenizer` and `load_tokenizer`.

Tokenizers map text to int32 ids and back with numpy only (no TensorFlow), and
save themselves as one plain JSON file, `tokenizer.json`, that an app without
TensorFlow (or a web page) can read:

    {"type": "char" | "byte", "version": 1, "vocabulary_size": N,
     "special_tokens": {"<pad>": 0, "<eos>": 1, ...}, ...type-specific fields}

The type-specific fields are documented on `CharTokenizer` and `ByteTokenizer`.
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
    def from_config(cls, config: dict) -> "Tokenizer":
        return cls(**config)

    def _json_fields(self) -> dict:
        """Type-specific fields of `tokenizer.json`."""
        raise NotImplementedError

    @classmethod
    def _from_json(cls, data: dict, source: str) -> "Tokenizer":
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


def _tokenizer_classes() -> dict[str, type[Tokenizer]]:
    # Imported here: the subclasses import `Tokenizer` from this module.
    from tfzoo.data.bpe_tokenizer import BpeTokenizer
    from tfzoo.data.byte_tokenizer import ByteTokenizer
    from tfzoo.data.char_tokenizer import CharTokenizer
    from tfzoo.data.id_tokenizer import IdTokenizer
    from tfzoo.data.sentencepiece_tokenizer import SentencepieceTokenizer
    from tfzoo.data.wordpiece_tokenizer import WordpieceTokenizer

    return {
        "char": CharTokenizer,
        "byte": ByteTokenizer,
        "wordpiece": WordpieceTokenizer,
        "sentencepiece": SentencepieceTokenizer,
        "bpe": BpeTokenizer,  # GPT-2's, from a converted checkpoint (tfzoo.convert); not learned from text
        "ids": IdTokenizer,  # token ids as text, for checkpoints converted without a vocabulary
    }


def build_tokenizer(name: str, train_text: str, **options) -> Tokenizer:
    """Builds the tokenizer called `name` from the training text.

    Args:
        name: str. `"char"` (vocabulary: the distinct characters of
            `train_text`), `"byte"` (UTF-8 bytes; ignores `train_text`),
            `"wordpiece"` or `"sentencepiece"` (subwords learned from `train_text`),
            or `"file:PATH"`: the tokenizer saved at PATH (a folder with
            `tokenizer.json`, e.g. a converted GPT-2's `WORKDIR/tokenizer`).
        train_text: str. The training split.
        **options: passed to the tokenizer's `from_text`, e.g.
            `vocabulary_size=` for "wordpiece" and "sentencepiece".

    Example:
    >>> build_tokenizer("char", "abca").vocabulary_size
    6
    """
    if name.startswith("file:"):
        return load_tokenizer(name[len("file:") :])
    classes = _tokenizer_classes()
    if name not in classes:
        raise ValueError(f"unknown tokenizer {name!r}; valid names: {', '.join(sorted(classes))}, file:PATH")
    return classes[name].from_text(train_text, **options)


def load_tokenizer(directory: str) -> Tokenizer:
    """Loads the tokenizer saved in `directory/tokenizer.json` (or the `.json` file itself).

    Raises:
        ValueError: the file is missing, not JSON, or not a valid tokenizer;
            the message names the file and the problem.

    Example:
    >>> import tempfile
    >>> directory = tempfile.mkdtemp()
    >>> _ = build_tokenizer("byte", "").save(directory)
    >>> load_tokenizer(directory).vocabulary_size
    258
    """
    path = os.fspath(directory)
    if not path.endswith(".json"):
        path = os.path.join(path, TOKENIZER_FILENAME)
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError:
        raise ValueError(f"{path}: tokenizer file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot read tokenizer file ({error})") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, an integer of > 4300 digits, deep nesting
        raise ValueError(f"{path}: not valid JSON ({' '.join(str(error).split())})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    for field in ("type", "version", "special_tokens"):
        if field not in data:
            raise ValueError(f"{path}: missing field {field!r}")
    if data["version"] != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported version {data['version']!r}, expected {FORMAT_VERSION}")
    classes = _tokenizer_classes()
    if not isinstance(data["type"], str) or data["type"] not in classes:
        raise ValueError(f"{path}: unknown tokenizer type {data['type']!r}; valid types: {', '.join(sorted(classes))}")
    cls = classes[data["type"]]
    if cls.special_tokens is not None and data["special_tokens"] != cls.special_tokens:  # None: checked per file
        raise ValueError(f"{path}: special_tokens must be {cls.special_tokens}, got {data['special_tokens']!r}")
    tokenizer = cls._from_json(data, path)
    if "vocabulary_size" in data and data["vocabulary_size"] != tokenizer.vocabulary_size:
        raise ValueError(
            f"{path}: vocabulary_size is {data['vocabulary_size']!r} but the vocabulary has "
            f"{tokenizer.vocabulary_size} entries"
        )
    return tokenizer
