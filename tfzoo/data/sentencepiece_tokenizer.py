"""SentencePiece tokenizer: trained with the `sentencepiece` package, run by it or by tensorflow-text.

The model is trained on the lines of the training text with identity
normalization (no NFKC) and full character coverage; runs of spaces become one
space and leading/trailing spaces are dropped, so `decode(encode(text))` is
the text with its spaces normalized, whenever every character was seen in
training. Characters never seen (tabs and newlines included) encode to `<unk>`,
which decodes to U+FFFD.

A model from elsewhere may instead start with T5's `<pad>`, `</s>`, `<unk>`
(a Hugging Face T5 folder's `spiece.model`, converted by `python -m
tfzoo.convert t5`); then `extra_ids` sentinels (`<extra_id_0>` is the last id,
as T5Tokenizer numbers them) follow the pieces and `append_eos` ends each
encoded text with `</s>`, as `T5Tokenizer` does. Sentinels written in the text
are not parsed (they encode as ordinary pieces) and decode to nothing, as do
the unused ids of a `padded_size` (an embedding larger than the vocabulary).

`encode`/`decode` use the `sentencepiece` package (no TensorFlow);
`encode_tf`/`decode_tf` run the same model proto inside a TensorFlow graph
(`tensorflow_text.SentencepieceTokenizer`), for tf.data pipelines and the
SavedModel's text-in, text-out signature.
"""

from __future__ import annotations

import io
import os

import numpy as np

from tfzoo.data.tokenizer import Tokenizer
from tfzoo.files import atomic_write_bytes

MODEL_FILENAME = "sentencepiece.model"
MODEL_TYPES = ("unigram", "bpe")
UNK_TEXT = "\ufffd"
SPECIAL_TOKENS = {"<pad>": 0, "<eos>": 1, "<unk>": 2, "<bos>": 3, "<cls>": 4, "<mask>": 5}
T5_PIECES = ("<pad>", "</s>", "<unk>")  # the first pieces of a T5 `spiece.model`
T5_SPECIAL_TOKENS = {"<pad>": 0, "<eos>": 1, "<unk>": 2}
MAX_EXTRA_IDS = 10_000  # most sentinels (T5: 100): a bad file cannot ask for 10**40
MAX_IDS = 1 << 21  # most ids with the unused ones (T5: 32128; mT5: 250112)
# Training text lines longer than this are cut by sentencepiece; split the text into lines first.
MAX_SENTENCE_LENGTH = 4192


