"""`Task`: the base class of the task kinds of `train_and_evaluate` (see `tfzoo.training.tasks`)."""

from __future__ import annotations

import tensorflow as tf

from tfzoo.data.tokenizers import build_tokenizer
from tfzoo.training.losses import MaskedSparseCrossEntropy, MaskedTokenCrossEntropy

SUBWORD_TOKENIZERS = ("wordpiece", "sentencepiece")


def build_task_tokenizer(config, text: str):
    """The `config.tokenizer` built on `text`, `config.vocabulary_size` large if it is a subword tokenizer."""
    options = {"vocabulary_size": config.vocabulary_size} if config.tokenizer in SUBWORD_TOKENIZERS else {}
    return build_tokenizer(config.tokenizer, text, **options)


def load_task_data(config, tfds_loader, embedded_loader):
    """`tfds_loader(dataset, data_dir, max_examples)` for a `tfds:` dataset, else `embedded_loader(dataset, seed=)`."""
    if config.dataset.startswith("tfds:"):
        return tfds_loader(config.dataset, config.data_dir, config.max_examples)
    return embedded_loader(config.dataset, seed=config.seed)


class Task:
    """Base class: the data, tokenizer and per-kind logic of one run (see `tfzoo.training.tasks`)."""

    kind = ""
    label_pad_id = 0  # Labels with this id are left out of the loss and the reported cross-entropy.

    def __init__(self, config):
        self.config = config
        self.tokenizer = None

    def loss(self):
        """The loss the model is compiled with: token cross-entropy without `label_pad_id` labels."""
        return MaskedSparseCrossEntropy(pad_id=self.label_pad_id, label_smoothing=self.config.label_smoothing)

    def metrics(self) -> list:
        """The compiled metrics; the first is named `cross_entropy` (`train_loss`/`val_loss` in metrics.jsonl)."""
        return [MaskedTokenCrossEntropy(pad_id=self.label_pad_id)]

    def model_options(self) -> dict:
        """Extra keyword arguments of the registry's model builder (e.g. `num_classes`)."""
        return {}

    def train_dataset(self, start_step: int) -> tf.data.Dataset:
        raise NotImplementedError

    def eval_dataset(self) -> tf.data.Dataset:
        raise NotImplementedError

    def evaluate(self, model) -> dict:
        """Metrics of the model's own predictions on the held-out split (added to each record)."""
        return {}

    def samples(self, model) -> list[str]:
        return []

    def summary(self) -> dict:
        return {}
