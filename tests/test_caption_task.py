"""The `caption` task: shapes images and captions feed the Captioner, judged by its own greedy captions.

A tiny run of configs/captioner_shapes.py (18x18 images, a few steps, no XLA)
must write exact_match/bleu records and a reloadable model; the task's
batches must shift captions the seq2seq way; images of the wrong size or
channels must give a one-line error naming what was expected and what came.
"""

import json
import os
import re

import keras
import numpy as np
import pytest

from tfzoo.config_files import load_config_file
from tfzoo.data.tokenizers import load_tokenizer
from tfzoo.models.captioner import Captioner, ImageShapeError
from tfzoo.models.registry import TASK_KINDS, build_model
from tfzoo.training.train_lib import train_and_evaluate
from tfzoo.training.validate import resolve_config
from tfzoo.training.vision_tasks import CaptionTask

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(
    dataset="shapes:18",
    num_train=64,
    num_validation=12,
    patch_size=6,
    num_layers=1,
    num_heads=2,
    hidden_dim=16,
    intermediate_dim=16,
    batch_size=8,
    train_steps=4,
    eval_every=2,
    eval_steps=1,
    warmup_steps=1,
    jit_compile=False,
)


def tiny_config(**overrides):
    config = load_config_file(os.path.join(REPO, "configs", "captioner_shapes.py"))
    config.update({**TINY, **overrides})
    return config


@pytest.fixture(scope="module")
def task():
    return CaptionTask(resolve_config(tiny_config()))


def test_registry_names_the_captioner_and_its_task():
    assert TASK_KINDS["captioner"] == "caption"
    model = build_model(resolve_config(tiny_config()), vocabulary_size=40, image_size=18)
    assert isinstance(model, Captioner) and (model.image_size, model.patch_size, model.num_patches) == (18, 6, 9)


def test_batches_pair_images_with_shifted_captions(task):
    assert task.model_options() == {"image_size": 18, "num_channels": 3}
    inputs, labels = next(iter(task.train_dataset(start_step=0)))
    images, target, labels = inputs["image"].numpy(), inputs["target_ids"].numpy(), labels.numpy()
    assert images.shape == (8, 18, 18, 3) and images.dtype == np.uint8 and images.max() > 0
    assert target.shape == labels.shape == (8, 10)
    assert np.all(target[:, 0] == task.start_id)
    pad, eos = task.tokenizer.pad_id, task.tokenizer.eos_id
    captions = set(task.tokenizer.decode(row) for row in labels)
    assert captions <= set(task.validation_captions) | set(task.tokenizer.decode(r) for r in task.train[2])
    for t, y in zip(target, labels):
        n = int(np.sum(y != pad))  # caption tokens + <eos>
        assert y[n - 1] == eos and np.all(t[1:n] == y[: n - 1]) and np.all(y[n:] == pad)
    # Step-indexed: the same step gives the same batch, the next step another one.
    again, _ = next(iter(task.train_dataset(start_step=0)))
    later, _ = next(iter(task.train_dataset(start_step=1)))
    assert np.array_equal(again["image"], images) and not np.array_equal(later["image"], images)
    eval_inputs, _ = next(iter(task.eval_dataset()))
    np.testing.assert_array_equal(eval_inputs["image"].numpy(), task.validation[0][:8])


def test_metrics_count_exact_captions(task):
    references = list(task.validation_captions)
    task.caption = lambda model, images: references[: len(images)]
    try:
        assert task.evaluate(None) == {"exact_match": 1.0, "bleu": pytest.approx(100.0), "decoded_examples": 12}
        task.caption = lambda model, images: ["a red square"] + references[1 : len(images)]
        metrics = task.evaluate(None)
        assert metrics["exact_match"] == 11 / 12 and 50.0 < metrics["bleu"] < 100.0
    finally:
        del task.caption


