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
- `masked_lm` (BertMaskedLM): `<cls> text` rows masked BERT's way (80/10/10),
  labels the original ids at the masked positions; `masked_accuracy` on the
  held-out rows (masked once, with a fixed seed).
- `caption` (Captioner): `shapes` images, target `<bos> caption` in,
  `caption <eos>` out; `exact_match` and `bleu` of greedy captions of the
  held-out images.

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
from tfzoo.data.shapes_task import load_shapes_task
from tfzoo.data.text_datasets import (
    DatasetError,
    load_text_splits,
    load_tfds_classification,
    load_tfds_translation,
)
from tfzoo.data.tokenizer import build_tokenizer
from tfzoo.models.bert import mask_tokens
from tfzoo.data.translation_task import load_translation_task
from tfzoo.training.sampling import sample_completions
from tfzoo.training.validate import ConfigError

SUBWORD_TOKENIZERS = ("wordpiece", "sentencepiece")

# The embedded tasks are generated (seconds for 10000 numbers) and immutable: generate each once a process.
_translation_task = functools.lru_cache(maxsize=4)(load_translation_task)
_classification_task = functools.lru_cache(maxsize=4)(load_classification_task)
_shapes_task = functools.lru_cache(maxsize=2)(load_shapes_task)
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


def _lines(text: str, limit: int) -> list[str]:
    """The non-empty lines of `text` (stripped), the first `limit` of them if `limit` > 0."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[:limit] if limit else lines


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


def _greedy_decoder(model, init_cache, start_id: int, tokenizer, max_length: int):
    """A `tf.function` batch (N, ...) -> greedy sequences (N, max_length) from `init_cache(batch, max_length)`."""
    from tfzoo.decoding import generate  # noqa: PLC0415

    @tf.function(autograph=False)  # plain graph code: no Python control flow on tensors
    def decode(batch):
        count = tf.shape(batch)[0]
        outputs = generate(
            model.decoding_step, init_cache(batch, max_length), tf.fill([count, 1], start_id),
            tf.ones([count], tf.int32), max_length=max_length, eos_ids=(tokenizer.eos_id,),
            pad_id=tokenizer.pad_id, max_new_tokens=max_length - 1,
        )  # fmt: skip
        return outputs["sequences"]

    return decode


def _seq2seq_cache(model, source_ids, max_length):
    return model.init_decoding_cache(source_ids, None, max_length)


def _decode_all(decode, inputs: np.ndarray, tokenizer) -> list[str]:
    """The texts `decode` writes for every row of `inputs`, in fixed-size batches (one trace)."""
    texts = []
    for batch, real in _fixed_batches(inputs, EVAL_BATCH_SIZE):
        sequences = decode(tf.constant(batch)).numpy()[:real, 1:]  # drop the start token
        texts.extend(tokenizer.decode(row) for row in sequences)
    return texts


def _text_metrics(tokenizer, hypotheses: list[str], references: list[str]) -> dict:
    """`exact_match` (against what the tokenizer can express: its decode of the reference's ids) and `bleu`."""
    import sacrebleu  # noqa: PLC0415

    expressible = [tokenizer.decode(tokenizer.encode(r)) for r in references]
    exact = np.mean([h == r for h, r in zip(hypotheses, expressible)])
    bleu = sacrebleu.corpus_bleu(hypotheses, [references]).score
    return {"exact_match": float(exact), "bleu": float(bleu), "decoded_examples": len(references)}


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
        if getattr(self, "_decoder", None) is None or self._decoder[0] is not model:
            init = functools.partial(_seq2seq_cache, model)
            self._decoder = model, _greedy_decoder(model, init, self.start_id, self.tokenizer, self.config.seq_len)
        return _decode_all(self._decoder[1], source_ids, self.tokenizer)

    def evaluate(self, model):
        count = self.config.eval_decode_examples or len(self.validation_references)
        references = self.validation_references[:count]
        hypotheses = self.translate(model, self.validation["source_ids"][:count])
        return _text_metrics(self.tokenizer, hypotheses, references)

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


class CaptionTask(Task):
    """`caption` (Captioner): the embedded `shapes[:SIZE]` images with their captions, one shared tokenizer.

    Optional config fields: `num_train` (20000) and `num_validation` (1000)
    images. Targets are `<bos> caption`, labels `caption <eos>`, both padded
    to `seq_len`; `evaluate` reports `exact_match` and `bleu` of the model's
    greedy captions of the held-out images.
    """

    kind = "caption"

    def __init__(self, config):
        super().__init__(config)
        sizes = {key: config.get(key, default) for key, default in (("num_train", 20000), ("num_validation", 1000))}
        task = _shapes_task(config.dataset, seed=config.seed, **sizes)
        self.image_size = task.image_size
        self.tokenizer = tokenizer = _build_tokenizer(config, task.tokenizer_text())
        self.start_id = tokenizer.special_tokens.get("<bos>", tokenizer.eos_id)
        self.train = (task.train_images, *self._encode(task.train_captions, "train"))
        self.validation = (task.validation_images, *self._encode(task.validation_captions, "validation"))
        self.validation_captions = task.validation_captions
        logging.info(
            "dataset %s: %d train / %d validation images of %dx%d, vocabulary %d",
            task.name, len(task.train_images), len(task.validation_images), task.image_size, task.image_size,
            tokenizer.vocabulary_size,
        )  # fmt: skip

    def _encode(self, captions, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Padded `target_ids` (`<bos> caption`) and `labels` (`caption <eos>`); every caption must fit."""
        t, length = self.tokenizer, self.config.seq_len
        rows = [list(t.encode(caption)) for caption in captions]
        longest = max(len(row) for row in rows) + 1
        if longest > length:
            raise ConfigError(f"a {split} caption needs {longest} tokens with its start token; raise seq_len to it")
        target_ids = _pad([[self.start_id] + row for row in rows], length, t.pad_id)
        return target_ids, _pad([row + [t.eos_id] for row in rows], length, t.pad_id)

    def model_options(self):
        return {"image_size": self.image_size, "num_channels": 3}

    @staticmethod
    def _example(images, target_ids, labels):
        return {"image": images, "target_ids": target_ids}, labels

    def train_dataset(self, start_step):
        c = self.config
        return _step_indexed_batches(self.train, c.batch_size, c.seed, start_step, self._example)

    def eval_dataset(self):
        c = self.config
        return _eval_batches(self.validation, c.batch_size, c.eval_steps, self._example)

    def caption(self, model, images: np.ndarray) -> list[str]:
        """Greedy captions of uint8 `images` (N, S, S, 3) with the model's cached decoder.

        Raises:
            ImageShapeError: the images' size or channels differ from the model's.
        """
        model.encoder.check_image_shape(np.shape(images))  # before batching, naming the shape given
        if getattr(self, "_decoder", None) is None or self._decoder[0] is not model:
            self._decoder = model, _greedy_decoder(
                model, model.init_decoding_cache, self.start_id, self.tokenizer, self.config.seq_len
            )
        return _decode_all(self._decoder[1], images, self.tokenizer)

    def evaluate(self, model):
        count = self.config.eval_decode_examples or len(self.validation_captions)
        hypotheses = self.caption(model, self.validation[0][:count])
        return _text_metrics(self.tokenizer, hypotheses, list(self.validation_captions[:count]))

    def samples(self, model):
        count = min(4, len(self.validation_captions))
        hypotheses = self.caption(model, self.validation[0][:count])
        return [
            f"validation image {i}: {h} (reference: {r})"
            for i, (h, r) in enumerate(zip(hypotheses, self.validation_captions))
        ]


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
        self.tokenizer = tokenizer = _build_tokenizer(config, "\n".join(train_texts))
        if "<mask>" not in tokenizer.special_tokens:
            raise ConfigError(f"tokenizer {config.tokenizer!r} has no <mask> token; use wordpiece or sentencepiece")
        self.max_predictions = config.get("max_predictions", 5)
        self.mask_rate = config.get("mask_rate", 0.15)
        cls_id = tokenizer.special_tokens.get("<cls>", tokenizer.eos_id)
        self.mask_options = dict(
            vocabulary_size=tokenizer.vocabulary_size, mask_id=tokenizer.special_tokens["<mask>"],
            max_predictions=self.max_predictions, mask_rate=self.mask_rate,
            special_ids=sorted(tokenizer.special_tokens.values()),
        )  # fmt: skip
        rows = [([cls_id] + list(tokenizer.encode(text)))[: config.seq_len] for text in train_texts]
        self.train = _pad([r for r in rows if len(r) > 1], config.seq_len, tokenizer.pad_id)
        rows = [([cls_id] + list(tokenizer.encode(text)))[: config.seq_len] for text in validation_texts]
        held_out = _pad([r for r in rows if len(r) > 1], config.seq_len, tokenizer.pad_id)
        if not len(self.train) or not len(held_out):
            raise DatasetError(f"{config.dataset}: no text left to mask in the train or validation split")
        masked = mask_tokens(held_out, [config.seed, -1], **self.mask_options)
        self.validation = tuple(masked[k].numpy() for k in ("token_ids", "mask_positions", "mask_ids"))
        logging.info(
            "dataset %s: %d train / %d validation rows, vocabulary %d",
            config.dataset, len(self.train), len(held_out), tokenizer.vocabulary_size,
        )  # fmt: skip

    @staticmethod
    def _example(token_ids, mask_positions, mask_ids):
        return {"token_ids": token_ids, "mask_positions": mask_positions}, mask_ids

    def train_dataset(self, start_step):
        c, options = self.config, self.mask_options

        def to_example(token_ids, step):
            masked = mask_tokens(token_ids, tf.stack([tf.constant(c.seed, tf.int64), step]), **options)
            return self._example(masked["token_ids"], masked["mask_positions"], masked["mask_ids"])

        steps = tf.data.Dataset.counter(start=int(start_step), dtype=tf.int64)
        batches = _step_indexed_batches((self.train,), c.batch_size, c.seed, start_step, lambda rows: rows)
        dataset = tf.data.Dataset.zip(batches, steps).map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.prefetch(tf.data.AUTOTUNE)

    def eval_dataset(self):
        c = self.config
        return _eval_batches(self.validation, c.batch_size, c.eval_steps, self._example)

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


TASKS = {task.kind: task for task in (LanguageModelTask, Seq2SeqTask, ClassificationTask, CaptionTask, MaskedLMTask)}


def make_task(kind: str, config) -> Task:
    """Loads the data and builds the tokenizer of a task of `kind` (a key of `TASKS`)."""
    if kind not in TASKS:
        raise ConfigError(f"unknown task kind {kind!r}; valid: {', '.join(TASKS)}")
    return TASKS[kind](config)
