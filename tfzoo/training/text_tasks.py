"""The text-only task kinds: `lm` (GPT), `classification` (BERT) and `masked_lm` (BertMaskedLM).

See `tfzoo.training.tasks` for what each kind trains on and reports.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import tensorflow as tf
from absl import logging

from tfzoo.data import lm_pipeline
from tfzoo.data.classification_data import load_classification_data
from tfzoo.data.errors import DatasetError
from tfzoo.data.text_datasets import load_text_splits, load_tfds_classification
from tfzoo.data.tokenizers import build_tokenizer
from tfzoo.models.bert import mask_tokens
from tfzoo.training.sampling import sample_completions
from tfzoo.training.task import Task, build_task_tokenizer, load_task_data
from tfzoo.training.task_batches import EVAL_BATCH_SIZE, eval_batches, fixed_batches, pad_rows, step_indexed_batches
from tfzoo.training.validate import ConfigError

# The embedded `reviews` are generated (seconds) and immutable: generate them once a process.
_classification_task = functools.lru_cache(maxsize=4)(load_classification_data)


def _lines(text: str, limit: int) -> list[str]:
    """The non-empty lines of `text` (stripped), the first `limit` of them if `limit` > 0."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[:limit] if limit else lines


class LanguageModelTask(Task):
    """`lm`: a token stream cut into windows (`tfzoo.data.lm_pipeline`)."""

    kind = "lm"
    label_pad_id = -1  # Windows of running text hold no padding; a vocabulary's id 0 (GPT-2's "!") is a real token.

    def __init__(self, config):
        super().__init__(config)
        splits = load_text_splits(config.dataset, config.data_dir, config.max_examples)
        self.tokenizer = build_tokenizer(config.tokenizer, splits.train)
        self.train_tokens = self.tokenizer.encode(splits.train)
        self.val_tokens = self.tokenizer.encode(splits.validation)
        for tokens, split in ((self.train_tokens, "train"), (self.val_tokens, "validation")):
            needed = config.seq_len + 1
            if len(tokens) < needed:
                raise ConfigError(f"the {split} split has {len(tokens)} tokens, fewer than seq_len + 1 = {needed}")
        logging.info(
            "dataset %s: %d train / %d validation tokens, vocabulary %d",
            splits.name,
            len(self.train_tokens),
            len(self.val_tokens),
            self.tokenizer.vocabulary_size,
        )

    def train_dataset(self, start_step):
        c = self.config
        return lm_pipeline.lm_train_dataset(
            self.train_tokens, seq_len=c.seq_len, batch_size=c.batch_size, seed=c.seed, start_step=start_step
        )

    def eval_dataset(self):
        c = self.config
        return lm_pipeline.lm_eval_dataset(
            self.val_tokens, seq_len=c.seq_len, batch_size=c.batch_size, num_batches=c.eval_steps
        )

    def samples(self, model):
        return sample_completions(
            model, self.tokenizer, list(self.config.sample_prompts), self.config.sample_length, seed=self.config.seed
        )

    def summary(self):
        return {"unigram_entropy": lm_pipeline.unigram_entropy(self.val_tokens)}


class ClassificationTask(Task):
    """`classification`: labelled texts (`reviews` or `tfds:NAME[:FIELD]` with a `label` ClassLabel)."""

    kind = "classification"
    label_pad_id = -1  # Every label is a class: none is ignored.

    def __init__(self, config):
        super().__init__(config)
        task = load_task_data(config, load_tfds_classification, _classification_task)
        limit = config.get("train_examples", 0)
        if limit and limit < len(task.train_texts):  # the first N training examples; validation untouched
            task = dataclasses.replace(
                task, train_texts=task.train_texts[:limit], train_labels=task.train_labels[:limit]
            )
        self.label_names = task.label_names
        self.tokenizer = tokenizer = build_task_tokenizer(config, task.tokenizer_text())
        self.cls_id = tokenizer.special_tokens.get("<cls>", tokenizer.eos_id)
        self.train = self._encode(task.train_texts, task.train_labels)
        self.validation = self._encode(task.validation_texts, task.validation_labels)
        logging.info(
            "dataset %s: %d train / %d validation texts, %d classes, vocabulary %d",
            task.name,
            len(task.train_texts),
            len(task.validation_texts),
            len(task.label_names),
            tokenizer.vocabulary_size,
        )

    def _encode(self, texts, labels=None):
        """`<cls> text` ids, cut to `seq_len` (long texts keep their beginning), padded."""
        length = self.config.seq_len
        rows = [([self.cls_id] + list(self.tokenizer.encode(text)))[:length] for text in texts]
        token_ids = pad_rows(rows, length, self.tokenizer.pad_id)
        return token_ids, None if labels is None else np.asarray(labels, np.int32)

    def model_options(self):
        return {"num_classes": len(self.label_names)}

    def train_dataset(self, start_step):
        c = self.config
        return step_indexed_batches(self.train, c.batch_size, c.seed, start_step, lambda x, y: (x, y))

    def eval_dataset(self):
        c = self.config
        return eval_batches(self.validation, c.batch_size, c.eval_steps, lambda x, y: (x, y))

    def predict(self, model, token_ids: np.ndarray) -> np.ndarray:
        predictions = []
        for batch, real in fixed_batches(token_ids, EVAL_BATCH_SIZE):
            logits = model(tf.constant(batch), training=False)
            predictions.append(np.argmax(np.asarray(logits), axis=-1)[:real])
        return np.concatenate(predictions)

    def evaluate(self, model):
        token_ids, labels = self.validation
        return {"accuracy": float(np.mean(self.predict(model, token_ids) == labels))}

    def samples(self, model):
        prompts = list(self.config.sample_prompts)
        if not prompts:
            return []
        predictions = self.predict(model, self._encode(prompts)[0])
        return [f"{p} -> {self.label_names[k]}" for p, k in zip(prompts, predictions)]


