"""`caption` (Captioner, VideoCaptioner): the embedded `shapes` images or `video:shapes` clips,
judged by greedy captions of the held-out ones.

See `tfzoo.training.tasks` for what each kind trains on and reports.
"""

from __future__ import annotations

import functools

import numpy as np
from absl import logging

from tfzoo.data.shapes_data import load_shapes_data
from tfzoo.data.video_data import SPEC_PREFIX as VIDEO_SPEC
from tfzoo.data.video_data import load_video_data
from tfzoo.training.decoded_metrics import decode_all, greedy_decoder, text_metrics
from tfzoo.training.task import Task, build_task_tokenizer
from tfzoo.training.task_batches import eval_batches, step_indexed_batches, teacher_forced_rows
from tfzoo.training.validate import ConfigError

# The embedded images are generated (seconds) and immutable: generate each set once a process.
_shapes_task = functools.lru_cache(maxsize=2)(load_shapes_data)
_video_task = functools.lru_cache(maxsize=2)(load_video_data)


class CaptionTask(Task):
    """`caption` (Captioner): the embedded `shapes[:SIZE]` images with their captions, one shared tokenizer.

    Optional config fields: `num_train` (20000) and `num_validation` (1000)
    images. Targets are `<bos> caption`, labels `caption <eos>`, both padded
    to `seq_len`; `evaluate` reports `exact_match` and `bleu` of the model's
    greedy captions of the held-out images.

    A `video:shapes[:SIZE]` dataset gives clips instead (fed as `video`, for a
    `VideoCaptioner`; optional field `num_frames`, 8); `evaluate` adds
    `pair_exact_match`: the share of held-out pairs (a clip and the same clip
    with its two events swapped in time) whose two captions are both exact.
    """

    kind = "caption"

    def __init__(self, config):
        super().__init__(config)
        sizes = {key: config.get(key, default) for key, default in (("num_train", 20000), ("num_validation", 1000))}
        self.video = str(config.dataset).startswith(VIDEO_SPEC)
        if self.video != (config.model == "video_captioner"):
            raise ConfigError(
                f"model {config.model!r} cannot train on dataset {config.dataset!r}: 'video:shapes' clips are for "
                "model 'video_captioner', 'shapes' images for 'captioner'"
            )
        if self.video:
            task = _video_task(config.dataset, seed=config.seed, num_frames=config.get("num_frames", 8), **sizes)
            pictures = (task.train_videos, task.validation_videos)
        else:
            task = _shapes_task(config.dataset, seed=config.seed, **sizes)
            pictures = (task.train_images, task.validation_images)
        self.input_name = "video" if self.video else "image"
        self.image_size = task.image_size
        self.tokenizer = tokenizer = build_task_tokenizer(config, task.tokenizer_text())
        self.start_id = tokenizer.special_tokens.get("<bos>", tokenizer.eos_id)
        self.train = (pictures[0], *self._encode(task.train_captions, "train"))
        self.validation = (pictures[1], *self._encode(task.validation_captions, "validation"))
        self.validation_captions = task.validation_captions
        logging.info(
            "dataset %s: %d train / %d validation %s of %dx%d, vocabulary %d",
            task.name,
            len(pictures[0]),
            len(pictures[1]),
            "clips" if self.video else "images",
            task.image_size,
            task.image_size,
            tokenizer.vocabulary_size,
        )

    def _encode(self, captions, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Padded `target_ids` (`<bos> caption`) and `labels` (`caption <eos>`); every caption must fit."""
        return teacher_forced_rows(self.tokenizer, captions, self.start_id, self.config.seq_len, f"{split} caption")

    def model_options(self):
        frames = {"num_frames": int(self.validation[0].shape[1])} if self.video else {}
        return {"image_size": self.image_size, "num_channels": 3, **frames}

    def _example(self, images, target_ids, labels):
        return {self.input_name: images, "target_ids": target_ids}, labels

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
        metrics = text_metrics(self.tokenizer, hypotheses, list(self.validation_captions[:count]))
        if self.video:  # held-out clips come in time-swapped pairs: 2i and 2i + 1
            expressible = [self.tokenizer.decode(self.tokenizer.encode(r)) for r in self.validation_captions[:count]]
            right = np.array([h == r for h, r in zip(hypotheses, expressible)])
            pairs = right[: len(right) // 2 * 2].reshape(-1, 2)
            metrics["pair_exact_match"] = float(pairs.all(axis=1).mean()) if len(pairs) else 0.0
        return metrics

    def samples(self, model):
        count = min(4, len(self.validation_captions))
        hypotheses = self.caption(model, self.validation[0][:count])
        return [
            f"validation {'clip' if self.video else 'image'} {i}: {h} (reference: {r})"
            for i, (h, r) in enumerate(zip(hypotheses, self.validation_captions))
        ]
