"""Task kinds of `train_and_evaluate`: what data a model trains on, how it is batched and judged.

A `Task` holds the loaded data and tokenizer of one run and knows its
pipelines (`train_dataset`, `eval_dataset`), the label id its loss and
cross-entropy metric ignore (`label_pad_id`), the decoded metrics of an
evaluation (`evaluate`) and the samples printed at the end (`samples`):

- `lm` (GPT): windows of one token stream; no decoded metrics; greedy completions.
- `seq2seq` (Transformer): sentence pairs padded to `seq_len`, target
  `<bos> y` in, `y <eos>` out, pad labels ignored; `exact_match` and `bleu`
  (sacrebleu) of greedy translations of the held-out sources.
- `classification` (BERT): `<cls> text` padded to `seq_len`, one label per
  example (no label is ignored); `accuracy` of the argmax on the held-out split.

Training batches are step indexed everywhere: batch `i` depends only on
`(seed, i)`, so a resumed run sees the batches an uninterrupted one would.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf
from absl import logging

from tfzoo.data import lm_pipeline
from tfzoo.data.classification_task import load_classification_task
from tfzoo.data.text_datasets import (
    DatasetError,
    load_text_splits,
    load_tfds_classification,
    load_tfds_translation,
)
from tfzoo.data.tokenizer import build_tokenizer
from tfzoo.data.translation_task import load_translation_task
from tfzoo.training.sampling import sample_completions
from tfzoo.training.validate import ConfigError

SUBWORD_TOKENIZERS = ("wordpiece", "sentencepiece")

# The embedded tasks are generated (seconds for 10000 numbers) and immutable: generate each once a process.
_translation_task = functools.lru_cache(maxsize=4)(load_translation_task)
_classification_task = functools.lru_cache(maxsize=4)(load_classification_task)
EVAL_BATCH_SIZE = 128  # Examples per batch when decoding / classifying the held-out split.


def _build_tokenizer(config, text: str):
    options = {"vocabulary_size": config.vocabulary_size} if config.tokenizer in SUBWORD_TOKENIZERS else {}
    return build_tokenizer(config.tokenizer, text, **options)


def _step_indexed_batches(arrays: tuple, batch_size: int, seed: int, start_step: int, to_example) -> tf.data.Dataset:
    """Infinite batches of rows drawn by `stateless_uniform(seed=[seed, step])` from the same-length `arrays`."""
    tensors = tuple(tf.constant(a) for a in arrays)
    count = len(arrays[0])
    seed = tf.constant(seed, tf.int64)

    def make_batch(step):
        rows = tf.random.stateless_uniform([batch_size], seed=tf.stack([seed, step]), maxval=count, dtype=tf.int64)
        return to_example(*(tf.gather(t, rows) for t in tensors))

    dataset = tf.data.Dataset.counter(start=int(start_step), dtype=tf.int64)
    dataset = dataset.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _eval_batches(arrays: tuple, batch_size: int, num_batches: int, to_example) -> tf.data.Dataset:
    """The first `num_batches` full batches of the held-out rows, in order (wrapping around)."""
    dataset = tf.data.Dataset.from_tensor_slices(tuple(tf.constant(a) for a in arrays)).repeat()
    dataset = dataset.batch(batch_size, drop_remainder=True).take(num_batches)
    return dataset.map(to_example).cache()


def _pad(rows: list, length: int, pad_id: int) -> np.ndarray:
    out = np.full((len(rows), length), pad_id, np.int32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def _fixed_batches(array: np.ndarray, batch_size: int):
    """Yields `(batch, real_rows)`: every batch has `batch_size` rows (the last is filled with row 0)."""
    for start in range(0, len(array), batch_size):
        batch = array[start : start + batch_size]
        real = len(batch)
        if real < batch_size:
            batch = np.concatenate([batch, np.repeat(array[:1], batch_size - real, axis=0)])
        yield batch, real


class Task:
    """Base class: the data, tokenizer and per-kind logic of one run (see the module docstring)."""

    kind = ""
    label_pad_id = 0  # Labels with this id are left out of the loss and the reported cross-entropy.

    def __init__(self, config):
        self.config = config
        self.tokenizer = None

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


class LanguageModelTask(Task):
    """`lm`: a token stream cut into windows (`tfzoo.data.lm_pipeline`)."""

    kind = "lm"

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
            splits.name, len(self.train_tokens), len(self.val_tokens), self.tokenizer.vocabulary_size,
        )  # fmt: skip

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


class Seq2SeqTask(Task):
    """`seq2seq`: translation pairs (`numbers:SRC-TGT` or `tfds:NAME/SRC-TGT`), one shared tokenizer."""

    kind = "seq2seq"

    def __init__(self, config):
        super().__init__(config)
        if config.dataset.startswith("tfds:"):
            task = load_tfds_translation(config.dataset, config.data_dir, config.max_examples)
        else:
            task = _translation_task(config.dataset, seed=config.seed)
        self.tokenizer = tokenizer = _build_tokenizer(config, task.tokenizer_text())
        self.start_id = tokenizer.special_tokens.get("<bos>", tokenizer.eos_id)
        self.train = self._encode(task.train_sources, task.train_targets, "train")
        self.validation = self._encode(task.validation_sources, task.validation_targets, "validation")
        self.validation_references = [task.validation_targets[i] for i in self.validation["index"]]
        self.sample_sources = self._sample_sources()
        logging.info(
            "dataset %s: %d train / %d validation pairs, vocabulary %d",
            task.name, len(self.train["index"]), len(self.validation["index"]), tokenizer.vocabulary_size,
        )  # fmt: skip

    def _encode(self, sources, targets, split: str) -> dict:
        """Padded `source_ids`, `target_ids` (`<bos> y`), `labels` (`y <eos>`) of the pairs that fit `seq_len`."""
        t, length = self.tokenizer, self.config.seq_len
        kept, source_rows, target_rows = [], [], []
        for index, (source, target) in enumerate(zip(sources, targets)):
            source_ids, target_ids = list(t.encode(source)), list(t.encode(target))
            if 0 < len(source_ids) <= length and len(target_ids) + 1 <= length:
                kept.append(index)
                source_rows.append(source_ids)
                target_rows.append(target_ids)
        dropped = len(sources) - len(kept)
        if dropped:
            logging.warning("%s: %d of %d pairs are longer than seq_len %d and left out", split, dropped,
                            len(sources), length)  # fmt: skip
        if not kept:
            raise DatasetError(f"no {split} pair fits seq_len {length}; raise seq_len")
        return {
            "index": kept,
            "source_ids": _pad(source_rows, length, t.pad_id),
            "target_ids": _pad([[self.start_id] + r for r in target_rows], length, t.pad_id),
            "labels": _pad([r + [t.eos_id] for r in target_rows], length, t.pad_id),
        }

    @staticmethod
    def _example(source_ids, target_ids, labels):
        return {"source_ids": source_ids, "target_ids": target_ids}, labels

    def _arrays(self, split):
        return tuple(split[k] for k in ("source_ids", "target_ids", "labels"))

    def train_dataset(self, start_step):
        c = self.config
        return _step_indexed_batches(self._arrays(self.train), c.batch_size, c.seed, start_step, self._example)

    def eval_dataset(self):
        c = self.config
        return _eval_batches(self._arrays(self.validation), c.batch_size, c.eval_steps, self._example)

    def translate(self, model, source_ids: np.ndarray) -> list[str]:
        """Greedy translations of padded `source_ids` (N, S) with the model's cached decoder."""
        from tfzoo.decoding import generate  # noqa: PLC0415

        t, max_length = self.tokenizer, self.config.seq_len
        if getattr(self, "_translate_fn", None) is None or self._translate_model is not model:

            @tf.function
            def translate_fn(batch):
                cache = model.init_decoding_cache(batch, None, max_length)
                prompt = tf.fill([tf.shape(batch)[0], 1], self.start_id)
                outputs = generate(
                    model.decoding_step, cache, prompt, tf.ones([tf.shape(batch)[0]], tf.int32),
                    max_length=max_length, eos_ids=(t.eos_id,), pad_id=t.pad_id, max_new_tokens=max_length - 1,
                )  # fmt: skip
                return outputs["sequences"]

            self._translate_fn, self._translate_model = translate_fn, model
        texts = []
        for batch, real in _fixed_batches(source_ids, EVAL_BATCH_SIZE):
            sequences = self._translate_fn(tf.constant(batch)).numpy()[:real, 1:]  # drop the start token
            texts.extend(t.decode(row) for row in sequences)
        return texts

    def evaluate(self, model):
        import sacrebleu  # noqa: PLC0415

        count = self.config.eval_decode_examples or len(self.validation_references)
        references = self.validation_references[:count]
        hypotheses = self.translate(model, self.validation["source_ids"][:count])
        # Exact match compares what the tokenizer can express (its decode of the reference's ids).
        expressible = [self.tokenizer.decode(self.tokenizer.encode(r)) for r in references]
        exact = np.mean([h == r for h, r in zip(hypotheses, expressible)])
        bleu = sacrebleu.corpus_bleu(hypotheses, [references]).score
        return {"exact_match": float(exact), "bleu": float(bleu), "decoded_examples": len(references)}

    def _sample_sources(self) -> np.ndarray:
        """The sample prompts as padded sources; checked when the task loads, before anything is written."""
        rows = []
        for prompt in self.config.sample_prompts:
            ids = list(self.tokenizer.encode(prompt))
            if not 0 < len(ids) <= self.config.seq_len:
                raise ConfigError(
                    f"sample prompt {prompt!r} has {len(ids)} tokens; the model takes 1 to seq_len "
                    f"({self.config.seq_len})"
                )
            rows.append(ids)
        return _pad(rows, self.config.seq_len, self.tokenizer.pad_id)

    def samples(self, model):
        if not len(self.sample_sources):
            return []
        translations = self.translate(model, self.sample_sources)
        return [f"{p} -> {h}" for p, h in zip(self.config.sample_prompts, translations)]


