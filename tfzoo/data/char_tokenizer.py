"""Character tokenizer: one id per Unicode code point seen in the training text."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfzoo.data.tokenizer import Tokenizer

UNK_TEXT = "\ufffd"  # What `decode` writes for the unknown id (U+FFFD REPLACEMENT CHARACTER).


def _code_points(text: str) -> np.ndarray:
    """Returns the code points of `text`, uint32 (len,); lone surrogates pass through."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


class CharTokenizer(Tokenizer):
    """Character tokenizer: `<pad>`=0, `<eos>`=1, `<unk>`=2, then one id per character.

    Character `characters[i]` gets id `3 + i`; any other character encodes to
    `<unk>`, which decodes to U+FFFD. `build_tokenizer("char", text)` uses the
    sorted distinct characters of the training text.

    `tokenizer.json` holds `"vocabulary"`: the token of every id, in id order,
    the three special tokens first (`["<pad>", "<eos>", "<unk>", "\\t", "\\n",
    " ", ...]`); every entry after them is a single character (code point).

    Args:
        characters: str or sequence of str. Distinct single characters, in id
            order.

    Example:
    >>> tokenizer = CharTokenizer("abc")
    >>> tokenizer.encode("cab?").tolist()
    [5, 3, 4, 2]
    >>> tokenizer.decode([5, 3, 4, 1, 0])
    'cab'
    """

    type_name = "char"
    special_tokens = {"<pad>": 0, "<eos>": 1, "<unk>": 2}
    unk_id = 2

    def __init__(self, characters: str | Sequence[str]):
        characters = list(characters)
        for character in characters:
            if not isinstance(character, str) or len(character) != 1:
                raise ValueError(f"characters must be single-character strings, got {character!r}")
        seen = set()
        for character in characters:
            if character in seen:
                raise ValueError(f"characters must be distinct, {character!r} appears twice")
            seen.add(character)
        self.characters = characters
        self._table = None

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """Builds the tokenizer of the sorted distinct characters of `text`."""
        if not text:
            raise ValueError("cannot build a char tokenizer from empty text")
        counts = np.bincount(_code_points(text))
        return cls([chr(code) for code in np.flatnonzero(counts)])

    @property
    def vocabulary_size(self) -> int:
        return len(self.special_tokens) + len(self.characters)

    @property
    def vocabulary(self) -> list[str]:
        """The token of every id, in id order (special tokens first)."""
        return list(self.special_tokens) + self.characters

    def _lookup_table(self) -> np.ndarray:
        """Returns the int32 id of every code point up to the largest known one, then `<unk>`."""
        if self._table is None:
            codes = np.array([ord(c) for c in self.characters], dtype=np.int64)
            size = int(codes.max()) + 2 if codes.size else 1
            table = np.full((size,), self.unk_id, dtype=np.int32)
            table[codes] = np.arange(len(self.special_tokens), self.vocabulary_size, dtype=np.int32)
            self._table = table
        return self._table

    def encode(self, text: str) -> np.ndarray:
        table = self._lookup_table()
        codes = np.minimum(_code_points(text), len(table) - 1)  # unknown past the end -> last slot (`<unk>`)
        return table[codes]

    def decode(self, ids) -> str:
        ids = self._check_ids(ids)
        ids = ids[(ids != self.pad_id) & (ids != self.eos_id)]
        tokens = np.array([UNK_TEXT] + self.characters, dtype=object)
        return "".join(tokens[ids - self.unk_id])

    def get_config(self) -> dict:
        return {"characters": list(self.characters)}

    def _json_fields(self) -> dict:
        return {"vocabulary": self.vocabulary}

    @classmethod
    def _from_json(cls, data: dict, source: str) -> CharTokenizer:
        vocabulary = data.get("vocabulary")
        if not isinstance(vocabulary, list) or not all(isinstance(token, str) for token in vocabulary):
            raise ValueError(f"{source}: 'vocabulary' must be a list of strings")
        specials = list(cls.special_tokens)
        if vocabulary[: len(specials)] != specials:
            raise ValueError(f"{source}: 'vocabulary' must start with {specials}, got {vocabulary[: len(specials)]}")
        characters = vocabulary[len(specials) :]
        for index, character in enumerate(characters, start=len(specials)):
            if len(character) != 1:
                raise ValueError(f"{source}: vocabulary entry {index} ({character!r}) is not a single character")
        seen = {}
        for index, character in enumerate(characters, start=len(specials)):
            if character in seen:
                raise ValueError(
                    f"{source}: duplicate vocabulary entry {character!r} at ids {seen[character]} and {index}"
                )
            seen[character] = index
        return cls(characters)
