"""The `captioner` kind: image-to-text models (`Captioner`).

Conditioning input: `image` float32 [B, H, W, C] in [0, 1] (runtimes also
take uint8 and scale it by 1/255); its shape is fixed by the signature. The
step reads `cross_k_<i>`, `cross_v_<i>` [B, num_heads, N, head_dim] over the
N patches (no mask: every patch is real). `serving_default` takes `image`.
Parity and the quantized loss check run on held-out images of the run's
`shapes` task. The generate CLI reads `--image=PATH` (`.png` or `.npy`).
"""

from __future__ import annotations

import os

import numpy as np

from tfzoo.kinds.base import EncoderKind, ModelKindError
from tfzoo.runtime_inputs import check_image

NUM_PARITY_IMAGES = 3
VALIDATION_EXAMPLES = 32


def load_image(path: str) -> np.ndarray:
    """One image (H, W, C) from a `.npy` or `.png` file; ValueError names what is wrong.

    Example:
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> np.save(path, np.zeros((4, 4), np.uint8))
    >>> load_image(path).shape
    (4, 4, 1)
    """
    if not os.path.isfile(path):
        raise ValueError(f"image {path} does not exist")
    if path.endswith(".npy"):
        try:
            image = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot read {path}: {error}") from None
    elif path.endswith(".png"):
        try:
            from PIL import Image  # noqa: PLC0415 (pillow comes with matplotlib)

            with Image.open(path) as picture:
                image = np.asarray(picture)
        except (ImportError, OSError) as error:
            raise ValueError(f"cannot read {path}: {error}") from None
    else:
        raise ValueError(f"--image must be a .png or .npy file, got {path}")
    if image.ndim == 2:
        image = image[:, :, None]  # greyscale: one channel
    return image


def _shapes(run, image_shape, count: int):
    dataset = str(run.config.get("dataset", "shapes"))
    from tfzoo.data.shapes_data import load_shapes_data  # noqa: PLC0415 (imported only when needed)

    try:
        task = load_shapes_data(
            dataset if dataset.startswith("shapes") else "shapes",
            num_train=int(run.config.get("num_train", 20000)),
            num_validation=count,
            seed=int(run.config.get("seed", 0)),
        )
    except ValueError as error:
        raise ModelKindError(f"cannot load the task {dataset!r} for parity inputs: {error}") from None
    if task.image_size != image_shape[0]:
        raise ModelKindError(
            f"{dataset} makes {task.image_size}x{task.image_size} images but the model takes "
            f"{image_shape[0]}x{image_shape[1]}"
        )
    return task


class CaptionerKind(EncoderKind):
    """Image-to-text models (`Captioner`): `image` float32 (B, H, W, C) in [0, 1]."""

    name = "captioner"
    model_classes = ("Captioner",)
    condition_names = ("image",)
    description = "an image-captioning export"

    def image_shape(self, model_config):
        size = int(model_config.get("image_size", 32))
        return (size, size, int(model_config.get("num_channels", 3)))

    def report_fields(self, model_config, tokenizer):
        return {**super().report_fields(model_config, tokenizer), "image_shape": list(self.image_shape(model_config))}

    # ---- runtime side ----

    def check_input(self, info, value) -> np.ndarray:
        """The checked batch of the kind's one conditioning input (float32), from the report's `model` section."""
        return check_image(value, info["image_shape"])

    def check_conditions(self, info, conditions):
        conditions = super().check_conditions(info, conditions)
        name = self.condition_names[0]
        return {name: self.check_input(info, conditions[name])}

    def serving_feed(self, info, prompts):
        return self.condition_names[0], self.check_input(info, prompts)

    def cli_conditions(self, prompt, image_path, tokenizer, max_source_length):
        if image_path is None:
            raise ValueError("this model is a captioner: pass --image=PATH.png|.npy")
        if prompt:
            raise ValueError("a captioner takes --image, not --prompt")
        return {"image": load_image(image_path)[None]}

    def keras_conditions(self, conditions, model):
        name, axes = self.condition_names[0], self.input_axes
        image = conditions[name]
        expected = tuple(model.encoder.input_shape_without_batch)
        if tuple(image.shape[1:]) != expected:
            raise ValueError(f"the {name} has shape {tuple(image.shape[1:])}; the model takes {expected} ({axes})")
        image = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
        return {**conditions, name: image}

    input_axes = "height, width, channels"  # names the axes of the input in errors

    # ---- model side ----

    def condition_specs(self, batch_size=None):
        import tensorflow as tf  # noqa: PLC0415 (the runtime side runs without TensorFlow)

        name, shape = self.condition_names[0], tuple(int(d) for d in self.model.encoder.input_shape_without_batch)
        return {name: tf.TensorSpec([batch_size, *shape], tf.float32, name=name)}

    def context_specs(self):
        return self._cross_specs(int(self.model.num_patches))

    def prepare(self, conditions):
        import tensorflow as tf  # noqa: PLC0415 (the runtime side runs without TensorFlow)

        name = self.condition_names[0]
        return {name: tf.cast(conditions[name], tf.float32)}

    def encode(self, conditions):
        return self._cross_outputs(self.model.encode(self.prepare(conditions)[self.condition_names[0]]))

    def step(self, token_ids, positions, cache, context):
        return self.model.call_with_cache(token_ids, positions, cache, self._cross(context))

    def init_decoding_cache(self, conditions, max_length: int):
        return self.model.init_decoding_cache(conditions[self.condition_names[0]], max_length)

    def serving_input_spec(self):
        return self.condition_specs()[self.condition_names[0]]

    def serving_conditions(self, tokenizer, inputs):
        return {self.condition_names[0]: inputs}

    # ---- parity ----

    def held_out(self, run, count: int) -> tuple[np.ndarray, list[str]]:
        """`count` held-out uint8 inputs of the run's task and their captions (`shapes` images here)."""
        task = _shapes(run, self.image_shape(run.model_config), count)
        return task.validation_images, list(task.validation_captions)

    def parity_inputs(self, run, max_length):
        """Held-out inputs of the run's task, the start token as the decoder prompt; `texts` are reference captions."""
        pictures, captions = self.held_out(run, NUM_PARITY_IMAGES)
        conditions = {self.condition_names[0]: pictures.astype(np.float32) / np.float32(255.0)}
        return self._start_prompts(run.tokenizer, captions, conditions, max_length)

    def validation_examples(self, run, max_length):
        """Teacher-forced held-out captions of the run's task (padding masked)."""
        pictures, captions = self.held_out(run, VALIDATION_EXAMPLES)
        targets = [list(run.tokenizer.encode(c)) for c in captions]
        conditions = {self.condition_names[0]: pictures.astype(np.float32) / np.float32(255.0)}
        return self._teacher_forced(run.tokenizer, targets, conditions, max_length)


KIND = CaptionerKind
