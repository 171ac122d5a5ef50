"""Export of the VideoCaptioner: `python -m export` on a tiny workdir, every runtime against Keras.

The `video` kind goes through the captioner's pipeline (no fork): one export
(module fixture) serves every test: the report (kind `video`, `video_shape`,
parity on held-out `video:shapes` clips), greedy and beam tokens of
SavedModel, TFLite and ONNX against a Keras reference computed here
(`model.init_decoding_cache` + `tfzoo.decoding.generate`), `serving_default`
(clip in, caption out), `python -m tfzoo.generate --video` with a `.npy` and a
`.gif`, and clips of the wrong frame count, size or dtype.
"""

from __future__ import annotations

import contextlib
import io
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from export.__main__ import main as export_main
from export.runtimes import RuntimeInputError, load_runtime
from tfzoo.data.char_tokenizer import CharTokenizer
from tfzoo.data.tokenizers import load_tokenizer
from tfzoo.data.video_data import load_video_data
from tfzoo.decoding import generate
from tfzoo.generate import main as generate_main
from tfzoo.models.video_captioner import VideoCaptioner

SPEC = "video:shapes:16"
FRAMES = 6
MAX_SEQUENCE_LENGTH = 24
MAX_LENGTH = 12
BEAM_SIZE = 2
RUNTIMES = ("saved_model", "tflite", "onnx")


def make_workdir(workdir) -> str:
    """A run folder with an untrained VideoCaptioner whose logits are spread out and depend on the clip."""
    workdir = str(workdir)
    os.makedirs(workdir, exist_ok=True)
    task = load_video_data(SPEC, num_train=40, num_validation=8, num_frames=FRAMES)
    tokenizer = CharTokenizer.from_text(task.tokenizer_text() + "\n".join(task.validation_captions))
    tokenizer.save(os.path.join(workdir, "tokenizer"))
    keras.utils.set_random_seed(0)
    model = VideoCaptioner(
        vocabulary_size=tokenizer.vocabulary_size,
        num_layers=1,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=MAX_SEQUENCE_LENGTH,
        image_size=16,
        patch_size=8,
        num_frames=FRAMES,
        tubelet_size=3,
        tie_embeddings=False,
    )
    model.build()
    for weight in model.token_embedding.weights:
        weight.assign(weight * 4.0)
    for weight in model.decoder_blocks[0].cross_attention_layer.weights:  # let the clip move the logits more
        if "kernel" in weight.path:
            weight.assign(weight * 3.0)
    for weight in model.encoder.time_embedding.weights:  # and the order of its frames
        weight.assign(np.random.default_rng(1).normal(size=weight.shape).astype(np.float32))
    model.save(os.path.join(workdir, "model.keras"))
    config = {
        "model": "video_captioner",
        "dataset": SPEC,
        "num_frames": FRAMES,
        "tokenizer": "char",
        "seq_len": MAX_SEQUENCE_LENGTH,
        "seed": 0,
    }
    with open(os.path.join(workdir, "config.json"), "w", encoding="utf-8") as file:
        json.dump(config, file)
    return workdir


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("export_video") / "run")
    with contextlib.redirect_stdout(io.StringIO()):
        status = export_main(
            [f"--workdir={workdir}", f"--max_length={MAX_LENGTH}", f"--beam_size={BEAM_SIZE}", "--quantization=none"]
        )
    assert status == 0
    with open(os.path.join(workdir, "export", "report.json"), encoding="utf-8") as file:
        report = json.load(file)
    clips = load_video_data(SPEC, num_train=1, num_validation=8, num_frames=FRAMES, seed=5).validation_videos
    return {
        "workdir": workdir,
        "report": report,
        "tokenizer": load_tokenizer(os.path.join(workdir, "tokenizer")),
        "clips": clips[2:7],
    }


@pytest.fixture(scope="module")
def runtimes(exported):
    return {name: load_runtime(exported["workdir"], name) for name in RUNTIMES}


@pytest.fixture(scope="module")
def keras_reference(exported):
    """Greedy and beam tokens of the Keras model through the training-time decoding path (not export code)."""
    model = keras.saving.load_model(os.path.join(exported["workdir"], "model.keras"), compile=False)
    info = exported["report"]["model"]
    batch = len(exported["clips"])
    outputs = {}
    for strategy in ("greedy", "beam"):

        @tf.function(autograph=False)
        def run(video, strategy=strategy):
            return generate(
                model.decoding_step,
                model.init_decoding_cache(video, MAX_LENGTH),
                tf.fill([batch, 1], info["start_id"]),
                tf.ones([batch], tf.int32),
                max_length=MAX_LENGTH,
                strategy=strategy,
                beam_size=BEAM_SIZE,
                eos_ids=info["eos_ids"],
                banned_ids=info["banned_ids"],
                pad_id=info["pad_id"],
                max_new_tokens=MAX_LENGTH - 1,
            )

        out = run(tf.constant(exported["clips"].astype(np.float32) / 255.0))
        outputs[strategy] = {key: value.numpy() for key, value in out.items()}
    return outputs


