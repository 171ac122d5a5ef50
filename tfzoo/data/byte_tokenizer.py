"""Byte tokenizer: the UTF-8 bytes of the text, shifted past the special tokens."""

from __future__ import annotations

import numpy as np

from tfzoo.data.tokenizer import Tokenizer


class ByteTokenizer(Tokenizer):
    """Byte tokenizer: `<pad>`=0, `<eos>`=1, then byte `b` has id `b + 2` (258 ids).

    Every text encodes without unknowns. `decode` drops `<pad>`/`<eos>` and
    decodes the bytes as UTF-8, writing U+FFFD for invalid sequences (a model
    can emit them). `tokenizer.json` holds `"byte_offset": 2` instead of a
    vocabulary list: id = byte + byte_offset.

    Example:
    >>> tokenizer = ByteTokenizer()
    >>> tokenizer.encode("hé").tolist()
    [106, 197, 171]
    >>> tokenizer.decode([106, 197, 171, 1])
    'hé'
    """

    type_name = "byte"
    special_tokens = {"<pad>": 0, "<eos>": 1}
    byte_offset = 2

    @classmethod
    def from_text(cls, text: str) -> ByteTokenizer:
        """Returns a `ByteTokenizer` (the vocabulary does not depend on the text)."""
        del text
        return cls()

    @property
    def vocabulary_size(self) -> int:
        return self.byte_offset + 256

    def encode(self, text: str) -> np.ndarray:
        data = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
        return data.astype(np.int32) + self.byte_offset

    def decode(self, ids) -> str:
        ids = self._check_ids(ids)
        data = (ids[ids >= self.byte_offset] - self.byte_offset).astype(np.uint8)
        return data.tobytes().decode("utf-8", "replace")

    def get_config(self) -> dict:
        return {}

    def _json_fields(self) -> dict:
        return {"byte_offset": self.byte_offset}

    @classmethod
    def _from_json(cls, data: dict, source: str) -> ByteTokenizer:
        if data.get("byte_offset") != cls.byte_offset:
            raise ValueError(f"{source}: 'byte_offset' must be {cls.byte_offset}, got {data.get('byte_offset')!r}")
        return cls()
