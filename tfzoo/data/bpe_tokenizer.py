"""GPT-2's byte-level BPE tokenizer, in numpy and Python (no TensorFlow, no Hugging Face).

GPT-2 (Radford et al. 2019) splits text with a regular expression into words,
maps each word's UTF-8 bytes to printable characters (`bytes_to_unicode`),
then merges adjacent symbols by rank from `merges.txt` until no known pair is
left; `vocab.json` maps the merged symbols to ids. Every text encodes (no
unknown token). `<|endoftext|>` written literally in the text becomes its id,
as in Hugging Face's `GPT2Tokenizer`.

`tokenizer.json` holds the vocabulary as a list (index = id) and the merges
in rank order, each `"a b"`:

    {"type": "bpe", "version": 1, "vocabulary_size": 50257,
     "special_tokens": {"<|endoftext|>": 50256},
     "vocabulary": ["!", "\\"", ...], "merges": ["\u0120 t", ...]}

GPT-2 has no padding token: `pad_id` is the end-of-text id, like
`pad_token_id = eos_token_id` in Hugging Face.
"""

from __future__ import annotations

import functools
import json

import numpy as np

from tfzoo.data.tokenizer import Tokenizer

END_OF_TEXT = "<|endoftext|>"
# GPT-2's pre-tokenizer (encoder.py in openai/gpt-2): contractions, letters, digits, other symbols, spaces.
SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


@functools.lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte to a printable character (bytes that print map to themselves)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes)))


