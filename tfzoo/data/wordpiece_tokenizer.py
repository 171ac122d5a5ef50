"""WordPiece tokenizer: a subword vocabulary learned from the training text with tensorflow-text.

Text is split on ASCII whitespace only (no lower-casing, no punctuation
split; what `tf.strings.split` does), so `decode(encode(text))` is the text with
its whitespace runs turned into single spaces, whenever every character of
`text` was seen in training. Each word becomes the longest vocabulary prefix,
then the longest `##`-prefixed continuations (BERT's greedy longest-match-first);
a word that cannot be covered, or longer than `MAX_BYTES_PER_WORD` UTF-8 bytes,
becomes `<unk>`.

`encode`/`decode` run in plain Python (no TensorFlow); `encode_tf`/`decode_tf`
do the same inside a TensorFlow graph (`tensorflow_text.FastWordpieceTokenizer`),
for tf.data pipelines and the SavedModel's text-in, text-out signature.
"""

from __future__ import annotations

import collections
import os
import re

import numpy as np

from tfzoo.data.tokenizer import Tokenizer
from tfzoo.files import atomic_write_bytes

VOCABULARY_FILENAME = "vocab.txt"
SUFFIX_INDICATOR = "##"
MAX_BYTES_PER_WORD = 100  # tensorflow-text's default; longer words become <unk>.
UNK_TEXT = "\ufffd"  # What `decode` writes for `<unk>` (as CharTokenizer does).
SPECIAL_TOKENS = {"<pad>": 0, "<eos>": 1, "<unk>": 2, "<bos>": 3, "<cls>": 4, "<mask>": 5}
_WHITESPACE = re.compile(r"[ \t\n\r\f\v]+")  # tf.strings.split's separators


def split_words(text: str) -> list[str]:
    """The words of `text`, split on ASCII whitespace like `tf.strings.split`."""
    return [word for word in _WHITESPACE.split(text) if word]


class WordpieceTokenizer(Tokenizer):
    """WordPiece subword tokenizer with BERT's special tokens first.

    Ids: `<pad>`=0, `<eos>`=1, `<unk>`=2, `<bos>`=3, `<cls>`=4, `<mask>`=5, then
    the learned pieces (every character seen, alone and as `##` continuation,
    then longer pieces by frequency). `decode` drops every special token but
    `<unk>`, which it writes as U+FFFD.

    On disk: `tokenizer.json` (`"vocabulary_file": "vocab.txt"`,
    `"suffix_indicator": "##"`, `"max_bytes_per_word": 100`) beside `vocab.txt`,
    one token per line in id order (BERT's format).

    Args:
        vocabulary: sequence of str. Every token in id order, starting with the
            special tokens.

    Example:
    >>> tokenizer = WordpieceTokenizer.from_text("low lower lowest " * 20, vocabulary_size=40)
    >>> tokenizer.decode(tokenizer.encode("lowest low"))
    'lowest low'
    """

    type_name = "wordpiece"
    special_tokens = SPECIAL_TOKENS
    unk_id = SPECIAL_TOKENS["<unk>"]

    def __init__(self, vocabulary):
        vocabulary = list(vocabulary)
        specials = list(self.special_tokens)
        if vocabulary[: len(specials)] != specials:
            raise ValueError(f"vocabulary must start with {specials}, got {vocabulary[: len(specials)]}")
        seen = {}
        for index, token in enumerate(vocabulary):
            if not isinstance(token, str) or split_words(token) != [token]:
                raise ValueError(f"vocabulary entry {index} ({token!r}) must be a non-empty string without whitespace")
            if token in seen:
                raise ValueError(f"duplicate vocabulary entry {token!r} at ids {seen[token]} and {index}")
            seen[token] = index
        self.vocabulary = vocabulary
        self._ids = seen
        self._tf_tokenizer = None

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

        minimum = len(cls.special_tokens) + 1
        if isinstance(vocabulary_size, bool) or not isinstance(vocabulary_size, int) or vocabulary_size < minimum:
            raise ValueError(
                f"cannot build a wordpiece vocabulary of {vocabulary_size!r} tokens: it needs at least {minimum} "
                f"(the {len(cls.special_tokens)} special tokens plus one)"
            )
        counts = collections.Counter(split_words(text))
        if not counts:
            raise ValueError("cannot build a wordpiece vocabulary from empty (or whitespace-only) text")
        learned = learner.learn(
            counts,
            vocabulary_size,
            list(cls.special_tokens),
            lower_thresh=1,
            max_token_length=MAX_BYTES_PER_WORD,
            joiner=SUFFIX_INDICATOR,
        )
        return cls(learned)

    @property
    def vocabulary_size(self) -> int:
        return len(self.vocabulary)

    def _word_ids(self, word: str) -> list[int]:
        if len(word.encode("utf-8", "surrogatepass")) > MAX_BYTES_PER_WORD:
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

    def encode(self, text: str) -> np.ndarray:
        ids = [i for word in split_words(text) for i in self._word_ids(word)]
        return np.asarray(ids, dtype=np.int32)

    def _surfaces(self) -> tuple[list[str], list[str]]:
        """Per id: the separator written before it (" " starts a word) and its text."""
        separators, pieces = [], []
        for index, token in enumerate(self.vocabulary):
            if index < len(self.special_tokens):
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

        words = tf.strings.split(texts)  # (B, None) on whitespace
        ids = self._fast_wordpiece().tokenize(words)  # (B, None, None)
        return ids.merge_dims(-2, -1)

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
                max_bytes_per_word=MAX_BYTES_PER_WORD,
                token_out_type=tf.int32,
                unknown_token="<unk>",
                no_pretokenization=True,
            )
        return self._tf_tokenizer

    def save(self, directory: str) -> str:
        """Writes `vocab.txt`, then `tokenizer.json`, each atomically; returns the JSON's path."""
        os.makedirs(directory, exist_ok=True)
        data = "".join(token + "\n" for token in self.vocabulary).encode("utf-8")
        atomic_write_bytes(os.path.join(directory, VOCABULARY_FILENAME), data)
        return super().save(directory)

    def get_config(self) -> dict:
        return {"vocabulary": list(self.vocabulary)}

    def _json_fields(self) -> dict:
        return {
            "vocabulary_file": VOCABULARY_FILENAME,
            "suffix_indicator": SUFFIX_INDICATOR,
            "max_bytes_per_word": MAX_BYTES_PER_WORD,
        }

    @classmethod
    def _from_json(cls, data: dict, source: str) -> WordpieceTokenizer:
        for field, expected in (("suffix_indicator", SUFFIX_INDICATOR), ("max_bytes_per_word", MAX_BYTES_PER_WORD)):
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
        try:
            return cls(vocabulary)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