class SentencepieceTokenizer(Tokenizer):
    """SentencePiece (unigram or BPE) subword tokenizer with the zoo's special tokens first.

    Ids: `<pad>`=0, `<eos>`=1, `<unk>`=2, `<bos>`=3, `<cls>`=4, `<mask>`=5
    (control symbols: never produced by `encode`, dropped by `decode`), then
    the learned pieces. On disk: `tokenizer.json` (`"model_file":
    "sentencepiece.model"`, `"model_type"`, `"vocabulary"`: every piece in id
    order, for apps without sentencepiece) beside the serialized model proto.

    Args:
        model_proto: bytes. A serialized SentencePiece model with the special
            tokens above (or T5's `<pad>`, `</s>`, `<unk>`).
        extra_ids: int. Sentinel ids after the pieces (T5's 100 `<extra_id_N>`).
            Defaults to 0.
        append_eos: bool. `encode` ends every text with the end-of-text id
            (T5Tokenizer's `add_special_tokens`). Defaults to False.
        padded_size: int, optional. The number of ids when the model's embedding has
            unused rows after the sentinels (`<unused_N>`, never produced; T5 has 32128
            rows for 32100 tokens). None: the pieces and sentinels.

    Example:
    >>> tokenizer = SentencepieceTokenizer.from_text("low lower lowest\\n" * 20, vocabulary_size=30)
    >>> tokenizer.decode(tokenizer.encode("lowest low"))
    'lowest low'
    """

    type_name = "sentencepiece"
    special_tokens = None  # per file: SPECIAL_TOKENS, or T5's (checked by `_from_json`)

    def __init__(
        self, model_proto: bytes, extra_ids: int = 0, append_eos: bool = False, padded_size: int | None = None
    ):
        import sentencepiece  # noqa: PLC0415 (only when a sentencepiece tokenizer is built)

        processor = sentencepiece.SentencePieceProcessor()
        try:
            processor.LoadFromSerializedProto(bytes(model_proto))
        except Exception:  # noqa: BLE001 (sentencepiece raises RuntimeError/OSError with C++ file names and line numbers)
            raise ValueError("not a valid sentencepiece model (the model proto does not parse)") from None
        pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
        specials = list(SPECIAL_TOKENS)
        if tuple(pieces[: len(T5_PIECES)]) == T5_PIECES and pieces[: len(specials)] != specials:
            self.special_tokens = dict(T5_SPECIAL_TOKENS)
        elif pieces[: len(specials)] == specials:
            self.special_tokens = dict(SPECIAL_TOKENS)
        else:
            raise ValueError(
                f"sentencepiece model must start with {specials} (or T5's {list(T5_PIECES)}), "
                f"got {pieces[: len(specials)]}"
            )
        if isinstance(extra_ids, bool) or not isinstance(extra_ids, int) or not 0 <= extra_ids <= MAX_EXTRA_IDS:
            raise ValueError(f"extra_ids must be an integer in [0, {MAX_EXTRA_IDS}], got {extra_ids!r}")
        self.unk_id = self.special_tokens["<unk>"]
        self.model_proto = bytes(model_proto)
        self.extra_ids = extra_ids
        self.append_eos = bool(append_eos)
        self.num_pieces = len(pieces)
        self.vocabulary = pieces + [f"<extra_id_{i}>" for i in reversed(range(extra_ids))]
        if padded_size is not None:
            least, most = len(self.vocabulary), max(len(self.vocabulary), MAX_IDS)
            if isinstance(padded_size, bool) or not isinstance(padded_size, int) or not least <= padded_size <= most:
                raise ValueError(
                    f"padded_size must be an integer in [{least}, {most}] (at least the tokens), got {padded_size!r}"
                )
            self.vocabulary += [f"<unused_{i}>" for i in range(padded_size - len(self.vocabulary))]
        self.padded_size = padded_size
        self._processor = processor
        self._tf_tokenizer = None

    @classmethod
    def from_text(cls, text: str, vocabulary_size: int = 1000, model_type: str = "unigram") -> SentencepieceTokenizer:
        """Trains a model of at most `vocabulary_size` pieces on the lines of `text`.

        Raises:
            ValueError: empty text, unknown `model_type`, or a `vocabulary_size`
                the text cannot support (too small for its characters).
        """
        import sentencepiece  # noqa: PLC0415 (only when a sentencepiece tokenizer is built)

        if model_type not in MODEL_TYPES:
            raise ValueError(f"unknown sentencepiece model_type {model_type!r}; choose one of {', '.join(MODEL_TYPES)}")
        if isinstance(vocabulary_size, bool) or not isinstance(vocabulary_size, int) or vocabulary_size < 1:
            raise ValueError(f"vocabulary_size must be a positive integer, got {vocabulary_size!r}")
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            raise ValueError("cannot build a sentencepiece vocabulary from empty (or whitespace-only) text")
        model = io.BytesIO()
        try:
            sentencepiece.SentencePieceTrainer.train(
                sentence_iterator=iter(lines),
                model_writer=model,
                vocab_size=vocabulary_size,
                model_type=model_type,
                pad_id=SPECIAL_TOKENS["<pad>"],
                eos_id=SPECIAL_TOKENS["<eos>"],
                unk_id=SPECIAL_TOKENS["<unk>"],
                bos_id=SPECIAL_TOKENS["<bos>"],
                pad_piece="<pad>",
                eos_piece="<eos>",
                unk_piece="<unk>",
                bos_piece="<bos>",
                control_symbols=["<cls>", "<mask>"],
                unk_surface=UNK_TEXT,
                character_coverage=1.0,
                normalization_rule_name="identity",
                hard_vocab_limit=False,  # `vocabulary_size` is an upper bound, as for WordPiece
                max_sentence_length=MAX_SENTENCE_LENGTH,
                num_threads=1,  # deterministic
                minloglevel=2,
            )
        except RuntimeError as error:
            reason = str(error).split("] ")[-1].strip()
            raise ValueError(
                f"cannot build a sentencepiece vocabulary of {vocabulary_size} pieces from this text: {reason}"
            ) from None
        return cls(model.getvalue())

    @property
    def vocabulary_size(self) -> int:
        return len(self.vocabulary)

    @property
    def model_type(self) -> str:
        from sentencepiece import sentencepiece_model_pb2  # noqa: PLC0415 (only when a sentencepiece tokenizer is built)

        proto = sentencepiece_model_pb2.ModelProto()
        proto.ParseFromString(self.model_proto)
        return sentencepiece_model_pb2.TrainerSpec.ModelType.Name(proto.trainer_spec.model_type).lower()

    def encode(self, text: str) -> np.ndarray:
        ids = self._processor.encode(text)
        if self.append_eos:
            ids.append(self.eos_id)
        return np.asarray(ids, dtype=np.int32)

    def decode(self, ids) -> str:
        ids = self._check_ids(ids)
        return self._processor.decode(ids[ids < self.num_pieces].tolist())  # sentinels decode to nothing

    def encode_tf(self, texts):
        """Token ids of a string tensor (B,) as an int32 RaggedTensor (B, None), inside a graph."""
        return self._tf_sentencepiece().tokenize(texts)

    def decode_tf(self, ids):
        """Text (B,) of int ids (B, T), dense or ragged, inside a graph; like `decode`."""
        import tensorflow as tf  # noqa: PLC0415 (TensorFlow only for in-graph tokenization)

        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(tf.convert_to_tensor(ids))
        ids = tf.cast(ids, tf.int32)
        ids = tf.ragged.boolean_mask(ids, (ids >= 0) & (ids < self.num_pieces))  # sentinels decode to nothing
        return self._tf_sentencepiece().detokenize(ids)

    @property
    def tf_tokenizer(self):
        """The tensorflow-text tokenizer (a `tf.Module`) behind `encode_tf`.

        Attach it to the `tf.Module` you save (`module.tokenizer = tokenizer.tf_tokenizer`)
        so the SavedModel tracks its model.
        """
        return self._tf_sentencepiece()

    def _tf_sentencepiece(self):
        if self._tf_tokenizer is None:
            import tensorflow as tf  # noqa: PLC0415 (TensorFlow only for in-graph tokenization)
            import tensorflow_text  # noqa: PLC0415 (registers the tensorflow-text ops; only for in-graph tokenization)

            self._tf_tokenizer = tensorflow_text.SentencepieceTokenizer(
                model=self.model_proto, out_type=tf.int32, add_eos=self.append_eos
            )
        return self._tf_tokenizer

    def save(self, directory: str) -> str:
        """Writes the model file, then `tokenizer.json`, each atomically; returns the JSON's path."""
        os.makedirs(directory, exist_ok=True)
        atomic_write_bytes(os.path.join(directory, MODEL_FILENAME), self.model_proto)
        return super().save(directory)

    @property
    def eos_id(self) -> int:
        return self.special_tokens["<eos>"]

    @property
    def pad_id(self) -> int:
        return self.special_tokens["<pad>"]

    def get_config(self) -> dict:
        return {
            "model_proto": self.model_proto,
            "extra_ids": self.extra_ids,
            "append_eos": self.append_eos,
            "padded_size": self.padded_size,
        }

    def _json_fields(self) -> dict:
        fields = {"model_file": MODEL_FILENAME, "model_type": self.model_type, "vocabulary": list(self.vocabulary)}
        if self.extra_ids or self.append_eos or self.padded_size is not None:  # T5's; not the zoo's own
            fields.update(extra_ids=self.extra_ids, append_eos=self.append_eos, padded_size=self.padded_size)
        return fields

    @classmethod
    def _from_json(cls, data: dict, source: str) -> SentencepieceTokenizer:
        name = data.get("model_file")
        plain = isinstance(name, str) and name not in ("", ".", "..") and "\0" not in name  # open() rejects NUL
        if not plain or os.path.basename(name) != name:
            raise ValueError(f"{source}: 'model_file' must be a file name beside the JSON, got {name!r}")
        path = os.path.join(os.path.dirname(source), name)
        try:
            with open(path, "rb") as file:
                model_proto = file.read()
        except FileNotFoundError:
            raise ValueError(f"{source}: sentencepiece model file {path} not found") from None
        except OSError as error:
            raise ValueError(f"{source}: cannot read sentencepiece model file {path} ({error})") from None
        extra_ids, append_eos = data.get("extra_ids", 0), data.get("append_eos", False)
        if not isinstance(append_eos, bool):
            raise ValueError(f"{source}: 'append_eos' must be true or false, got {append_eos!r}")
        try:
            tokenizer = cls(model_proto, extra_ids, append_eos, data.get("padded_size"))
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
        if data["special_tokens"] != tokenizer.special_tokens:
            raise ValueError(
                f"{source}: special_tokens must be {tokenizer.special_tokens}, got {data['special_tokens']!r}"
            )
        if data.get("vocabulary") is not None and data["vocabulary"] != tokenizer.vocabulary:
            raise ValueError(f"{source}: 'vocabulary' does not match the pieces of {path}")
        if data.get("model_type") is not None and data["model_type"] != tokenizer.model_type:
            raise ValueError(f"{source}: 'model_type' is {data['model_type']!r} but {path} is {tokenizer.model_type!r}")
        return tokenizer
