"""The zoo's tokenizers as TensorFlow ops, for the SavedModel's text-in, text-out signature.

`TokenizerOps(tokenizer)` takes a tfzoo tokenizer (or the content of its
`tokenizer.json`, for the types whose JSON holds everything) and builds the
graph ops of `serving_default`, so that the serving graph needs no Python and
no tfzoo:

- char: `tf.strings.unicode_decode` to code points, then a `searchsorted`
  lookup in the sorted code points of the vocabulary (unknown -> `<unk>`).
- byte: `tf.strings.bytes_split` + `tf.io.decode_raw`, id = byte + offset.
- wordpiece: `tf.strings.split` on whitespace + `tensorflow_text.FastWordpieceTokenizer`
  (`WordpieceTokenizer.encode_tf`).
- sentencepiece: `tensorflow_text.SentencepieceTokenizer` on the model proto
  (`SentencepieceTokenizer.encode_tf`; decoding with its `detokenize`).
- bpe: keras-hub's graph `BytePairTokenizer` (`tfzoo.data.bpe_ops.BpeOps`).

Decoding (but for sentencepiece) gathers one string per id (`<pad>`/`<eos>`
-> "", `<unk>` -> U+FFFD; wordpiece: " word" or the `##` continuation) and
joins them; byte and bpe output is made valid UTF-8 (invalid bytes -> U+FFFD).

The wordpiece, sentencepiece and bpe ops hold tensorflow-text resources (a
model, lookup tables): `trackable` is the `tf.Module` that owns them, to keep as
an attribute of the saved module. A SavedModel with these ops loads in a
process that imports `tensorflow` and `tensorflow_text` (which registers the
ops). These ops are SavedModel-only (string ops are not TFLite builtins).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfzoo.decoding.graph_ops import clamp

UNK_TEXT = "\ufffd"
SUPPORTED_TYPES = ("char", "byte", "wordpiece", "sentencepiece", "bpe")
NEEDS_TENSORFLOW_TEXT = ("wordpiece", "sentencepiece", "bpe")  # loading their SavedModel imports tensorflow_text
_FROM_OBJECT = ("wordpiece", "sentencepiece")  # their JSON points at side files: pass the tokenizer itself


class TokenizerOps:
    """Encodes prompt strings to right-padded ids and decodes generated ids to strings, in the graph.

    Args:
        tokenizer: a tfzoo `Tokenizer` of a type in `SUPPORTED_TYPES`, or the
            content of its `tokenizer.json` (dict; "char", "byte" and "bpe" only:
            the others keep their vocabulary in a side file).

    Example:
    >>> ops = TokenizerOps({"type": "byte", "version": 1, "vocabulary_size": 258,
    ...                     "special_tokens": {"<pad>": 0, "<eos>": 1}, "byte_offset": 2})
    >>> ids, lengths = ops.encode(tf.constant(["hi", ""]), max_tokens=4, empty_id=1)
    >>> ids.numpy().tolist(), lengths.numpy().tolist()
    ([[106, 107, 0, 0], [1, 0, 0, 0]], [2, 1])
    """

    def __init__(self, tokenizer):
        tokenizer_json = tokenizer if isinstance(tokenizer, dict) else tokenizer.to_json()
        tokenizer_type = tokenizer_json.get("type")
        if tokenizer_type not in SUPPORTED_TYPES:
            supported = ", ".join(SUPPORTED_TYPES)
            raise ValueError(f"no in-graph ops for tokenizer type {tokenizer_type!r}; supported: {supported}")
        if tokenizer_type in _FROM_OBJECT and isinstance(tokenizer, dict):
            raise ValueError(f"a {tokenizer_type} tokenizer's ops need the tokenizer object, not its tokenizer.json")
        self.tokenizer_type = tokenizer_type
        self.trackable = None  # the tf.Module owning the ops' resources (tensorflow-text models, tables)
        specials = tokenizer_json["special_tokens"]
        if tokenizer_type == "bpe":
            from tfzoo.data.bpe_ops import BpeOps  # noqa: PLC0415 (imports keras-hub)

            self._bpe = self.trackable = BpeOps(tokenizer_json)
            self.pad_id = self.eos_id = self._bpe.eos_id  # GPT-2: end-of-text pads
            self._pieces = list(self._bpe.pieces)
            self.vocabulary_size = len(self._pieces)
            return
        self.pad_id = int(specials["<pad>"])
        self.eos_id = int(specials["<eos>"])
        if tokenizer_type == "char":
            self._init_char(tokenizer_json)
        elif tokenizer_type == "byte":
            self.byte_offset = int(tokenizer_json["byte_offset"])
            self._pieces = [b""] * self.byte_offset + [bytes([b]) for b in range(256)]
        elif tokenizer_type == "wordpiece":
            self._tokenizer = tokenizer
            self.trackable = tokenizer.tf_tokenizer
            separators, pieces = tokenizer._surfaces()  # noqa: SLF001 (the Python decode's own table)
            self._pieces = [(s + p).encode("utf-8", "surrogatepass") for s, p in zip(separators, pieces)]
        else:  # sentencepiece: decoded by its detokenizer; the table only sizes the vocabulary
            self._tokenizer = tokenizer
            self.trackable = tokenizer.tf_tokenizer
            self._pieces = [b""] * tokenizer.vocabulary_size
        self.vocabulary_size = len(self._pieces)

    def _init_char(self, tokenizer_json: dict) -> None:
        specials = tokenizer_json["special_tokens"]
        vocabulary = tokenizer_json["vocabulary"]
        num_specials = len(specials)
        codes = np.array([ord(c) for c in vocabulary[num_specials:]], dtype=np.int64)
        order = np.argsort(codes, kind="stable")
        self._sorted_codes = codes[order].astype(np.int32)  # (K,)
        self._sorted_ids = (order + num_specials).astype(np.int32)  # (K,)
        self.unk_id = int(specials["<unk>"])
        pieces = [""] * len(vocabulary)
        pieces[self.unk_id] = UNK_TEXT
        for i in range(num_specials, len(vocabulary)):
            pieces[i] = vocabulary[i]
        self._pieces = [p.encode("utf-8", "surrogatepass") for p in pieces]

    def _ids(self, prompts: tf.Tensor) -> tf.RaggedTensor:
        """Ragged int32 (B, None) ids of a batch of strings."""
        if self.tokenizer_type == "bpe":
            return self._bpe.ids(prompts)
        if self.tokenizer_type in _FROM_OBJECT:
            return tf.cast(self._tokenizer.encode_tf(prompts), tf.int32)
        if self.tokenizer_type == "char":
            codes = tf.strings.unicode_decode(prompts, "UTF-8", errors="replace")  # (B, None) int32
            flat = codes.flat_values
            index = tf.searchsorted(self._sorted_codes, flat, side="left")
            index = clamp(index, 0, len(self._sorted_codes) - 1)
            known = tf.equal(tf.gather(self._sorted_codes, index), flat)
            ids = tf.where(known, tf.gather(self._sorted_ids, index), self.unk_id)
            return codes.with_flat_values(ids)
        pieces = tf.strings.bytes_split(prompts)  # (B, None) single-byte strings
        values = tf.io.decode_raw(pieces.flat_values, tf.uint8, fixed_length=1)[:, 0]
        return pieces.with_flat_values(tf.cast(values, tf.int32) + self.byte_offset)

    def ragged_ids(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Ragged int32 (B, None) ids of a batch of strings, nothing added or cut (char: unknown -> `<unk>`)."""
        return self._ids(texts)

    def token_counts(self, texts: tf.Tensor) -> tf.Tensor:
        """int32 (B,): how many tokens each string encodes to."""
        return tf.cast(self._ids(texts).row_lengths(), tf.int32)

    def encode(self, prompts: tf.Tensor, max_tokens: int, empty_id: int) -> tuple[tf.Tensor, tf.Tensor]:
        """Ids of `prompts`, keeping each prompt's last `max_tokens` tokens.

        Args:
            prompts: string (B,).
            max_tokens: int. Longest prompt kept (its end: the text nearest the completion).
            empty_id: int. The single token an empty prompt becomes.

        Returns:
            `(token_ids int32 (B, max_tokens) right-padded with the pad id, lengths int32 (B,) >= 1)`.
        """
        ragged = self._ids(prompts)
        full = tf.cast(ragged.row_lengths(), tf.int32)  # (B,)
        lengths = tf.minimum(full, max_tokens)
        start = tf.cast(ragged.row_starts(), tf.int32) + full - lengths  # (B,) flat index of the first kept id
        slots = tf.range(max_tokens, dtype=tf.int32)
        flat = ragged.flat_values
        index = clamp(start[:, None] + slots[None, :], 0, tf.maximum(tf.size(flat) - 1, 0))
        values = tf.gather(tf.concat([flat, [self.pad_id]], 0), index)  # the pad keeps an empty batch valid
        token_ids = tf.where(slots[None, :] < lengths[:, None], values, self.pad_id)  # (B, max_tokens)
        empty = tf.equal(lengths, 0)
        token_ids = tf.where(empty[:, None] & tf.equal(slots[None, :], 0), empty_id, token_ids)
        return token_ids, tf.maximum(lengths, 1)

    def encode_inputs(self, texts: tf.Tensor, max_tokens: int, cls_id: int | None) -> tuple[tf.Tensor, tf.Tensor]:
        """`[CLS] ids [SEP]` of each text, cut so a row has at most `max_tokens` ids (the text's start kept).

        The ids of the Python tokenizer's `encode_input(text, max_tokens)` (BERT's
        `BertTokenizer(truncation=True)`), for encoder inputs; `cls_id` None: no first token.

        Returns:
            `(token_ids int32 (B, W) right-padded with the pad id, W the longest row; lengths int32 (B,))`.
        """
        ragged = self._ids(texts)
        first = [] if cls_id is None else [cls_id]
        room = max(int(max_tokens) - len(first) - 1, 0)
        batch = tf.shape(texts, out_type=tf.int64)[:1]
        ends = [tf.RaggedTensor.from_tensor(tf.fill(tf.concat([batch, [1]], 0), i)) for i in (*first, self.eos_id)]
        rows = tf.concat([*ends[: len(first)], ragged[:, :room], ends[-1]], axis=1)  # (B, None)
        return rows.to_tensor(default_value=self.pad_id), tf.cast(rows.row_lengths(), tf.int32)

    def decode(self, sequences: tf.Tensor, start: tf.Tensor, end: tf.Tensor) -> tf.Tensor:
        """The text of `sequences[b, start[b]:end[b]]` for each row, as the Python tokenizer's `decode` gives it.

        Args:
            sequences: int32 (B, M).
            start: int32 (B,). First id of each row to decode.
            end: int32 (B,). One past the last id.

        Returns:
            string (B,), valid UTF-8.
        """
        ids = clamp(sequences, 0, self.vocabulary_size - 1)
        slots = tf.range(tf.shape(sequences)[1], dtype=tf.int32)
        inside = (slots[None, :] >= start[:, None]) & (slots[None, :] < end[:, None])  # (B, M)
        if self.tokenizer_type == "sentencepiece":
            return self._tokenizer.decode_tf(tf.ragged.boolean_mask(ids, inside))  # drops T5's sentinels
        table = tf.constant(self._pieces, tf.string)  # (V,)
        pieces = tf.where(inside, tf.gather(table, ids), "")
        text = tf.strings.reduce_join(pieces, axis=1)
        if self.tokenizer_type == "wordpiece":  # every word but the first follows a space
            text = tf.strings.regex_replace(text, "^ ", "")
        if self.tokenizer_type in ("byte", "bpe"):
            text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)
        return text
