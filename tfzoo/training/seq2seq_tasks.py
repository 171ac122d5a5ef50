"""`seq2seq` (Transformer): translation pairs, judged by greedy translations of the held-out sources.

See `tfzoo.training.tasks` for what each kind trains on and reports.
"""

from __future__ import annotations

import functools

import numpy as np
from absl import logging

from tfzoo.data.errors import DatasetError
from tfzoo.data.text_datasets import load_tfds_translation
from tfzoo.data.translation_data import load_translation_data
from tfzoo.training.decoded_metrics import decode_all, greedy_decoder, text_metrics
from tfzoo.training.task import Task, build_task_tokenizer, load_task_data
from tfzoo.training.task_batches import eval_batches, pad_rows, step_indexed_batches
from tfzoo.training.validate import ConfigError

# The embedded tasks are generated (seconds for 10000 numbers) and immutable: generate each once a process.
_translation_task = functools.lru_cache(maxsize=4)(load_translation_data)


def _seq2seq_cache(model, source_ids, max_length):
    return model.init_decoding_cache(source_ids, None, max_length)


class Seq2SeqTask(Task):
    """`seq2seq`: translation pairs (`numbers:SRC-TGT` or `tfds:NAME/SRC-TGT`), one shared tokenizer."""

    kind = "seq2seq"

    def __init__(self, config):
        super().__init__(config)
        task = load_task_data(config, load_tfds_translation, _translation_task)
        self.tokenizer = tokenizer = build_task_tokenizer(config, task.tokenizer_text())
        start_id = config.get("decoder_start_id", -1)  # T5: the pad id (configs/t5_finetune.py); -1: the tokenizer's
        self.start_id = (
            start_id
            if start_id is not None and start_id >= 0
            else tokenizer.special_tokens.get("<bos>", tokenizer.eos_id)
        )
        self.train = self._encode(task.train_sources, task.train_targets, "train")
        self.validation = self._encode(task.validation_sources, task.validation_targets, "validation")
        self.validation_references = [task.validation_targets[i] for i in self.validation["index"]]
        self.sample_sources = self._sample_sources()
        logging.info(
            "dataset %s: %d train / %d validation pairs, vocabulary %d",
            task.name,
            len(self.train["index"]),
            len(self.validation["index"]),
            tokenizer.vocabulary_size,
        )

    def _encode(self, sources, targets, split: str) -> dict:
        """Padded `source_ids`, `target_ids` (`<bos> y`), `labels` (`y <eos>`) of the pairs that fit `seq_len`."""
        t, length = self.tokenizer, self.config.seq_len
        kept, source_rows, target_rows = [], [], []
        for index, (source, target) in enumerate(zip(sources, targets)):
            source_ids, target_ids = list(t.encode(source)), list(t.encode(target))
            if getattr(t, "append_eos", False) and target_ids[-1:] == [t.eos_id]:
                target_ids.pop()  # T5's tokenizer ends every text with </s>: the labels add it once, below
            if 0 < len(source_ids) <= length and len(target_ids) + 1 <= length:
                kept.append(index)
                source_rows.append(source_ids)
                target_rows.append(target_ids)
        dropped = len(sources) - len(kept)
        if dropped:
            logging.warning(
                "%s: %d of %d pairs are longer than seq_len %d and left out", split, dropped, len(sources), length
            )
        if not kept:
            raise DatasetError(f"no {split} pair fits seq_len {length}; raise seq_len")
        return {
            "index": kept,
            "source_ids": pad_rows(source_rows, length, t.pad_id),
            "target_ids": pad_rows([[self.start_id] + r for r in target_rows], length, t.pad_id),
            "labels": pad_rows([r + [t.eos_id] for r in target_rows], length, t.pad_id),
        }

    @staticmethod
    def _example(source_ids, target_ids, labels):
        return {"source_ids": source_ids, "target_ids": target_ids}, labels

    def _arrays(self, split):
        return tuple(split[k] for k in ("source_ids", "target_ids", "labels"))

    def train_dataset(self, start_step):
        c = self.config
        return step_indexed_batches(self._arrays(self.train), c.batch_size, c.seed, start_step, self._example)

    def eval_dataset(self):
        c = self.config
        return eval_batches(self._arrays(self.validation), c.batch_size, c.eval_steps, self._example)

    def translate(self, model, source_ids: np.ndarray) -> list[str]:
        """Greedy translations of padded `source_ids` (N, S) with the model's cached decoder."""
        if getattr(self, "_decoder", None) is None or self._decoder[0] is not model:
            init = functools.partial(_seq2seq_cache, model)
            self._decoder = model, greedy_decoder(model, init, self.start_id, self.tokenizer, self.config.seq_len)
        return decode_all(self._decoder[1], source_ids, self.tokenizer)

    def evaluate(self, model):
        count = self.config.eval_decode_examples or len(self.validation_references)
        references = self.validation_references[:count]
        hypotheses = self.translate(model, self.validation["source_ids"][:count])
        return text_metrics(self.tokenizer, hypotheses, references)

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
        return pad_rows(rows, self.config.seq_len, self.tokenizer.pad_id)

    def samples(self, model):
        if not len(self.sample_sources):
            return []
        translations = self.translate(model, self.sample_sources)
        return [f"{p} -> {h}" for p, h in zip(self.config.sample_prompts, translations)]
