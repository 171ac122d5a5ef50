"""SentencePiece tokenizer: trained with the `sentencepiece` package, run by it or by tensorflow-text.

The model is trained on the lines of the training text with identity
normalization (no NFKC) and full character coverage; runs of spaces become one
space and leading/trailing spaces are dropped, so `decode(encode(text))` is
the text with its spaces normalized, whenever every character was seen in
training. Characters never seen (tabs and newlines included) encode to `<unk>`,
which decodes to U+FFFD.

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
            tokens above.

    Example:
    >>> tokenizer = SentencepieceTokenizer.from_text("low lower lowest\\n" * 20, vocabulary_size=30)
    >>> tokenizer.decode(tokenizer.encode("lowest low"))
    'lowest low'
    """

    type_name = "sentencepiece"
    special_tokens = SPECIAL_TOKENS
    unk_id = SPECIAL_TOKENS["<unk>"]

    def __init__(self, model_proto: bytes):
        import sentencepiece  # noqa: PLC0415 (only when a sentencepiece tokenizer is built)

        processor = sentencepiece.SentencePieceProcessor()
        try:
            processor.LoadFromSerializedProto(bytes(model_proto))
        except Exception:  # noqa: BLE001 (sentencepiece raises RuntimeError/OSError with C++ file names and line numbers)
            raise ValueError("not a valid sentencepiece model (the model proto does not parse)") from None
        pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
        specials = list(self.special_tokens)
        if pieces[: len(specials)] != specials:
            raise ValueError(f"sentencepiece model must start with {specials}, got {pieces[: len(specials)]}")
        self.model_proto = bytes(model_proto)
        self.vocabulary = pieces
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
        return np.asarray(self._processor.encode(text), dtype=np.int32)

    def decode(self, ids) -> str:
        return self._processor.decode(self._check_ids(ids).tolist())

    def encode_tf(self, texts):
        """Token ids of a string tensor (B,) as an int32 RaggedTensor (B, None), inside a graph."""
        return self._tf_sentencepiece().tokenize(texts)

    def decode_tf(self, ids):
        """Text (B,) of int ids (B, T), dense or ragged, inside a graph; like `decode`."""
        import tensorflow as tf  # noqa: PLC0415 (TensorFlow only for in-graph tokenization)

        ids = tf.clip_by_value(tf.cast(ids, tf.int32), 0, self.vocabulary_size - 1)
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

            self._tf_tokenizer = tensorflow_text.SentencepieceTokenizer(model=self.model_proto, out_type=tf.int32)
        return self._tf_tokenizer

    def save(self, directory: str) -> str:
        """Writes the model file, then `tokenizer.json`, each atomically; returns the JSON's path."""
        os.makedirs(directory, exist_ok=True)
        atomic_write_bytes(os.path.join(directory, MODEL_FILENAME), self.model_proto)
        return super().save(directory)

    def get_config(self) -> dict:
        return {"model_proto": self.model_proto}

    def _json_fields(self) -> dict:
        return {"model_file": MODEL_FILENAME, "model_type": self.model_type, "vocabulary": list(self.vocabulary)}

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
        try:
            tokenizer = cls(model_proto)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
        if data.get("vocabulary") is not None and data["vocabulary"] != tokenizer.vocabulary:
            raise ValueError(f"{source}: 'vocabulary' does not match the pieces of {path}")
        if data.get("model_type") is not None and data["model_type"] != tokenizer.model_type:
            raise ValueError(f"{source}: 'model_type' is {data['model_type']!r} but {path} is {tokenizer.model_type!r}")
        return tokenizer