class BpeTokenizer(Tokenizer):
    """GPT-2 byte-level BPE: text <-> ids with a GPT-2 `vocab.json` and `merges.txt`.

    Args:
        vocabulary: list of str. Token of each id (byte-level symbols, e.g. "Ġthe").
        merges: list of str. Merge rules `"a b"` in rank order (first merges first).
        end_of_text: str. The end-of-text token; must be in the vocabulary.
            Defaults to "<|endoftext|>".

    Example:
    >>> symbols = [bytes_to_unicode()[b] for b in range(256)]
    >>> tokenizer = BpeTokenizer(symbols + ["h" + "i", "<|endoftext|>"], ["h i"])
    >>> tokenizer.encode("hi!").tolist()
    [256, 33]
    >>> tokenizer.decode([256, 33, 257])
    'hi!'
    """

    type_name = "bpe"
    special_tokens = None  # Per file: {end_of_text: its id}, checked by `_from_json`.

    def __init__(self, vocabulary: list[str], merges: list[str], end_of_text: str = END_OF_TEXT):
        import regex  # noqa: PLC0415 (a keras-hub dependency; \p{L} classes need it)

        self.vocabulary = list(vocabulary)
        self.merges = list(merges)
        self.end_of_text = end_of_text
        self._ids = {token: i for i, token in enumerate(self.vocabulary)}
        if len(self._ids) != len(self.vocabulary):
            raise ValueError("BPE vocabulary has duplicate tokens")
        if end_of_text not in self._ids:
            raise ValueError(f"BPE vocabulary has no end-of-text token {end_of_text!r}")
        self._ranks = {}
        for rank, merge in enumerate(self.merges):
            pair = tuple(merge.split(" "))
            if len(pair) != 2 or not all(pair):
                raise ValueError(f"BPE merge {rank} is {merge!r}; expected two symbols separated by one space")
            self._ranks.setdefault(pair, rank)
        self._byte_encoder = bytes_to_unicode()
        self._byte_decoder = {c: b for b, c in self._byte_encoder.items()}
        missing = [c for c in self._byte_encoder.values() if c not in self._ids]
        if missing:
            raise ValueError(f"BPE vocabulary lacks byte symbol {missing[0]!r}: not a byte-level vocabulary")
        self.eos_id = self.pad_id = self._ids[end_of_text]
        self.special_tokens = {end_of_text: self.eos_id}
        self._pattern = regex.compile(SPLIT_PATTERN)
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def from_files(cls, vocab_path: str, merges_path: str) -> BpeTokenizer:
        """Reads a GPT-2 `vocab.json` (token -> id) and `merges.txt`; ValueError names the file and problem."""
        try:
            with open(vocab_path, encoding="utf-8") as file:
                table = json.load(file)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{vocab_path}: cannot read a GPT-2 vocabulary ({error})") from None
        if not isinstance(table, dict) or not all(isinstance(i, int) for i in table.values()):
            raise ValueError(f"{vocab_path}: expected a JSON object of token -> integer id")
        if sorted(table.values()) != list(range(len(table))):
            raise ValueError(f"{vocab_path}: ids must be 0..{len(table) - 1}, each once")
        vocabulary = [""] * len(table)
        for token, i in table.items():
            vocabulary[i] = token
        try:
            with open(merges_path, encoding="utf-8") as file:
                lines = file.read().splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"{merges_path}: cannot read GPT-2 merges ({error})") from None
        merges = [line for line in lines if line and not line.startswith("#version")]
        try:
            return cls(vocabulary, merges)
        except ValueError as error:
            raise ValueError(f"{vocab_path}, {merges_path}: {error}") from None

    @classmethod
    def from_hf_tokenizer_json(cls, path: str) -> BpeTokenizer:
        """Reads the vocabulary and merges of a Hugging Face `tokenizer.json` (a byte-level BPE model).

        transformers 5 saves GPT-2's tokenizer as this one file, without `vocab.json`/`merges.txt`.
        """
        try:
            with open(path, encoding="utf-8") as file:
                data = json.load(file)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: cannot read a Hugging Face tokenizer ({error})") from None
        model = data.get("model") if isinstance(data, dict) else None
        if not isinstance(model, dict) or model.get("type") != "BPE":
            raise ValueError(f"{path}: not a Hugging Face BPE tokenizer (model.type must be 'BPE')")
        table, merges = model.get("vocab"), model.get("merges")
        if not isinstance(table, dict) or sorted(table.values()) != list(range(len(table))):
            raise ValueError(f"{path}: model.vocab must map tokens to the ids 0..N-1")
        if not isinstance(merges, list):
            raise ValueError(f"{path}: model.merges must be a list")
        vocabulary = [""] * len(table)
        for token, i in table.items():
            vocabulary[i] = token
        merges = [" ".join(m) if isinstance(m, list) else m for m in merges]  # newer files store pairs
        try:
            return cls(vocabulary, merges)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: {error}") from None

    @classmethod
    def from_text(cls, text: str) -> BpeTokenizer:
        raise ValueError(
            "the bpe tokenizer is not learned from text: convert a GPT-2 checkpoint (python -m tfzoo.convert) "
            "and use tokenizer='file:WORKDIR/tokenizer'"
        )

    @property
    def vocabulary_size(self) -> int:
        return len(self.vocabulary)

    def _bpe(self, word: str) -> list[int]:
        """Ids of one pre-tokenized word (already mapped to byte symbols)."""
        if word in self._cache:
            return self._cache[word]
        symbols = list(word)
        while len(symbols) > 1:
            pairs = [(self._ranks.get(pair, -1), i) for i, pair in enumerate(zip(symbols, symbols[1:]))]
            known = [(rank, i) for rank, i in pairs if rank >= 0]
            if not known:
                break
            best = min(known)[0]
            first, second = self.merges[best].split(" ")
            merged, i = [], 0
            while i < len(symbols):  # merge every occurrence of the best pair, left to right
                if i + 1 < len(symbols) and symbols[i] == first and symbols[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        ids = [self._ids[s] for s in symbols]
        if len(self._cache) < 100_000:
            self._cache[word] = ids
        return ids

    def encode(self, text: str) -> np.ndarray:
        ids: list[int] = []
        for i, part in enumerate(text.split(self.end_of_text)):
            if i:
                ids.append(self.eos_id)
            for word in self._pattern.findall(part):
                symbols = "".join(self._byte_encoder[b] for b in word.encode("utf-8", "surrogatepass"))
                ids.extend(self._bpe(symbols))
        return np.asarray(ids, np.int32)

    def decode(self, ids) -> str:
        ids = self._check_ids(ids)
        symbols = "".join(self.vocabulary[i] for i in ids.tolist() if i != self.eos_id)
        data = bytes(self._byte_decoder[c] for c in symbols if c in self._byte_decoder)
        return data.decode("utf-8", "replace")

    def get_config(self) -> dict:
        return {"vocabulary": self.vocabulary, "merges": self.merges, "end_of_text": self.end_of_text}

    def _json_fields(self) -> dict:
        return {"vocabulary": self.vocabulary, "merges": self.merges}

    @classmethod
    def _from_json(cls, data: dict, source: str) -> BpeTokenizer:
        vocabulary, merges, specials = data.get("vocabulary"), data.get("merges"), data["special_tokens"]
        if not isinstance(vocabulary, list) or not all(isinstance(t, str) for t in vocabulary):
            raise ValueError(f"{source}: 'vocabulary' must be a list of strings")
        if not isinstance(merges, list) or not all(isinstance(m, str) for m in merges):
            raise ValueError(f"{source}: 'merges' must be a list of strings")
        if not isinstance(specials, dict) or len(specials) != 1:
            raise ValueError(f"{source}: special_tokens must hold exactly the end-of-text token, got {specials!r}")
        ((end_of_text, eos_id),) = specials.items()
        try:
            tokenizer = cls(vocabulary, merges, end_of_text)
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None
        if tokenizer.eos_id != eos_id:
            raise ValueError(
                f"{source}: special_tokens says {end_of_text!r} is {eos_id!r}, the vocabulary says {tokenizer.eos_id}"
            )
        return tokenizer
