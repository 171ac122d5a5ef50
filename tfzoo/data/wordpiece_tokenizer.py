"""WordPiece tokenizer: a subword vocabulary learned from the training text with tensorflow-text, or BERT's.

Two ways to cut text into words. The zoo's own (learned) vocabularies split
it on ASCII whitespace only (no lower-casing, no punctuation
split; what `tf.strings.split` does), so `decode(encode(text))` is the text with
its whitespace runs turned into single spaces, whenever every character of
`text` was seen in training. Each word becomes the longest vocabulary prefix,
then the longest `##`-prefixed continuations (BERT's greedy longest-match-first);
a word that cannot be covered, or longer than `MAX_BYTES_PER_WORD` UTF-8 bytes,
becomes `<unk>`.

`encode`/`decode` run in plain Python (no TensorFlow); `encode_tf`/`decode_tf`
do the same inside a TensorFlow graph (`tensorflow_text.FastWordpieceTokenizer`),
for tf.data pipelines and the SavedModel's text-in, text-out signature.

A BERT vocabulary (`from_bert_vocabulary`, what `python -m tfzoo.convert bert`
builds from `vocab.txt`) cuts words with BERT's basic tokenization instead
(`tfzoo.data.basic_tokenization`: control characters, Chinese characters,
accents, lower-casing, punctuation), keeps BERT's special tokens where the
vocabulary has them (`[PAD]`, `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]`, under the
zoo's roles `<pad>`, `<unk>`, `<cls>`, `<eos>`, `<mask>`), and makes a word of
more than `MAX_CHARS_PER_WORD` characters `[UNK]`: the ids of Hugging Face's
`BertTokenizer`. Its in-graph form (`encode_tf`) runs the same steps as
TensorFlow ops, with two documented differences (`_basic_words_tf`).
"""

from __future__ import annotations

import collections
import os
import re

import numpy as np

from tfzoo.data.basic_tokenization import basic_tokenize
from tfzoo.data.tokenizer import Tokenizer
from tfzoo.files import atomic_write_bytes

VOCABULARY_FILENAME = "vocab.txt"
SUFFIX_INDICATOR = "##"
MAX_BYTES_PER_WORD = 100  # tensorflow-text's default; longer words become <unk>.
MAX_CHARS_PER_WORD = 100  # BERT's `max_input_chars_per_word` (basic tokenization); longer words become [UNK].
UNK_TEXT = "\ufffd"  # What `decode` writes for `<unk>` (as CharTokenizer does).
SPECIAL_TOKENS = {"<pad>": 0, "<eos>": 1, "<unk>": 2, "<bos>": 3, "<cls>": 4, "<mask>": 5}
REQUIRED_ROLES = ("<pad>", "<eos>", "<unk>")  # what every vocabulary's special_tokens must name
# BERT's special tokens -> the zoo's roles ([SEP] ends a sequence: the zoo's <eos>).
BERT_ROLES = {
    "pad_token": "<pad>",
    "unk_token": "<unk>",
    "cls_token": "<cls>",
    "sep_token": "<eos>",
    "mask_token": "<mask>",
}
BERT_TOKENS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}
_WHITESPACE = re.compile(r"[ \t\n\r\f\v]+")  # tf.strings.split's separators


def split_words(text: str) -> list[str]:
    """The words of `text`, split on ASCII whitespace like `tf.strings.split`."""
    return [word for word in _WHITESPACE.split(text) if word]