class MaskedLMTask(Task):
    """`masked_lm` (BertMaskedLM): `<cls> text` rows of `reviews` or of the lines of a text spec, masked BERT's way.

    Each training batch is masked afresh by `mask_tokens` seeded with
    `(seed, step)` (15% of the real tokens, at most `max_predictions`); the
    held-out rows are masked once with a fixed seed. The reported loss is the
    cross-entropy at the masked positions; `evaluate` adds `masked_accuracy`
    (argmax equals the original token) over every held-out row.
    Optional config fields: `max_predictions` (predicted tokens per row,
    default 5), `mask_rate` (0.15).
    """

    kind = "masked_lm"

    def __init__(self, config):
        super().__init__(config)
        if config.dataset == "reviews":
            task = _classification_task(config.dataset, seed=config.seed)
            train_texts, validation_texts = task.train_texts, task.validation_texts
        else:  # a text spec: one example per non-empty line
            splits = load_text_splits(config.dataset, config.data_dir, config.max_examples)
            train_texts = _lines(splits.train, config.max_examples)
            validation_texts = _lines(splits.validation, config.max_examples)
        self.tokenizer = tokenizer = build_task_tokenizer(config, "\n".join(train_texts))
        if "<mask>" not in tokenizer.special_tokens:
            raise ConfigError(f"tokenizer {config.tokenizer!r} has no <mask> token; use wordpiece or sentencepiece")
        self.max_predictions = config.get("max_predictions", 5)
        self.mask_rate = config.get("mask_rate", 0.15)
        cls_id = tokenizer.special_tokens.get("<cls>", tokenizer.eos_id)
        self.mask_options = dict(
            vocabulary_size=tokenizer.vocabulary_size,
            mask_id=tokenizer.special_tokens["<mask>"],
            max_predictions=self.max_predictions,
            mask_rate=self.mask_rate,
            special_ids=sorted(tokenizer.special_tokens.values()),
        )
        rows = [([cls_id] + list(tokenizer.encode(text)))[: config.seq_len] for text in train_texts]
        self.train = pad_rows([r for r in rows if len(r) > 1], config.seq_len, tokenizer.pad_id)
        rows = [([cls_id] + list(tokenizer.encode(text)))[: config.seq_len] for text in validation_texts]
        held_out = pad_rows([r for r in rows if len(r) > 1], config.seq_len, tokenizer.pad_id)
        if not len(self.train) or not len(held_out):
            raise DatasetError(f"{config.dataset}: no text left to mask in the train or validation split")
        masked = mask_tokens(held_out, [config.seed, -1], **self.mask_options)
        self.validation = tuple(masked[k].numpy() for k in ("token_ids", "mask_positions", "mask_ids"))
        logging.info(
            "dataset %s: %d train / %d validation rows, vocabulary %d",
            config.dataset,
            len(self.train),
            len(held_out),
            tokenizer.vocabulary_size,
        )

    @staticmethod
    def _example(token_ids, mask_positions, mask_ids):
        return {"token_ids": token_ids, "mask_positions": mask_positions}, mask_ids

    def train_dataset(self, start_step):
        c, options = self.config, self.mask_options

        def to_example(token_ids, step):
            masked = mask_tokens(token_ids, tf.stack([tf.constant(c.seed, tf.int64), step]), **options)
            return self._example(masked["token_ids"], masked["mask_positions"], masked["mask_ids"])

        steps = tf.data.Dataset.counter(start=int(start_step), dtype=tf.int64)
        batches = step_indexed_batches((self.train,), c.batch_size, c.seed, start_step, lambda rows: rows)
        dataset = tf.data.Dataset.zip(batches, steps).map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.prefetch(tf.data.AUTOTUNE)

    def eval_dataset(self):
        c = self.config
        return eval_batches(self.validation, c.batch_size, c.eval_steps, self._example)

    def evaluate(self, model):
        """`masked_accuracy`: share of the held-out masked tokens the model restores (argmax)."""
        token_ids, positions, labels = self.validation
        count = self.config.eval_decode_examples or len(token_ids)
        correct = total = 0
        for start in range(0, count, EVAL_BATCH_SIZE):
            rows = slice(start, min(start + EVAL_BATCH_SIZE, count))
            logits = model({"token_ids": tf.constant(token_ids[rows]), "mask_positions": tf.constant(positions[rows])})
            used = labels[rows] != self.label_pad_id
            correct += int(np.sum((np.argmax(np.asarray(logits), axis=-1) == labels[rows]) & used))
            total += int(np.sum(used))
        return {"masked_accuracy": correct / max(total, 1), "masked_tokens": total}

    def samples(self, model):
        """The first held-out rows with their masked tokens filled in by the model: `[original→predicted]`."""
        token_ids, positions, labels = (a[:3] for a in self.validation)
        logits = np.asarray(model({"token_ids": tf.constant(token_ids), "mask_positions": tf.constant(positions)}))
        predicted = np.argmax(logits, axis=-1)
        t, texts = self.tokenizer, []
        for row, slots, originals, guesses in zip(token_ids, positions, labels, predicted):
            words = [t.decode([i]) if i != t.pad_id else "" for i in row]
            for slot, original, guess in zip(slots, originals, guesses):
                if original != self.label_pad_id:
                    words[slot] = f"[{t.decode([original])}→{t.decode([guess])}]"
            texts.append(" ".join(w for w in words if w))
        return texts
