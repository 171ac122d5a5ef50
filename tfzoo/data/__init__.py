"""Data: tokenizers (char, byte; JSON on disk), text datasets, LM input pipelines.

The tokenizers and text datasets need only numpy; the tf.data pipelines
(`lm_train_dataset`, `lm_eval_dataset`, ...) import TensorFlow on first use.
"""

from tfzoo.data.byte_tokenizer import ByteTokenizer
from tfzoo.data.char_tokenizer import CharTokenizer
from tfzoo.data.errors import DatasetError
from tfzoo.data.text_datasets import TextSplits, load_text_splits
from tfzoo.data.tokenizer import Tokenizer
from tfzoo.data.tokenizers import build_tokenizer, load_tokenizer

_LM_PIPELINE_NAMES = ("lm_train_dataset", "lm_eval_dataset", "lm_eval_windows", "unigram_entropy")


def __getattr__(name):
    if name in _LM_PIPELINE_NAMES:
        from tfzoo.data import lm_pipeline  # noqa: PLC0415 (lazy: the package imports without TensorFlow)

        return getattr(lm_pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ByteTokenizer",
    "CharTokenizer",
    "DatasetError",
    "TextSplits",
    "Tokenizer",
    "build_tokenizer",
    "load_text_splits",
    "load_tokenizer",
    *_LM_PIPELINE_NAMES,
]