class WordpieceTokenizer(Tokenizer):
    """WordPiece subword tokenizer with BERT's special tokens first.

    Ids: `<pad>`=0, `<eos>`=1, `<unk>`=2, `<bos>`=3, `<cls>`=4, `<mask>`=5, then
    the learned pieces (every character seen, alone and as `##` continuation,
    then longer pieces by frequency). `decode` drops every special token but
    `<unk>`, which it writes as U+FFFD. A BERT vocabulary keeps its own order
    and names its special tokens' ids in `special_tokens` (module docstring).

    On disk: `tokenizer.json` (`"vocabulary_file": "vocab.txt"`,
    `"suffix_indicator": "##"`, `"max_bytes_per_word": 100`; with basic
    tokenization `"basic_tokenization": true`, `"lower_case"`, `"strip_accents"`,
    `"tokenize_chinese_chars"` and `"max_chars_per_word": 100` instead) beside
    `vocab.txt`, one token per line in id order (BERT's format).

    Args:
        vocabulary: sequence of str. Every token in id order (starting with the
            zoo's special tokens unless `special_tokens` is given).
        special_tokens: dict or None. Role (`<pad>`, `<eos>`, `<unk>`, and
            optionally `<cls>`, `<mask>`, `<bos>`) -> id. None: the zoo's
            `SPECIAL_TOKENS`, which the vocabulary must start with.
        basic_tokenization: bool. Cut words BERT's way (`basic_tokenization.py`)
            instead of on whitespace only. Defaults to False.
        lower_case: bool. With basic tokenization: lower-case. Defaults to False.
        strip_accents: bool or None. With basic tokenization: drop accents; None
            follows `lower_case`. Defaults to None.
        tokenize_chinese_chars: bool. With basic tokenization: one word per
            Chinese character. Defaults to True.

    Example:
    >>> tokenizer = WordpieceTokenizer.from_text("low lower lowest " * 20, vocabulary_size=40)
    >>> tokenizer.decode(tokenizer.encode("lowest low"))
    'lowest low'
    """

    type_name = "wordpiece"
    special_tokens = None  # per file: SPECIAL_TOKENS, or a BERT vocabulary's own ids (checked by __init__)

    def __init__(
        self,
        vocabulary,
        special_tokens: dict[str, int] | None = None,
        *,
        basic_tokenization: bool = False,
        lower_case: bool = False,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
    ):
        vocabulary = list(vocabulary)
        if special_tokens is None:
            specials = list(SPECIAL_TOKENS)
            if vocabulary[: len(specials)] != specials:
                raise ValueError(f"vocabulary must start with {specials}, got {vocabulary[: len(specials)]}")
            special_tokens = dict(SPECIAL_TOKENS)
        if not isinstance(special_tokens, dict) or any(role not in special_tokens for role in REQUIRED_ROLES):
            raise ValueError(
                f"special_tokens must map at least {', '.join(REQUIRED_ROLES)} to ids, got {special_tokens!r}"
            )
        for role, index in special_tokens.items():
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(vocabulary):
                raise ValueError(f"special token {role} id {index!r} is outside the vocabulary [0, {len(vocabulary)})")
        if not basic_tokenization and (lower_case or strip_accents is not None or not tokenize_chinese_chars):
            raise ValueError("lower_case, strip_accents and tokenize_chinese_chars need basic_tokenization=True")
        seen = {}
        for index, token in enumerate(vocabulary):
            if not isinstance(token, str) or split_words(token) != [token]:
                raise ValueError(f"vocabulary entry {index} ({token!r}) must be a non-empty string without whitespace")
            if token in seen:
                raise ValueError(f"duplicate vocabulary entry {token!r} at ids {seen[token]} and {index}")
            seen[token] = index
        self.vocabulary = vocabulary
        self.special_tokens = dict(special_tokens)
        self.pad_id, self.eos_id, self.unk_id = (self.special_tokens[role] for role in REQUIRED_ROLES)
        self.basic_tokenization = bool(basic_tokenization)
        self.lower_case = bool(lower_case)
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = bool(tokenize_chinese_chars)
        self._ids = seen
        self._tf_tokenizer = None

    @classmethod
    def from_bert_vocabulary(
        cls,
        vocabulary,
        *,
        lower_case: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        tokens: dict[str, str] | None = None,
    ) -> WordpieceTokenizer:
        """The tokenizer of a BERT `vocab.txt` (its lines, in id order), with the ids of `BertTokenizer`.

        Args:
            vocabulary: sequence of str. The tokens in id order.
            lower_case, strip_accents, tokenize_chinese_chars: as in the class (`tokenizer_config.json`'s
                `do_lower_case`, `strip_accents`, `tokenize_chinese_chars`).
            tokens: dict or None. `tokenizer_config.json`'s names of the special tokens (`pad_token`,
                `unk_token`, `cls_token`, `sep_token`, `mask_token`); missing ones are BERT's (`[PAD]`, ...).

        Raises:
            ValueError: the vocabulary lacks the pad, unknown or separator token.

        Example:
        >>> tokenizer = WordpieceTokenizer.from_bert_vocabulary(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hi", "##s"])
        >>> tokenizer.encode("His").tolist(), tokenizer.special_tokens["<cls>"]
        ([4, 5], 2)
        """
        vocabulary = list(vocabulary)
        names = {**BERT_TOKENS, **(tokens or {})}
        index = {token: i for i, token in enumerate(vocabulary)}
        special_tokens = {}
        for field, role in BERT_ROLES.items():
            if names[field] in index:
                special_tokens[role] = index[names[field]]
            elif role in REQUIRED_ROLES:
                raise ValueError(f"the vocabulary has no {field} {names[field]!r}")
        return cls(
            vocabulary,
            special_tokens,
            basic_tokenization=True,
            lower_case=lower_case,
            strip_accents=strip_accents,
            tokenize_chinese_chars=tokenize_chinese_chars,
        )

    @classmethod
    def from_text(cls, text: str, vocabulary_size: int = 1000) -> WordpieceTokenizer:
        """Learns a vocabulary of at most about `vocabulary_size` tokens from `text`.

        Uses tensorflow-text's WordPiece learner (the one behind
        `bert_vocab_from_dataset`) on the whitespace-separated words. The
        learner keeps every character seen (alone and with `##`), so the result
        can exceed `vocabulary_size` when the text has many distinct characters.

        Raises:
            ValueError: empty text, or `vocabulary_size` too small for the
                special tokens plus one token.
        """
        from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner  # noqa: PLC0415 (tensorflow-text only when a vocabulary is learned)

        minimum = len(SPECIAL_TOKENS) + 1
        if isinstance(vocabulary_size, bool) or not isinstance(vocabulary_size, int) or vocabulary_size < minimum:
            raise ValueError(
                f"cannot build a wordpiece vocabulary of {vocabulary_size!r} tokens: it needs at least {minimum} "
                f"(the {len(SPECIAL_TOKENS)} special tokens plus one)"
            )
        counts = collections.Counter(split_words(text))
        if not counts:
            raise ValueError("cannot build a wordpiece vocabulary from empty (or whitespace-only) text")
        learned = learner.learn(
            counts,
            vocabulary_size,
            list(SPECIAL_TOKENS),
            lower_thresh=1,
            max_token_length=MAX_BYTES_PER_WORD,
            joiner=SUFFIX_INDICATOR,
        )
        return cls(learned)

    @property
    def vocabulary_size(self) -> int:
        return len(self.vocabulary)

    def _word_ids(self, word: str) -> list[int]:
        if self.basic_tokenization:
            if len(word) > MAX_CHARS_PER_WORD:
                return [self.unk_id]
        elif len(word.encode("utf-8", "surrogatepass")) > MAX_BYTES_PER_WORD:
            return [self.unk_id]
        ids, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else SUFFIX_INDICATOR + word[start:end]
                if piece in self._ids:
                    ids.append(self._ids[piece])
                    start = end
                    break
            else:
                return [self.unk_id]
        return ids

    def words(self, text: str) -> list[str]:
        """The words WordPiece cuts into pieces: whitespace-separated, or BERT's basic tokenization."""
        if not self.basic_tokenization:
            return split_words(text)
        return basic_tokenize(
            text,
            lower_case=self.lower_case,
            strip_accents=self.strip_accents,
            tokenize_chinese_chars=self.tokenize_chinese_chars,
            special_tokens=[self.vocabulary[i] for i in self.special_tokens.values()],
        )

    def encode(self, text: str) -> np.ndarray:
        ids = [i for word in self.words(text) for i in self._word_ids(word)]
        return np.asarray(ids, dtype=np.int32)

    def encode_input(self, text: str, max_length: int | None = None) -> np.ndarray:
        """`<cls> ids <eos>` (BERT: `[CLS] ... [SEP]`), the text cut so the whole has at most `max_length` ids.

        The ids of `BertTokenizer(text, truncation=True, max_length=max_length)["input_ids"]`.

        Example:
        >>> tokenizer = WordpieceTokenizer.from_bert_vocabulary(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"])
        >>> tokenizer.encode_input("a a a", max_length=4).tolist()
        [2, 4, 4, 3]
        """
        cls_id = self.special_tokens.get("<cls>", self.special_tokens.get("<bos>"))
        first = [] if cls_id is None else [cls_id]
        room = None if max_length is None else max(max_length - len(first) - 1, 0)
        ids = self.encode(text).tolist()[:room]
        return np.asarray(first + ids + [self.eos_id], dtype=np.int32)

    def _surfaces(self) -> tuple[list[str], list[str]]:
        """Per id: the separator written before it (" " starts a word) and its text."""
        separators, pieces = [], []
        special = set(self.special_tokens.values())
        for index, token in enumerate(self.vocabulary):
            if index in special:
                separators.append(" " if index == self.unk_id else "")
                pieces.append(UNK_TEXT if index == self.unk_id else "")
            elif token.startswith(SUFFIX_INDICATOR) and len(token) > len(SUFFIX_INDICATOR):
                separators.append("")
                pieces.append(token[len(SUFFIX_INDICATOR) :])
            else:
                separators.append(" ")
                pieces.append(token)
        return separators, pieces

    def decode(self, ids) -> str:
        ids = self._check_ids(ids)
        separators, pieces = self._surfaces()
        text = "".join(separators[i] + pieces[i] for i in ids)
        return text[1:] if text.startswith(" ") else text

    def encode_tf(self, texts):
        """Token ids of a string tensor (B,) as an int32 RaggedTensor (B, None), inside a graph."""
        import tensorflow as tf  # noqa: PLC0415 (TensorFlow only for in-graph tokenization)

        words = self._basic_words_tf(texts) if self.basic_tokenization else tf.strings.split(texts)  # (B, None)
        ids = self._fast_wordpiece().tokenize(words)  # (B, None, None)
        return ids.merge_dims(-2, -1)

    def _basic_words_tf(self, texts):
        """BERT's basic tokenization in the graph (the Python `words` otherwise; differences below).

        The steps of `basic_tokenization.py` as TensorFlow ops: control and format characters and
        U+FFFD dropped, Unicode spaces made " ", NFD and the non-spacing marks dropped when
        stripping accents, `tf.strings.lower` (per code point), then tensorflow-text's
        `BasicTokenizer` (whitespace, punctuation, Chinese characters) and a word of more than
        `MAX_CHARS_PER_WORD` characters replaced by the unknown token. Where it differs from
        `words`: special tokens written in the text (`[MASK]`) are split like any text, and
        lower-casing without stripping accents maps a few letters by their simple case mapping
        (`İ` -> `i`, not `i̇`).
        """
        import tensorflow as tf  # noqa: PLC0415 (TensorFlow only for in-graph tokenization)
        import tensorflow_text  # noqa: PLC0415 (in-graph tokenization only)
        from tensorflow_text.python.ops.bert_tokenizer import BasicTokenizer  # noqa: PLC0415 (not exported at the top)

        if not self.tokenize_chinese_chars:
            raise ValueError("in-graph basic tokenization always splits Chinese characters (tokenize_chinese_chars)")
        text = tf.strings.regex_replace(texts, r"[\t\n\r]", " ")
        text = tf.strings.regex_replace(text, r"[\p{C}\x{FFFD}]", "")
        text = tf.strings.regex_replace(text, r"\p{Z}", " ")
        if self.lower_case if self.strip_accents is None else self.strip_accents:
            text = tf.strings.regex_replace(tensorflow_text.normalize_utf8(text, "NFD"), r"\p{Mn}", "")
        if self.lower_case:  # Σ first: tf.strings.lower would write a word-final one as ς (BertTokenizer: σ)
            text = tf.strings.lower(tf.strings.regex_replace(text, "Σ", "σ"), encoding="utf-8")
        words = BasicTokenizer(lower_case=False, keep_whitespace=False).tokenize(text)  # (B, None)
        flat = words.flat_values
        long = tf.strings.length(flat, unit="UTF8_CHAR") > MAX_CHARS_PER_WORD
        return words.with_flat_values(tf.where(long, self.vocabulary[self.unk_id], flat))

    def decode_tf(self, ids):
        """Text (B,) of int ids (B, T), dense or ragged, inside a graph; like `decode`."""
        import tensorflow as tf  # noqa: PLC0415 (TensorFlow only for in-graph tokenization)

        separators, pieces = self._surfaces()
        ids = tf.clip_by_value(tf.cast(ids, tf.int32), 0, self.vocabulary_size - 1)
        surfaces = tf.constant([s + p for s, p in zip(separators, pieces)])
        text = tf.strings.reduce_join(tf.gather(surfaces, ids), axis=-1)
        return tf.strings.regex_replace(text, "^ ", "")

    @property
    def tf_tokenizer(self):
        """The tensorflow-text tokenizer (a `tf.Module`) behind `encode_tf`.

        Attach it to the `tf.Module` you save (`module.tokenizer = tokenizer.tf_tokenizer`)
        so the SavedModel tracks its model.
        """
        return self._fast_wordpiece()

    def _fast_wordpiece(self):
        if self._tf_tokenizer is None:
            import tensorflow as tf  # noqa: PLC0415 (TensorFlow only for in-graph tokenization)
            import tensorflow_text  # noqa: PLC0415 (registers the tensorflow-text ops; only for in-graph tokenization)

            self._tf_tokenizer = tensorflow_text.FastWordpieceTokenizer(
                vocab=self.vocabulary,
                suffix_indicator=SUFFIX_INDICATOR,
                # basic tokenization has made over-long words [UNK] by characters: any byte length passes
                max_bytes_per_word=4 * MAX_CHARS_PER_WORD if self.basic_tokenization else MAX_BYTES_PER_WORD,
                token_out_type=tf.int32,
                unknown_token=self.vocabulary[self.unk_id],
                no_pretokenization=True,
            )
        return self._tf_tokenizer

    def save(self, directory: str) -> str:
        """Writes `vocab.txt`, then `tokenizer.json`, each atomically; returns the JSON's path."""
        os.makedirs(directory, exist_ok=True)
        data = "".join(token + "\n" for token in self.vocabulary).encode("utf-8")
        atomic_write_bytes(os.path.join(directory, VOCABULARY_FILENAME), data)
        return super().save(directory)

    def _options(self) -> dict:
        if not self.basic_tokenization:
            return {}
        return {
            "basic_tokenization": True,
            "lower_case": self.lower_case,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
        }

    def get_config(self) -> dict:
        config = {"vocabulary": list(self.vocabulary), **self._options()}
        if self.special_tokens != SPECIAL_TOKENS:
            config["special_tokens"] = dict(self.special_tokens)
        return config

    def _json_fields(self) -> dict:
        fields = {"vocabulary_file": VOCABULARY_FILENAME, "suffix_indicator": SUFFIX_INDICATOR}
        if self.basic_tokenization:
            return {**fields, "max_chars_per_word": MAX_CHARS_PER_WORD, **self._options()}
        return {**fields, "max_bytes_per_word": MAX_BYTES_PER_WORD}

    @classmethod
    def _from_json(cls, data: dict, source: str) -> WordpieceTokenizer:
        basic = data.get("basic_tokenization", False)
        if not isinstance(basic, bool):
            raise ValueError(f"{source}: 'basic_tokenization' must be true or false, got {basic!r}")
        limit = ("max_chars_per_word", MAX_CHARS_PER_WORD) if basic else ("max_bytes_per_word", MAX_BYTES_PER_WORD)
        for field, expected in (("suffix_indicator", SUFFIX_INDICATOR), limit):
            if data.get(field) != expected:
                raise ValueError(f"{source}: {field!r} must be {expected!r}, got {data.get(field)!r}")
        name = data.get("vocabulary_file")
        plain = isinstance(name, str) and name not in ("", ".", "..") and "\0" not in name  # open() rejects NUL
        if not plain or os.path.basename(name) != name:
            raise ValueError(f"{source}: 'vocabulary_file' must be a file name beside the JSON, got {name!r}")
        path = os.path.join(os.path.dirname(source), name)
        try:
            with open(path, encoding="utf-8") as file:
                vocabulary = file.read().split("\n")
        except FileNotFoundError:
            raise ValueError(f"{source}: vocabulary file {path} not found") from None
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"{source}: cannot read vocabulary file {path} ({error})") from None
        if vocabulary and vocabulary[-1] == "":
            vocabulary.pop()
        options = {}
        if basic:
            for field, kinds in (
                ("lower_case", (bool,)),
                ("strip_accents", (bool, type(None))),
                ("tokenize_chinese_chars", (bool,)),
            ):
                if not isinstance(data.get(field), kinds):
                    raise ValueError(
                        f"{source}: {field!r} must be {' or '.join(k.__name__ for k in kinds)}, got {data.get(field)!r}"
                    )
                options[field] = data[field]
        specials = data["special_tokens"]
        if not basic and specials != SPECIAL_TOKENS:
            raise ValueError(f"{source}: special_tokens must be {SPECIAL_TOKENS}, got {specials!r}")
        try:
            return cls(
                vocabulary, None if specials == SPECIAL_TOKENS else specials, basic_tokenization=basic, **options
            )
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