class ClassificationTask(Task):
    """`classification`: labelled texts (`reviews` or `tfds:NAME[:FIELD]` with a `label` ClassLabel)."""

    kind = "classification"
    label_pad_id = -1  # Every label is a class: none is ignored.

    def __init__(self, config):
        super().__init__(config)
        if config.dataset.startswith("tfds:"):
            task = load_tfds_classification(config.dataset, config.data_dir, config.max_examples)
        else:
            task = _classification_task(config.dataset, seed=config.seed)
        self.label_names = task.label_names
        self.tokenizer = tokenizer = _build_tokenizer(config, task.tokenizer_text())
        self.cls_id = tokenizer.special_tokens.get("<cls>", tokenizer.eos_id)
        self.train = self._encode(task.train_texts, task.train_labels)
        self.validation = self._encode(task.validation_texts, task.validation_labels)
        logging.info(
            "dataset %s: %d train / %d validation texts, %d classes, vocabulary %d",
            task.name, len(task.train_texts), len(task.validation_texts), len(task.label_names),
            tokenizer.vocabulary_size,
        )  # fmt: skip

    def _encode(self, texts, labels=None):
        """`<cls> text` ids, cut to `seq_len` (long texts keep their beginning), padded."""
        length = self.config.seq_len
        rows = [([self.cls_id] + list(self.tokenizer.encode(text)))[:length] for text in texts]
        token_ids = _pad(rows, length, self.tokenizer.pad_id)
        return token_ids, None if labels is None else np.asarray(labels, np.int32)

    def model_options(self):
        return {"num_classes": len(self.label_names)}

    def train_dataset(self, start_step):
        c = self.config
        return _step_indexed_batches(self.train, c.batch_size, c.seed, start_step, lambda x, y: (x, y))

    def eval_dataset(self):
        c = self.config
        return _eval_batches(self.validation, c.batch_size, c.eval_steps, lambda x, y: (x, y))

    def predict(self, model, token_ids: np.ndarray) -> np.ndarray:
        predictions = []
        for batch, real in _fixed_batches(token_ids, EVAL_BATCH_SIZE):
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


TASKS = {task.kind: task for task in (LanguageModelTask, Seq2SeqTask, ClassificationTask)}


def make_task(kind: str, config) -> Task:
    """Loads the data and builds the tokenizer of a task of `kind` ("lm", "seq2seq", "classification")."""
    if kind not in TASKS:
        raise ConfigError(f"unknown task kind {kind!r}; valid: {', '.join(TASKS)}")
    return TASKS[kind](config)
