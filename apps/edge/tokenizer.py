"""The exported `tokenizer.json` read without tfzoo: char and byte tokenizers in plain Python.

    tokenizer = load_tokenizer("runs/gpt_char/export/tokenizer.json")
    ids = tokenizer.encode("def ")
    text = tokenizer.decode(ids)
    stream = tokenizer.stream_decoder()  # text of one token at a time, for streaming output

Ids follow tfzoo's tokenizers exactly: char ids are positions in the JSON's
`vocabulary` (special tokens first, an unknown character encodes to `<unk>`
and decodes to U+FFFD); byte ids are `byte + byte_offset`. Decoding drops
`<pad>` and `<eos>`.
"""

from __future__ import annotations

import codecs

from apps.edge.errors import AppError
from apps.edge.json_files import read_json

SUPPORTED_TYPES = ("char", "byte")
UNK_TEXT = "\ufffd"


class JsonTokenizer:
    """A char or byte tokenizer built from the fields of an exported `tokenizer.json`.

    Args:
        data: dict. The parsed JSON: `type` ("char" or "byte"),
            `special_tokens` (name -> id), and `vocabulary` (char) or
            `byte_offset` (byte).
        source: str. Where `data` came from, for error messages. Defaults to "tokenizer.json".

    Example:
    >>> tokenizer = JsonTokenizer({"type": "char", "special_tokens": {"<pad>": 0, "<eos>": 1, "<unk>": 2},
    ...                            "vocabulary": ["<pad>", "<eos>", "<unk>", "a", "b"]})
    >>> tokenizer.encode("abc")
    [3, 4, 2]
    >>> tokenizer.decode([4, 3, 1, 0])
    'ba'
    """

    def __init__(self, data: dict, source: str = "tokenizer.json"):
        kind = data.get("type")
        if kind not in SUPPORTED_TYPES:
            raise AppError(
                f"{source}: tokenizer type {kind!r} is not supported by this app (it reads "
                f"{' and '.join(SUPPORTED_TYPES)} tokenizers); use the Python runtime: python -m tfzoo.generate"
            )
        specials = data.get("special_tokens")
        if not isinstance(specials, dict) or "<pad>" not in specials or "<eos>" not in specials:
            raise AppError(f"{source}: 'special_tokens' must map '<pad>' and '<eos>' to ids")
        self.type = kind
        self.pad_id = int(specials["<pad>"])
        self.eos_id = int(specials["<eos>"])
        self.special_ids = frozenset(int(i) for i in specials.values())
        if kind == "char":
            vocabulary = data.get("vocabulary")
            if not isinstance(vocabulary, list) or not all(isinstance(t, str) for t in vocabulary):
                raise AppError(f"{source}: 'vocabulary' must be a list of strings")
            if "<unk>" not in specials:
                raise AppError(f"{source}: a char tokenizer needs an '<unk>' special token")
            self.unk_id = int(specials["<unk>"])
            self.vocabulary = vocabulary
            self._ids = {token: i for i, token in enumerate(vocabulary) if i not in self.special_ids}
            self.vocabulary_size = len(vocabulary)
        else:
            offset = data.get("byte_offset")
            if not isinstance(offset, int) or offset < 0:
                raise AppError(f"{source}: 'byte_offset' must be a non-negative integer, got {offset!r}")
            self.byte_offset = offset
            self.vocabulary_size = offset + 256

    def encode(self, text: str) -> list[int]:
        """The ids of `text` (no special tokens added)."""
        if self.type == "char":
            return [self._ids.get(character, self.unk_id) for character in text]
        return [byte + self.byte_offset for byte in text.encode("utf-8", "surrogatepass")]

    def decode(self, ids) -> str:
        """The text of `ids`; `<pad>` and `<eos>` are dropped."""
        stream = self.stream_decoder()
        return "".join(stream(int(i)) for i in ids) + stream(None)

    def stream_decoder(self):
        """A function `token id -> text` for streaming; call it with None at the end to flush.

        Byte tokens may split a UTF-8 character: their text comes once the character is complete.
        """
        if self.type == "char":

            def char_text(token):
                if token is None or token in (self.pad_id, self.eos_id):
                    return ""
                if token == self.unk_id or not 0 <= token < self.vocabulary_size:
                    return UNK_TEXT
                return self.vocabulary[token]

            return char_text
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

        def byte_text(token):
            if token is None:
                return decoder.decode(b"", final=True)
            if token < self.byte_offset:
                return ""
            return decoder.decode(bytes([min(token - self.byte_offset, 255)]))

        return byte_text


def load_tokenizer(path: str) -> JsonTokenizer:
    """Reads `path` (an exported `tokenizer.json`); raises `AppError` when it is missing or unusable."""
    missing = f"no tokenizer at {path} (the export writes tokenizer.json next to the model)"
    data = read_json(path, missing=missing, error=AppError)
    if not isinstance(data, dict):
        raise AppError(f"{path}: expected a JSON object")
    return JsonTokenizer(data, source=path)
