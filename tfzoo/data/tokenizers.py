"""The tokenizer registry: type name -> class, `build_tokenizer` and `load_tokenizer`.

The base class and the `tokenizer.json` format are in `tfzoo.data.tokenizer`;
each subclass is in its own `*_tokenizer.py` module and imports only the
base class, so the imports go one way: subclasses -> base, registry ->
subclasses.

Example:
>>> build_tokenizer("byte", "").type_name
'byte'
"""

from __future__ import annotations

import json
import os

from tfzoo.data.bpe_tokenizer import BpeTokenizer
from tfzoo.data.byte_tokenizer import ByteTokenizer
from tfzoo.data.char_tokenizer import CharTokenizer
from tfzoo.data.chat_template import ChatTokenizer
from tfzoo.data.id_tokenizer import IdTokenizer
from tfzoo.data.sentencepiece_tokenizer import SentencepieceTokenizer
from tfzoo.data.tokenizer import FORMAT_VERSION, TOKENIZER_FILENAME, Tokenizer
from tfzoo.data.wordpiece_tokenizer import WordpieceTokenizer

# The `type` of `tokenizer.json` -> the class that reads it; adding a tokenizer is one line here.
TOKENIZER_CLASSES: dict[str, type[Tokenizer]] = {
    "char": CharTokenizer,
    "byte": ByteTokenizer,
    "wordpiece": WordpieceTokenizer,
    "sentencepiece": SentencepieceTokenizer,
    "bpe": BpeTokenizer,  # GPT-2's, from a converted checkpoint (tfzoo.convert); not learned from text
    "ids": IdTokenizer,  # token ids as text, for checkpoints converted without a vocabulary
    "chat": ChatTokenizer,  # another tokenizer plus chat role tokens (`chat:BASE`, tfzoo.data.chat_template)
}


def build_tokenizer(name: str, train_text: str, **options) -> Tokenizer:
    """Builds the tokenizer called `name` from the training text.

    Args:
        name: str. `"char"` (vocabulary: the distinct characters of
            `train_text`), `"byte"` (UTF-8 bytes; ignores `train_text`),
            `"wordpiece"` or `"sentencepiece"` (subwords learned from `train_text`),
            or `"file:PATH"`: the tokenizer saved at PATH (a folder with
            `tokenizer.json`, e.g. a converted GPT-2's `WORKDIR/tokenizer`), or `"chat:BASE"`:
            the tokenizer BASE plus the chat role tokens (`tfzoo.data.chat_template`).
        train_text: str. The training split.
        **options: passed to the tokenizer's `from_text`, e.g.
            `vocabulary_size=` for "wordpiece" and "sentencepiece".

    Example:
    >>> build_tokenizer("char", "abca").vocabulary_size
    6
    """
    if name.startswith("file:"):
        return load_tokenizer(name[len("file:") :])
    if name.startswith("chat:"):
        return ChatTokenizer(build_tokenizer(name[len("chat:") :], train_text, **options))
    classes = TOKENIZER_CLASSES
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
    return _tokenizer_from_json(data, path)


def _tokenizer_from_json(data, path: str) -> Tokenizer:
    """The tokenizer of the parsed `tokenizer.json` `data` read from `path` (checked field by field)."""
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    for field in ("type", "version", "special_tokens"):
        if field not in data:
            raise ValueError(f"{path}: missing field {field!r}")
    if data["version"] != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported version {data['version']!r}, expected {FORMAT_VERSION}")
    classes = TOKENIZER_CLASSES
    if not isinstance(data["type"], str) or data["type"] not in classes:
        raise ValueError(f"{path}: unknown tokenizer type {data['type']!r}; valid types: {', '.join(sorted(classes))}")
    cls = classes[data["type"]]
    if cls is ChatTokenizer:  # wraps another tokenizer's JSON (`base`), read the same way
        base = data.get("base")
        if not isinstance(base, dict) or base.get("type") == "chat":
            raise ValueError(f"{path}: a chat tokenizer needs a 'base' tokenizer object (not another chat one)")
        tokenizer = ChatTokenizer.wrap_json(data, _tokenizer_from_json(base, path), path)
    else:
        if cls.special_tokens is not None and data["special_tokens"] != cls.special_tokens:  # None: checked per file
            raise ValueError(f"{path}: special_tokens must be {cls.special_tokens}, got {data['special_tokens']!r}")
        tokenizer = cls._from_json(data, path)
    if "vocabulary_size" in data and data["vocabulary_size"] != tokenizer.vocabulary_size:
        raise ValueError(
            f"{path}: vocabulary_size is {data['vocabulary_size']!r} but the vocabulary has "
            f"{tokenizer.vocabulary_size} entries"
        )
    return tokenizer
