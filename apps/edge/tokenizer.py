"""The export's `hf_tokenizer.json` read with Hugging Face `tokenizers` (no tfzoo): every tokenizer type.

    tokenizer = load_tokenizer("runs/gpt_char/export", report)   # the file report.json names
    ids = tokenizer.encode("def ")
    text = tokenizer.decode(ids)
    text_of = tokenizer.stream_decoder(ids)  # text of one new token at a time, for streaming output

`python -m export` writes `hf_tokenizer.json` beside tfzoo's `tokenizer.json`: the same
tokenizer, the same ids, for char, byte, WordPiece, SentencePiece and GPT-2 BPE
(`tfzoo/data/hf_tokenizer.py`). Decoding skips the special tokens (`<pad>`, `<eos>`,
`<|endoftext|>`, ...); an unknown token decodes to U+FFFD, as in tfzoo.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from apps.edge.errors import AppError


class HfTokenizer:
    """A Hugging Face `tokenizers.Tokenizer` with the app's encode, decode and streamed decode.

    Args:
        text: str. The content of an `hf_tokenizer.json`.
        source: str. Where `text` came from, for error messages. Defaults to "hf_tokenizer.json".

    Example:
    >>> import json
    >>> eos = {"id": 0, "content": "<eos>", "special": True, "single_word": False, "lstrip": False,
    ...        "rstrip": False, "normalized": False}
    >>> tokenizer = HfTokenizer(json.dumps({
    ...     "version": "1.0", "added_tokens": [eos], "decoder": {"type": "Fuse"},
    ...     "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "[\\s\\S]"}, "behavior": "Isolated",
    ...                       "invert": False},
    ...     "model": {"type": "WordLevel", "vocab": {"<eos>": 0, "<unk>": 1, "a": 2, "b": 3}, "unk_token": "<unk>"}}))
    >>> tokenizer.encode("abc")
    [2, 3, 1]
    >>> tokenizer.decode([3, 2, 0])
    'ba'
    """

    def __init__(self, text: str, source: str = "hf_tokenizer.json"):
        import tokenizers  # noqa: PLC0415 (imported where it is needed: the app's one tokenizer dependency)

        try:
            self._tokenizer = tokenizers.Tokenizer.from_str(text)
        except Exception as error:  # noqa: BLE001 (tokenizers raises a bare Exception with serde's message)
            raise AppError(f"{source}: not a Hugging Face tokenizer ({' '.join(str(error).split())})") from None
        self._decoders = tokenizers.decoders
        self.vocabulary_size = self._tokenizer.get_vocab_size(with_added_tokens=True)
        self.eos_id = self.pad_id = None  # from report.json (`load_tokenizer`): the export's model facts

    def encode(self, text: str, *, specials_as_text: bool = False) -> list[int]:
        """The ids of `text` (no special tokens added).

        `specials_as_text=True` encodes a special token's spelling in `text` (`<eos>`, `<|user|>`) as
        ordinary text, as tfzoo's tokenizers do: a chat message cannot forge a role token.
        """
        try:
            self._tokenizer.encode_special_tokens = specials_as_text
            return self._tokenizer.encode(text, add_special_tokens=False).ids
        except Exception as error:  # noqa: BLE001 (e.g. a lone surrogate: Rust strings are UTF-8)
            raise AppError(f"cannot tokenize the prompt ({' '.join(str(error).split())})") from None
        finally:
            self._tokenizer.encode_special_tokens = False

    def token_id(self, token: str) -> int | None:
        """The id of the token spelled `token` (e.g. "<eos>"), None when the vocabulary has none."""
        return self._tokenizer.token_to_id(token)

    def decode(self, ids: Sequence[int]) -> str:
        """The text of `ids`, special tokens skipped."""
        return self._tokenizer.decode([int(i) for i in ids], skip_special_tokens=True)

    def continuation(self, prompt_ids: Sequence[int], new_ids: Sequence[int]) -> str:
        """The text `new_ids` add after the prompt (a WordPiece word after the prompt starts with its space)."""
        head = self.decode(prompt_ids)
        whole = self.decode([*prompt_ids, *new_ids])
        return whole[len(head) :] if whole.startswith(head) else self.decode(new_ids)

    def stream_decoder(self, prompt_ids: Sequence[int] = ()) -> Callable[[int | None], str]:
        """A function `new token id -> its text` for streaming; call it with None at the end to flush.

        A token that ends inside a character (a byte of a multi-byte UTF-8 character) gives "" and
        its text comes with the token that completes the character (`tokenizers`' `DecodeStream`).
        The pieces joined equal `continuation(prompt_ids, new_ids)`.
        """
        prompt_ids = [int(i) for i in prompt_ids]
        stream = self._decoders.DecodeStream(ids=prompt_ids, skip_special_tokens=True)
        new_ids: list[int] = []
        written: list[str] = []

        def text_of(token: int | None) -> str:
            if token is None:  # what the stream still holds back (a dangling byte, a U+FFFD it waits on)
                whole, done = self.continuation(prompt_ids, new_ids), "".join(written)
                return whole[len(done) :] if whole.startswith(done) else ""
            new_ids.append(int(token))
            piece = stream.step(self._tokenizer, int(token)) or ""
            written.append(piece)
            return piece

        return text_of


def banned_sequences(tokenizer: HfTokenizer, words: Sequence[str], *, specials_as_text: bool = False) -> list:
    """The token sequences of each banned word: `word` and `" word"`, one containing another left out
    (as `tfzoo.stop_words.banned_sequences`). `specials_as_text`: as `HfTokenizer.encode`'s.

    Example:
    >>> banned_sequences(tokenizer, ["bad"])  # doctest: +SKIP
    [[100, 99, 102]]
    """
    candidates = []
    for word in words:
        candidates.append(list(tokenizer.encode(word, specials_as_text=specials_as_text)))
        if not word.startswith(" "):
            candidates.append(list(tokenizer.encode(" " + word, specials_as_text=specials_as_text)))
    kept: list[list[int]] = []
    for ids in sorted(candidates, key=len):
        inside = any(ids[i : i + len(k)] == k for k in kept for i in range(len(ids) - len(k) + 1))
        if ids and not inside:
            kept.append(ids)
    return kept


def load_tokenizer(export_dir: str, report: dict) -> HfTokenizer:
    """Reads the `hf_tokenizer.json` that `report` (the export's `report.json`) names; `AppError` on one line."""
    name = report.get("model", {}).get("hf_tokenizer") if isinstance(report.get("model"), dict) else None
    if not isinstance(name, str) or os.path.basename(name) != name or name in ("", ".", ".."):
        raise AppError(
            f"{os.path.join(export_dir, 'report.json')} names no hf_tokenizer.json (an export older than the "
            "apps' tokenizer, or a tokenizer without a vocabulary): re-export, or use python -m tfzoo.generate"
        )
    path = os.path.join(export_dir, name)
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError:
        raise AppError(f"no tokenizer at {path} (the export writes {name} next to the model)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise AppError(f"cannot read {path}: {error}") from None
    tokenizer = HfTokenizer(text, source=path)
    facts = report["model"]
    eos_ids, pad_id = facts.get("eos_ids"), facts.get("pad_id")
    if not isinstance(eos_ids, list) or not eos_ids or not all(_is_id(i) for i in [*eos_ids, pad_id]):
        raise AppError(f"{os.path.join(export_dir, 'report.json')}: model.eos_ids and model.pad_id must be token ids")
    tokenizer.eos_id, tokenizer.pad_id = int(eos_ids[0]), int(pad_id)
    return tokenizer


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
