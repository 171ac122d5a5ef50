"""`caption` (Captioner): the embedded `shapes` images, judged by greedy captions of the held-out images.

See `tfzoo.training.tasks` for what each kind trains on and reports.
"""

from __future__ import annotations

import functools

import numpy as np
from absl import logging

from tfzoo.data.shapes_data import load_shapes_data
from tfzoo.training.decoded_metrics import decode_all, greedy_decoder, text_metrics
from tfzoo.training.task import Task, build_task_tokenizer
from tfzoo.training.task_batches import eval_batches, pad_rows, step_indexed_batches
from tfzoo.training.validate import ConfigError

# The embedded images are generated (seconds) and immutable: generate each set once a process.
_shapes_task = functools.lru_cache(maxsize=2)(load_shapes_data)


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
        self.tokenizer = tokenizer = build_task_tokenizer(config, task.tokenizer_text())
        self.start_id = tokenizer.special_tokens.get("<bos>", tokenizer.eos_id)
        self.train = (task.train_images, *self._encode(task.train_captions, "train"))
        self.validation = (task.validation_images, *self._encode(task.validation_captions, "validation"))
        self.validation_captions = task.validation_captions
        logging.info(
            "dataset %s: %d train / %d validation images of %dx%d, vocabulary %d",
            task.name,
            len(task.train_images),
            len(task.validation_images),
            task.image_size,
            task.image_size,
            tokenizer.vocabulary_size,
        )

    def _encode(self, captions, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Padded `target_ids` (`<bos> caption`) and `labels` (`caption <eos>`); every caption must fit."""
        t, length = self.tokenizer, self.config.seq_len
        rows = [list(t.encode(caption)) for caption in captions]
        longest = max(len(row) for row in rows) + 1
        if longest > length:
            raise ConfigError(f"a {split} caption needs {longest} tokens with its start token; raise seq_len to it")
        target_ids = pad_rows([[self.start_id] + row for row in rows], length, t.pad_id)
        return target_ids, pad_rows([row + [t.eos_id] for row in rows], length, t.pad_id)

    def model_options(self):
        return {"image_size": self.image_size, "num_channels": 3}

    @staticmethod
    def _example(images, target_ids, labels):
        return {"image": images, "target_ids": target_ids}, labels

    def train_dataset(self, start_step):
        c = self.config
        return step_indexed_batches(self.train, c.batch_size, c.seed, start_step, self._example)

    def eval_dataset(self):
        c = self.config
        return eval_batches(self.validation, c.batch_size, c.eval_steps, self._example)

    def caption(self, model, images: np.ndarray) -> list[str]:
        """Greedy captions of uint8 `images` (N, S, S, 3) with the model's cached decoder.

        Raises:
            ImageShapeError: the images' size or channels differ from the model's.
        """
        model.encoder.check_image_shape(np.shape(images))  # before batching, naming the shape given
        if getattr(self, "_decoder", None) is None or self._decoder[0] is not model:
            self._decoder = (
                model,
                greedy_decoder(model, model.init_decoding_cache, self.start_id, self.tokenizer, self.config.seq_len),
            )
        return decode_all(self._decoder[1], images, self.tokenizer)

    def evaluate(self, model):
        count = self.config.eval_decode_examples or len(self.validation_captions)
        hypotheses = self.caption(model, self.validation[0][:count])
        return text_metrics(self.tokenizer, hypotheses, list(self.validation_captions[:count]))

    def samples(self, model):
        count = min(4, len(self.validation_captions))
        hypotheses = self.caption(model, self.validation[0][:count])
        return [
            f"validation image {i}: {h} (reference: {r})"
            for i, (h, r) in enumerate(zip(hypotheses, self.validation_captions))
        ]
