"""VideoCaptioner and the tubelet ViTEncoder: config round trip, tubelets and space-time positions, training.

The tubelet embedding must equal a Dense on each flattened tubelet computed
here with numpy; positions must differ between time slots (so frame order
reaches the encoder); a few steps of the `caption` task on `video:shapes`
clips must lower the loss and log `pair_exact_match`; clips of the wrong
frame count, size or channels must be one-line errors.
"""

import json
import os

import keras
import numpy as np
import pytest

from tfzoo.config_files import load_config_file
from tfzoo.models.captioner import Captioner
from tfzoo.models.registry import TASK_KINDS, build_model
from tfzoo.models.video_captioner import VideoCaptioner
from tfzoo.models.vit_encoder import ImageShapeError, ViTEncoder
from tfzoo.training.train_lib import train_and_evaluate
from tfzoo.training.validate import resolve_config
from tfzoo.training.vision_tasks import CaptionTask

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(
    dataset="video:shapes:16",
    num_frames=6,
    num_train=64,
    num_validation=8,
    patch_size=8,
    tubelet_size=3,
    num_layers=1,
    num_heads=2,
    hidden_dim=16,
    intermediate_dim=16,
    batch_size=8,
    train_steps=2,
    eval_every=2,
    eval_steps=1,
    warmup_steps=1,
    jit_compile=False,
)


def tiny_config(**overrides):
    config = load_config_file(os.path.join(REPO, "configs", "video_captioner_shapes.py"))
    config.update({**TINY, **overrides})
    return config


def tiny_model(**overrides) -> VideoCaptioner:
    arguments = dict(
        vocabulary_size=30,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=12,
        image_size=16,
        patch_size=4,
        num_frames=4,
        tubelet_size=2,
    )
    return VideoCaptioner(**{**arguments, **overrides})


def test_config_round_trip_keeps_every_argument_and_the_weights(tmp_path):
    model = tiny_model(position="sinusoidal", num_frames=6, tubelet_size=3, tie_embeddings=False, dropout=0.1)
    config = model.get_config()
    assert (config["num_frames"], config["tubelet_size"], config["position"]) == (6, 3, "sinusoidal")
    again = VideoCaptioner.from_config(config)
    assert again.get_config() == config and again.num_patches == 2 * 16
    clip = np.random.default_rng(0).integers(0, 255, (2, 6, 16, 16, 3)).astype(np.uint8)
    inputs = {"video": clip, "target_ids": np.array([[3, 4, 5], [6, 7, 8]])}
    want = np.asarray(model(inputs))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert type(loaded) is VideoCaptioner
    np.testing.assert_allclose(np.asarray(loaded(inputs)), want, atol=1e-6)
    # The image captioner is unchanged: no frames, and it refuses them.
    assert (
        Captioner(
            **{k: v for k, v in config.items() if k in ("vocabulary_size", "num_layers", "num_heads")},
            hidden_dim=16,
            intermediate_dim=32,
            max_sequence_length=12,
        ).get_config()["num_frames"]
        is None
    )
    with pytest.raises(ValueError, match="use VideoCaptioner for clips"):
        Captioner(
            vocabulary_size=30,
            num_layers=1,
            num_heads=2,
            hidden_dim=16,
            intermediate_dim=32,
            max_sequence_length=12,
            num_frames=4,
        )


