"""BERT's basic tokenization: the text cut into words before WordPiece, as Hugging Face's `BertTokenizer` does it.

The steps, in the order of the `tokenizers` library's `BertNormalizer` and
`BertPreTokenizer` (which `transformers.BertTokenizer` runs):

1. clean: drop NUL, U+FFFD and control characters (Unicode category C*,
   except tab, newline and carriage return); every whitespace becomes a space;
2. Chinese characters (the CJK Unified Ideographs blocks) get a space on each
   side, so each is a word of its own;
3. accents: NFD, then the non-spacing marks (category Mn) are dropped; on by
   default when lower-casing (`strip_accents=None`);
4. lower-casing, character by character (`str.lower` of each: no final-sigma
   rule, as Rust's `char::to_lowercase`, so "ΣΑΣ" gives "σασ");
5. words are split on whitespace, and every punctuation character (ASCII
   punctuation or Unicode category P*) becomes a word of its own.

Special tokens (`[CLS]`, `[MASK]`, ...) written in the text are matched in the
raw text first, case-sensitively, and kept whole, as `BertTokenizer` does with
its added tokens.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

# The CJK Unified Ideographs blocks BERT treats as one word per character (not Hangul, Hiragana, Katakana).
_CHINESE_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def is_chinese_character(char: str) -> bool:
    """Whether `char` is in one of the CJK Unified Ideographs blocks.

    Example:
    >>> is_chinese_character("中"), is_chinese_character("a")
    (True, False)
    """
    code = ord(char)
    return any(low <= code <= high for low, high in _CHINESE_RANGES)


def is_punctuation(char: str) -> bool:
    """ASCII punctuation (`$`, `+`, `^`, ... included) or Unicode category P*.

    Example:
    >>> is_punctuation("$"), is_punctuation("¿"), is_punctuation("a")
    (True, True, False)
    """
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _clean(text: str) -> str:
    out = []
    for char in text:
        if char in "\t\n\r":
            out.append(" ")
        elif char in ("\0", "\ufffd") or unicodedata.category(char).startswith("C"):
            continue
        else:
            out.append(" " if char.isspace() else char)
    return "".join(out)


def normalize(text: str, *, lower_case: bool, strip_accents: bool | None, tokenize_chinese_chars: bool) -> str:
    """Steps 1-4 of the module docstring on `text`.

    Example:
    >>> normalize("Héllo\\t中国", lower_case=True, strip_accents=None, tokenize_chinese_chars=True)
    'hello  中  国 '
    """
    text = _clean(text)
    if tokenize_chinese_chars:
        text = "".join(f" {c} " if is_chinese_character(c) else c for c in text)
    if lower_case if strip_accents is None else strip_accents:
        text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    if lower_case:
        text = "".join(c.lower() for c in text)  # per character: "Σ" is "σ" even at a word's end
    return text


def split_punctuation(text: str) -> list[str]:
    """Whitespace-separated words of `text`, each punctuation character a word of its own (step 5).

    Example:
    >>> split_punctuation("don't stop!")
    ['don', "'", 't', 'stop', '!']
    """
    words = []
    for word in text.split():
        current = []
        for char in word:
            if is_punctuation(char):
                if current:
                    words.append("".join(current))
                    current = []
                words.append(char)
            else:
                current.append(char)
        if current:
            words.append("".join(current))
    return words


def basic_tokenize(
    text: str,
    *,
    lower_case: bool = True,
    strip_accents: bool | None = None,
    tokenize_chinese_chars: bool = True,
    special_tokens: Sequence[str] = (),
) -> list[str]:
    """The words of `text` as BERT's basic tokenizer cuts them (module docstring); special tokens stay whole.

    Args:
        text: str.
        lower_case: bool. Lower-case the text (`do_lower_case`). Defaults to True.
        strip_accents: bool or None. Drop accents; None follows `lower_case`. Defaults to None.
        tokenize_chinese_chars: bool. One word per Chinese character. Defaults to True.
        special_tokens: sequence of str. Tokens matched in the raw text and kept as they are.

    Example:
    >>> basic_tokenize("Héllo, WORLD[MASK]中文", special_tokens=["[MASK]"])
    ['hello', ',', 'world', '[MASK]', '中', '文']
    """
    options = {
        "lower_case": lower_case,
        "strip_accents": strip_accents,
        "tokenize_chinese_chars": tokenize_chinese_chars,
    }
    specials = sorted((t for t in special_tokens if t), key=len, reverse=True)  # longest first: leftmost-longest
    parts = re.split("(" + "|".join(map(re.escape, specials)) + ")", text) if specials else [text]
    words = []
    for index, part in enumerate(parts):
        if index % 2:  # a matched special token
            words.append(part)
        elif part:
            words.extend(split_punctuation(normalize(part, **options)))
    return words