def test_short_run_writes_caption_metrics_and_a_reloadable_model(tmp_path):
    summary = train_and_evaluate(tiny_config(train_steps=2), str(tmp_path))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2] and summary["step"] == 2
    for record in records:
        assert 0.0 <= record["exact_match"] <= 1.0 and 0.0 <= record["bleu"] <= 100.0
        assert record["decoded_examples"] == 12 and record["val_loss"] > 0
    assert len(summary["samples"]) == 4 and "(reference: " in summary["samples"][0]
    model = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(model, Captioner) and model.image_size == 18
    assert load_tokenizer(tmp_path / "tokenizer").vocabulary_size == model.vocabulary_size
    # The recorded exact match is the saved model's greedy captions of the held-out images.
    task = CaptionTask(resolve_config(tiny_config()))
    hypotheses = task.caption(model, task.validation[0])
    exact = np.mean([h == r for h, r in zip(hypotheses, task.validation_captions)])
    assert exact == pytest.approx(records[-1]["exact_match"])


def test_config_mistakes_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="raise seq_len to it"):
        train_and_evaluate(tiny_config(seq_len=5), str(tmp_path / "a"))
    with pytest.raises(ValueError, match=r"patch_size \(5\) must divide image_size \(18\)"):
        train_and_evaluate(tiny_config(patch_size=5), str(tmp_path / "b"))
    with pytest.raises(ValueError, match="shapes spec must be"):
        train_and_evaluate(tiny_config(dataset="reviews"), str(tmp_path / "c"))
    assert not os.listdir(tmp_path)  # nothing written for bad input


@pytest.mark.parametrize(
    "shape, got",
    [
        ((2, 24, 24, 3), "(2, 24, 24, 3)"),
        ((2, 18, 18, 1), "(2, 18, 18, 1)"),
        ((2, 18, 18, 4), "(2, 18, 18, 4)"),
        ((18, 18, 3), "(18, 18, 3)"),
    ],
)
def test_wrong_image_size_or_channels_is_a_one_line_error(task, shape, got):
    model = build_model(resolve_config(tiny_config()), task.tokenizer.vocabulary_size, **task.model_options())
    image = np.zeros(shape, np.uint8)
    expected = r"expected images of shape \(batch, 18, 18, 3\) \(height, width, channels\), got "
    calls = {
        "model call": lambda: model({"image": image, "target_ids": np.ones((shape[0], 3), np.int32)}),
        "decoding cache": lambda: model.init_decoding_cache(image, 10),
        "attention scores": lambda: model.attention_scores(image, np.ones((1, 3), np.int32)),
    }
    if len(shape) == 4:  # the task's batched greedy decoding (a tf.function over fixed-size batches)
        calls["greedy captions"] = lambda: task.caption(model, image)
    for name, call in calls.items():
        with pytest.raises(ImageShapeError) as error:
            call()
        message = str(error.value)
        assert isinstance(error.value, ValueError) and "\n" not in message, name
        assert re.match(expected, message), (name, message)
        assert message.endswith(got + "."), (name, message)


def test_greedy_captions_of_a_batch_equal_captions_one_by_one(task):
    model = build_model(resolve_config(tiny_config()), task.tokenizer.vocabulary_size, **task.model_options())
    images = task.validation[0][:3]
    together = task.caption(model, images)
    alone = [task.caption(model, images[i : i + 1])[0] for i in range(3)]
    assert together == alone and all(isinstance(c, str) for c in together)
    # The model's own decoding, step by step without a cache, agrees with the task's captions.
    start = np.full((1, 1), task.start_id, np.int32)
    ids = start
    for _ in range(task.config.seq_len - 1):
        logits = model({"image": images[:1], "target_ids": ids})
        ids = np.concatenate([ids, np.argmax(np.asarray(logits)[:, -1:], -1).astype(np.int32)], axis=1)
        if ids[0, -1] == task.tokenizer.eos_id:
            break
    assert task.tokenizer.decode(ids[0, 1:]) == together[0]