def test_tubelets_are_a_dense_on_each_flattened_space_time_block():
    encoder = ViTEncoder(
        image_size=8,
        patch_size=4,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=8,
        num_frames=4,
        tubelet_size=2,
    )
    encoder.build()
    clip = np.random.default_rng(1).random((2, 4, 8, 8, 3)).astype(np.float32)
    embedded = np.asarray(encoder.patch_embedding(encoder.tubelets(clip)))  # (B*T', G, G, C)
    embedded = embedded.reshape(2, 2 * 4, 8)  # time-major tokens
    kernel, bias = (np.asarray(w) for w in encoder.patch_embedding.weights)  # (4, 4, 2*3, C)
    for b in range(2):
        for slot in range(2):
            for row in range(2):
                for column in range(2):
                    block = clip[b, 2 * slot : 2 * slot + 2, 4 * row : 4 * row + 4, 4 * column : 4 * column + 4]
                    block = block.transpose(1, 2, 0, 3).reshape(4, 4, 6)  # (y, x, frame*channel)
                    want = np.einsum("yxc,yxcd->d", block, kernel) + bias
                    token = slot * 4 + row * 2 + column
                    np.testing.assert_allclose(embedded[b, token], want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("position", ("learned", "sinusoidal"))
def test_space_time_positions_differ_between_time_slots_and_patches(position):
    encoder = ViTEncoder(
        image_size=8,
        patch_size=4,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=8,
        num_frames=6,
        tubelet_size=2,
        position=position,
    )
    encoder.build()
    if position == "learned":  # a fresh table starts near zero: spread it out
        rng = np.random.default_rng(2)
        for weight in encoder.weights:
            if "embedding" in weight.path and "patch" not in weight.path:
                weight.assign(rng.normal(size=weight.shape))
    positions = np.asarray(encoder.patch_positions())[0]
    assert positions.shape == (3 * 4, 8)
    assert len({tuple(np.round(p, 5)) for p in positions}) == 12  # every (slot, patch) has its own position
    grid = positions.reshape(3, 4, 8)
    # Factorised: slot s, patch p = space(p) + time(s), so the time offset is the same for every patch.
    np.testing.assert_allclose(grid[1] - grid[0], np.broadcast_to(grid[1, 0] - grid[0, 0], (4, 8)), atol=1e-5)
    # Reversing the frames changes the encoding: order reaches the encoder.
    clip = np.random.default_rng(3).random((1, 6, 8, 8, 3)).astype(np.float32)
    forward, backward = np.asarray(encoder(clip)), np.asarray(encoder(clip[:, ::-1]))
    assert np.abs(forward - backward).max() > 1e-3


@pytest.mark.parametrize(
    "shape, got",
    [
        ((2, 6, 16, 16, 3), "(2, 6, 16, 16, 3)"),
        ((2, 4, 24, 24, 3), "(2, 4, 24, 24, 3)"),
        ((2, 16, 16, 3), "(2, 16, 16, 3)"),
        ((2, 4, 16, 16, 1), "(2, 4, 16, 16, 1)"),
    ],
)
def test_clips_of_the_wrong_shape_are_one_line_errors(shape, got):
    model = tiny_model()
    clip = np.zeros(shape, np.uint8)
    expected = r"expected clips of shape \(batch, 4, 16, 16, 3\) \(frames, height, width, channels\), got "
    for call in (
        lambda: model({"video": clip, "target_ids": np.ones((2, 3), np.int32)}),
        lambda: model.init_decoding_cache(clip, 8),
    ):
        with pytest.raises(ImageShapeError, match=expected) as error:
            call()
        assert "\n" not in str(error.value) and str(error.value).endswith(got + ".")
    with pytest.raises(ValueError, match="inputs must be a dict with 'video' and 'target_ids'"):
        model({"image": clip, "target_ids": np.ones((2, 3), np.int32)})


def test_a_few_steps_lower_the_loss_on_clips():
    task = CaptionTask(resolve_config(tiny_config()))
    assert TASK_KINDS["video_captioner"] == "caption" and task.model_options()["num_frames"] == 6
    keras.utils.set_random_seed(0)
    model = build_model(resolve_config(tiny_config()), task.tokenizer.vocabulary_size, **task.model_options())
    assert isinstance(model, VideoCaptioner) and model.num_patches == 2 * 4
    inputs, labels = next(iter(task.train_dataset(start_step=0)))
    assert inputs["video"].shape == (8, 6, 16, 16, 3)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=task.tokenizer.pad_id)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=loss)
    history = model.fit(inputs, labels, epochs=15, batch_size=8, verbose=0).history["loss"]
    assert history[-1] < 0.8 * history[0], history  # 4.86 -> 3.42 nats here


def test_short_run_logs_pair_exact_match_and_refuses_a_mismatched_model(tmp_path):
    summary = train_and_evaluate(tiny_config(), str(tmp_path / "run"))
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert summary["step"] == 2 and len(records) == 1
    record = records[0]
    assert record["decoded_examples"] == 8 and 0.0 <= record["pair_exact_match"] <= record["exact_match"] <= 1.0
    assert "validation clip 0: " in summary["samples"][0]
    assert isinstance(keras.saving.load_model(tmp_path / "run" / "model.keras"), VideoCaptioner)
    with pytest.raises(ValueError, match="clips are for model 'video_captioner'"):
        train_and_evaluate(tiny_config(model="captioner"), str(tmp_path / "bad"))


def test_pair_exact_match_needs_both_captions_of_a_pair(tmp_path):
    task = CaptionTask(resolve_config(tiny_config()))
    references = list(task.validation_captions)
    task.caption = lambda model, clips: references[:2] + ["a red square"] + references[3 : len(clips)]
    metrics = task.evaluate(None)
    assert metrics["exact_match"] == 7 / 8 and metrics["pair_exact_match"] == 3 / 4
