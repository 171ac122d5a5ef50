"""Stop strings and banned words as text, for the CLIs: to the token sequences the decode loop takes, and back.

The decode loop stops and bans on token ids (`tfzoo.decoding.sequences`); these helpers turn the
text options of `python -m tfzoo.generate`, `python -m tfzoo.chat` and `apps.edge` into those ids
and trim the decoded text (numpy only; the tokenizer is any with `encode`/`decode`):

- a stop string is encoded on its own (`stop_sequences`); the graph stops when the new tokens end
  with those ids, and the text is then cut *before* the first occurrence of the string
  (`trim_at_stop`), which also catches a stop string the model spelled with other tokens (a BPE
  merge across its edge): there generation runs on to its limit, and the text is cut all the same.
- a banned word is encoded on its own and, when that differs, after a space (`" word"`: BPE's
  word-initial form); a sequence that contains another banned one is left out (banning the
  shorter one already keeps it out).

Example:
>>> from tfzoo.data.byte_tokenizer import ByteTokenizer
>>> tokenizer = ByteTokenizer()
>>> stop_sequences(tokenizer, ["\\nQ:"]) == [tokenizer.encode("\\nQ:").tolist()]
True
>>> trim_at_stop("yes.\\nQ: and", ["\\nQ:"])
('yes.', True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class OptionError(ValueError):
    """A stop string or banned word that cannot be used (one line)."""


def _ids(tokenizer, text: str, flag: str) -> list[int]:
    if not isinstance(text, str) or text == "":
        raise OptionError(f"{flag} is empty: give the text to {'stop at' if flag == '--stop' else 'ban'}")
    ids = [int(t) for t in np.asarray(tokenizer.encode(text)).reshape(-1)]
    if not ids:
        raise OptionError(f"{flag}={text!r} encodes to no tokens")
    return ids


def stop_sequences(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """The token ids of each stop string (`--stop`), duplicates dropped."""
    out: list[list[int]] = []
    for text in texts or ():
        ids = _ids(tokenizer, text, "--stop")
        if ids not in out:
            out.append(ids)
    return out


def _contains(longer: list[int], shorter: list[int]) -> bool:
    n = len(shorter)
    return any(longer[i : i + n] == shorter for i in range(len(longer) - n + 1))


def banned_sequences(tokenizer, words: Sequence[str]) -> list[list[int]]:
    """The token sequences that keep each banned word (`--ban`) out: `word` and `" word"`, minimal.

    Example:
    >>> from tfzoo.data.byte_tokenizer import ByteTokenizer
    >>> len(banned_sequences(ByteTokenizer(), ["bad"]))  # " bad" contains "bad": one sequence is enough
    1
    """
    candidates: list[list[int]] = []
    for word in words or ():
        ids = _ids(tokenizer, word, "--ban")
        candidates.append(ids)
        if not word.startswith(" "):
            spaced = [int(t) for t in np.asarray(tokenizer.encode(" " + word)).reshape(-1)]
            candidates.append(spaced)
    kept: list[list[int]] = []
    for ids in sorted(candidates, key=len):
        if ids and not any(_contains(ids, other) for other in kept):
            kept.append(ids)
    return kept


def trim_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """`(text before the first stop string, whether one was found)`."""
    cut = min((i for i in (text.find(s) for s in stops or () if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