def test_report_names_the_video_kind_its_signatures_and_parity(exported):
    report = exported["report"]
    assert report["passed"], report["failures"]
    assert report["model"]["kind"] == "video" and report["model"]["video_shape"] == [FRAMES, 16, 16, 3]
    export_dir = os.path.join(exported["workdir"], "export")
    for name in ("video_captioner.tflite", "video_captioner.onnx", "saved_model/video_captioner/1/saved_model.pb"):
        assert os.path.isfile(os.path.join(export_dir, name)), name
    for key in ("saved_model", "tflite", "onnx"):
        signatures = report["artefacts"][key]["signatures"]
        assert "video" in signatures["generate"]["inputs"] and "image" not in signatures["generate"]["inputs"], key
        assert set(signatures["encode"]["inputs"]) == {"video"}, key
        parity = report["artefacts"][key]["parity"]
        assert parity["generate"]["beam"]["identical"] and parity["generate"]["greedy"]["identical"], key
    held_out = load_video_data(SPEC, num_train=1, num_validation=3, num_frames=FRAMES).validation_captions
    assert report["reference"]["prompts"] == list(held_out)[:3]  # parity clips: the task's held-out clips


def test_greedy_and_beam_tokens_match_keras_in_every_runtime(runtimes, keras_reference, exported):
    for strategy in ("greedy", "beam"):
        want = keras_reference[strategy]
        assert len({tuple(row) for row in want["sequences"]}) > 1  # captions depend on the clip
        for name, runtime in runtimes.items():
            sequences, lengths, scores = runtime.generate(
                None, None, MAX_LENGTH - 1, strategy=strategy, video=exported["clips"]
            )  # uint8: scaled by the adapter
            np.testing.assert_array_equal(sequences, want["sequences"], err_msg=f"{name} {strategy}")
            np.testing.assert_array_equal(lengths, want["sequence_lengths"], err_msg=f"{name} {strategy}")
            np.testing.assert_allclose(scores, want["scores"], atol=1e-3, err_msg=f"{name} {strategy}")


def test_serving_default_captions_clips_and_frame_order_matters(runtimes, exported):
    texts, _ = runtimes["saved_model"].complete(exported["clips"], max_new_tokens=MAX_LENGTH - 1)
    sequences, lengths, _ = runtimes["tflite"].generate(None, None, MAX_LENGTH - 1, video=exported["clips"])
    tokenizer = exported["tokenizer"]
    assert texts == [tokenizer.decode(row[1:end]) for row, end in zip(sequences, lengths)]
    backwards, _, _ = runtimes["tflite"].generate(None, None, MAX_LENGTH - 1, video=exported["clips"][:, ::-1])
    assert not np.array_equal(backwards, sequences)  # the same frames in reverse order: other captions


@pytest.mark.parametrize(
    "shape, dtype, message",
    [
        ((1, 8, 16, 16, 3), np.uint8, r"video must have shape \(batch, 6, 16, 16, 3\) \(frames, height, width, "),
        ((1, 6, 24, 24, 3), np.float32, r"got \(1, 6, 24, 24, 3\)"),
        ((6, 16, 16, 3), np.uint8, "got one clip of shape \\(6, 16, 16, 3\\): add a batch axis"),
        ((1, 6, 16, 16, 3), np.int64, "video must be float .* or uint8, got int64"),
    ],
)
def test_clips_of_the_wrong_shape_or_dtype_give_clear_errors(runtimes, shape, dtype, message):
    for runtime in runtimes.values():
        with pytest.raises(RuntimeInputError, match=message):
            runtime.generate(None, None, 4, video=np.zeros(shape, dtype))
    with pytest.raises(RuntimeInputError, match="takes video, not image"):
        runtimes["onnx"].generate(None, None, 4, image=np.zeros((1, 16, 16, 3), np.float32))


@pytest.mark.parametrize("runtime", ("keras", "onnx"))
def test_generate_cli_captions_a_npy_or_gif_clip(exported, runtimes, runtime, tmp_path, capsys):
    clip = exported["clips"][0]
    sequences, lengths, _ = runtimes["tflite"].generate(None, None, MAX_LENGTH - 1, strategy="greedy", video=clip[None])
    want = exported["tokenizer"].decode(sequences[0, 1 : lengths[0]]) + "\n"
    np.save(tmp_path / "clip.npy", clip)
    frames = [Image.fromarray(frame) for frame in clip]  # Pillow merges repeated frames; the reader restores them
    frames[0].save(tmp_path / "clip.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    base = [f"--workdir={exported['workdir']}", f"--runtime={runtime}", "--no_jit_compile"]
    for name in ("clip.npy", "clip.gif"):
        assert generate_main([*base, f"--video={tmp_path / name}", f"--max_new_tokens={MAX_LENGTH - 1}"]) == 0
        assert capsys.readouterr().out == want, name
    np.save(tmp_path / "short.npy", clip[:4])
    (tmp_path / "notes.gif").write_text("not a picture")
    (tmp_path / "clip.txt").write_text("frames")
    for argv, message in (
        ([f"--video={tmp_path / 'short.npy'}"], "4, 16, 16, 3)"),
        ([f"--video={tmp_path / 'notes.gif'}"], "cannot read"),
        ([f"--video={tmp_path / 'clip.mp4'}"], "does not exist"),
        (
            [f"--video={tmp_path / 'clip.txt'}"],
            "--video must be a .npy (uint8 [frames, height, width, 3]) or an animated",
        ),
        (["--prompt=a red"], "this model is a video captioner: pass --video=PATH"),
    ):
        assert generate_main([*base, *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
