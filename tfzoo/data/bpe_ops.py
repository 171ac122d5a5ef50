"""GPT-2's byte-level BPE as TensorFlow ops, for a SavedModel's text-in, text-out signature.

`BpeOps(tokenizer_json)` reads the `"bpe"` fields of `tokenizer.json` (see
`tfzoo/data/bpe_tokenizer.py`). Encoding runs keras-hub's graph tokenizer
(`keras_hub.tokenizers.BytePairTokenizer`: RE2 pre-tokenization, a lookup
table and an in-graph merge loop); decoding gathers each id's bytes and joins
them. The serving graph needs keras-hub's ops only (tensorflow-text), not tfzoo.

Exactness: ids equal `BpeTokenizer.encode`'s (and Hugging Face's) except where
keras-hub's RE2 pattern splits a run of two or more whitespace characters in
front of a word differently from GPT-2's look-ahead pattern (`"a  b"`,
`"    return"`): those prompts get another valid segmentation of the same
bytes. These ops are SavedModel-only (string ops are not TFLite builtins).
"""

from __future__ import annotations

import tensorflow as tf

from tfzoo.data.bpe_tokenizer import bytes_to_unicode


class BpeOps(tf.Module):
    """Encodes strings to ragged GPT-2 ids and lists each id's bytes, in the graph.

    A `tf.Module`: keep it as an attribute of the exported module, so that
    the SavedModel tracks the tokenizer's lookup tables.

    Args:
        tokenizer_json: dict. The content of a `"bpe"` `tokenizer.json`.

    Example:
    >>> from tfzoo.data.bpe_tokenizer import BpeTokenizer
    >>> symbols = [bytes_to_unicode()[b] for b in range(256)]
    >>> ops = BpeOps(BpeTokenizer(symbols + ["hi", "<|endoftext|>"], ["h i"]).to_json())
    >>> ops.ids(tf.constant(["hi!"])).to_list()
    [[256, 33]]
    >>> ops.pieces[256], ops.pieces[257]
    (b'hi', b'')
    """

    def __init__(self, tokenizer_json: dict):
        import keras_hub  # noqa: PLC0415 (only exports with a BPE tokenizer need it)

        super().__init__(name="bpe_ops")
        if tokenizer_json.get("type") != "bpe":
            raise ValueError(f"BpeOps needs a 'bpe' tokenizer.json, got type {tokenizer_json.get('type')!r}")
        vocabulary = list(tokenizer_json["vocabulary"])
        ((end_of_text, eos_id),) = tokenizer_json["special_tokens"].items()
        self.eos_id = self.pad_id = int(eos_id)
        self.vocabulary_size = len(vocabulary)
        self._tokenizer = keras_hub.tokenizers.BytePairTokenizer(
            vocabulary={token: i for i, token in enumerate(vocabulary)},
            merges=list(tokenizer_json["merges"]),
            unsplittable_tokens=[end_of_text],
            dtype="int32",
            _allow_python_workflow=False,  # the TF ops even when eager (the Python path would use `tokenizers`)
        )
        byte_decoder = {c: b for b, c in bytes_to_unicode().items()}
        self.pieces = [
            b"" if i == self.eos_id else bytes(byte_decoder[c] for c in token if c in byte_decoder)
            for i, token in enumerate(vocabulary)
        ]  # (V,) the bytes each id decodes to; end-of-text decodes to nothing

    def ids(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Ragged int32 (B, None) ids of a batch of strings (B,)."""
        return self._encode(tf.convert_to_tensor(texts, tf.string))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
    def _encode(self, texts):
        # Traced, so keras-hub returns tensors (eager calls hand back Python lists).
        return tf.cast(self._tokenizer.tokenize(texts), tf.int32)

    def decode(self, ids: tf.Tensor) -> tf.Tensor:
        """The text of each row of int32 ids (B, T), end-of-text dropped, invalid UTF-8 replaced by U+FFFD."""
        table = tf.constant(self.pieces, tf.string)  # (V,)
        ids = tf.clip_by_value(ids, 0, self.vocabulary_size - 1)
        text = tf.strings.reduce_join(tf.gather(table, ids), axis=-1)
        return tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)
