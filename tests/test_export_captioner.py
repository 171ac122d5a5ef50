"""Export of the image Captioner: `python -m export` on a tiny workdir, every runtime against Keras.

One export (module fixture) serves every test: the report and signatures,
greedy and beam tokens of SavedModel, TFLite and ONNX against a Keras
reference computed here independently (`model.init_decoding_cache` +
`tfzoo.decoding.generate`) on held-out `shapes` images, the `encode` /
`prefill` / `decode` steps, `serving_default` (image in, caption out),
`python -m tfzoo.generate --image`, and images of the wrong size or channels.
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

from export.__main__ import main as export_main
from export.runtimes import RuntimeInputError, load_runtime
from tfzoo.data.char_tokenizer import CharTokenizer
from tfzoo.data.shapes_data import load_shapes_data
from tfzoo.data.tokenizers import load_tokenizer
from tfzoo.decoding import generate
from tfzoo.generate import main as generate_main
from tfzoo.models.captioner import Captioner

IMAGE_SIZE = 24
PATCH_SIZE = 8
MAX_SEQUENCE_LENGTH = 40
MAX_LENGTH = 12
BEAM_SIZE = 2
NUM_TRAIN = 50
RUNTIMES = ("saved_model", "tflite", "onnx")


def make_workdir(workdir) -> str:
    """A run folder with an untrained Captioner whose logits are spread out and depend on the image.

    The embeddings (untied) and the cross-attention kernels are scaled up, so
    that tokens differ between images and no near-tie lets float noise flip one.
    """
    workdir = str(workdir)
    os.makedirs(workdir, exist_ok=True)
    task = load_shapes_data(f"shapes:{IMAGE_SIZE}", num_train=NUM_TRAIN, num_validation=8)
    tokenizer = CharTokenizer.from_text(task.tokenizer_text() + "\n".join(task.validation_captions))
    tokenizer.save(os.path.join(workdir, "tokenizer"))
    keras.utils.set_random_seed(0)
    model = Captioner(
        vocabulary_size=tokenizer.vocabulary_size,
        num_layers=1,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=MAX_SEQUENCE_LENGTH,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        tie_embeddings=False,
    )
    model.build()
    for weight in model.token_embedding.weights:
        weight.assign(weight * 4.0)
    for weight in model.decoder_blocks[0].cross_attention_layer.weights:  # let the image move the logits more
        if "kernel" in weight.path:
            weight.assign(weight * 3.0)
    model.save(os.path.join(workdir, "model.keras"))
    config = {
        "model": "captioner",
        "dataset": f"shapes:{IMAGE_SIZE}",
        "tokenizer": "char",
        "seq_len": MAX_SEQUENCE_LENGTH,
        "seed": 0,
        "num_train": NUM_TRAIN,
    }
    with open(os.path.join(workdir, "config.json"), "w", encoding="utf-8") as file:
        json.dump(config, file)
    return workdir


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("export_captioner") / "run")
    with contextlib.redirect_stdout(io.StringIO()):
        status = export_main(
            [
                f"--workdir={workdir}",
                f"--max_length={MAX_LENGTH}",
                f"--beam_size={BEAM_SIZE}",
                "--quantization=none,fp16",
            ]
        )
    assert status == 0
    with open(os.path.join(workdir, "export", "report.json"), encoding="utf-8") as file:
        report = json.load(file)
    images = load_shapes_data(f"shapes:{IMAGE_SIZE}", num_train=NUM_TRAIN, num_validation=8, seed=5).validation_images
    return {
        "workdir": workdir,
        "report": report,
        "tokenizer": load_tokenizer(os.path.join(workdir, "tokenizer")),
        "images": images[3:8],
    }


@pytest.fixture(scope="module")
def runtimes(exported):
    return {name: load_runtime(exported["workdir"], name) for name in RUNTIMES}


@pytest.fixture(scope="module")
def keras_reference(exported):
    """Greedy and beam tokens of the Keras model through the training-time decoding path (not export code)."""
    model = keras.saving.load_model(os.path.join(exported["workdir"], "model.keras"), compile=False)
    info = exported["report"]["model"]
    images = exported["images"]
    batch = len(images)
    outputs = {}
    for strategy in ("greedy", "beam"):

        @tf.function(autograph=False)
        def run(image, strategy=strategy):
            cache = model.init_decoding_cache(image, MAX_LENGTH)
            return generate(
                model.decoding_step,
                cache,
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

        out = run(tf.constant(images.astype(np.float32) / 255.0))
        outputs[strategy] = {key: value.numpy() for key, value in out.items()}
    return outputs


def test_report_names_signatures_and_parity(exported):
    report = exported["report"]
    assert report["passed"], report["failures"]
    assert report["model"]["kind"] == "captioner" and report["model"]["image_shape"] == [IMAGE_SIZE, IMAGE_SIZE, 3]
    export_dir = os.path.join(exported["workdir"], "export")
    for name in (
        "captioner.tflite",
        "captioner.fp16.tflite",
        "captioner.onnx",
        "captioner.encode.onnx",
        "saved_model/captioner/1/saved_model.pb",
    ):
        assert os.path.isfile(os.path.join(export_dir, name)), name
    generate_inputs = {
        "image",
        "token_ids",
        "lengths",
        "max_new_tokens",
        "length_penalty",
        "repetition_penalty",
        "no_repeat_ngram_size",
        "stop_sequences",
        "banned_sequences",
    }
    for key in ("saved_model", "tflite", "tflite_fp16", "onnx"):
        signatures = report["artefacts"][key]["signatures"]
        assert set(signatures["generate"]["inputs"]) == generate_inputs, key
        assert set(signatures["encode"]["inputs"]) == {"image"}, key
        assert set(signatures["encode"]["outputs"]) == {"encoder_output", "cross_k_0", "cross_v_0"}, key
        assert set(signatures["decode"]["inputs"]) == {
            "token_ids",
            "positions",
            "past_k_0",
            "past_v_0",
            "cross_k_0",
            "cross_v_0",
        }, key
    held_out = load_shapes_data(f"shapes:{IMAGE_SIZE}", num_train=NUM_TRAIN, num_validation=3).validation_captions
    assert report["reference"]["prompts"] == list(held_out)  # parity images: the task's held-out images
    for key in ("saved_model", "tflite", "onnx"):
        parity = report["artefacts"][key]["parity"]
        assert parity["generate"]["beam"]["identical"] and parity["generate"]["greedy"]["identical"], key
    assert "validation_loss_change" in report["artefacts"]["tflite_fp16"]["parity"]


def test_greedy_and_beam_tokens_match_keras_in_every_runtime(runtimes, keras_reference, exported):
    for strategy in ("greedy", "beam"):
        want = keras_reference[strategy]
        assert len({tuple(row) for row in want["sequences"]}) > 1  # captions depend on the image
        for name, runtime in runtimes.items():
            sequences, lengths, scores = runtime.generate(
                None, None, MAX_LENGTH - 1, strategy=strategy, image=exported["images"]
            )  # uint8: scaled by the adapter
            np.testing.assert_array_equal(sequences, want["sequences"], err_msg=f"{name} {strategy}")
            np.testing.assert_array_equal(lengths, want["sequence_lengths"], err_msg=f"{name} {strategy}")
            np.testing.assert_allclose(scores, want["scores"], atol=1e-3, err_msg=f"{name} {strategy}")


def test_encode_prefill_decode_reproduce_greedy_generate(runtimes, keras_reference, exported):
    want = keras_reference["greedy"]
    batch = len(exported["images"])
    for name in ("tflite", "onnx"):
        runtime = runtimes[name]
        context = runtime.encode(image=exported["images"])
        assert context["cross_k_0"].shape == (batch, 2, (IMAGE_SIZE // PATCH_SIZE) ** 2, 16)
        tokens = np.full((batch, 1), runtime.start_id, np.int32)
        logits, cache = runtime.prefill(tokens, np.zeros((batch, 1), np.int32), runtime.init_cache(batch), context)
        produced = [tokens[:, 0]]
        for step in range(1, 5):
            logits = np.array(logits)
            logits[..., runtime.info["banned_ids"]] = -np.inf
            tokens = np.argmax(logits[:, -1], axis=-1).astype(np.int32)[:, None]
            produced.append(tokens[:, 0])
            logits, cache = runtime.decode(tokens, np.full((batch, 1), step, np.int32), cache, context)
        filled = np.arange(5)[None, :] < want["sequence_lengths"][:, None]
        assert filled.sum() > 10
        np.testing.assert_array_equal(
            np.where(filled, np.stack(produced, 1), 0), np.where(filled, want["sequences"][:, :5], 0), err_msg=name
        )


def test_serving_default_captions_images(runtimes, exported):
    runtime = runtimes["saved_model"]
    texts, scores = runtime.complete(exported["images"], max_new_tokens=MAX_LENGTH - 1)
    sequences, lengths, want_scores = runtime.generate(None, None, MAX_LENGTH - 1, image=exported["images"])
    tokenizer = exported["tokenizer"]
    assert texts == [tokenizer.decode(row[1:end]) for row, end in zip(sequences, lengths)]
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)


@pytest.mark.parametrize(
    "shape, message",
    [
        (
            (1, 32, 32, 3),
            r"image must have shape \(batch, 24, 24, 3\) \(height, width, channels\), got \(1, 32, 32, 3\)",
        ),
        ((1, 24, 24, 1), r"got \(1, 24, 24, 1\)"),
        ((24, 24, 3), "got one image of shape \\(24, 24, 3\\): add a batch axis"),
    ],
)
def test_images_of_the_wrong_size_or_channels_give_clear_errors(runtimes, shape, message):
    for runtime in runtimes.values():
        with pytest.raises(RuntimeInputError, match=message):
            runtime.generate(None, None, 4, image=np.zeros(shape, np.float32))
        with pytest.raises(RuntimeInputError, match=message):
            runtime.encode(image=np.zeros(shape, np.float32))
    with pytest.raises(RuntimeInputError, match="takes image, not source_ids"):
        runtimes["onnx"].generate(None, None, 4, source_ids=[[5]], source_lengths=[1])
    with pytest.raises(RuntimeInputError, match="float .* or uint8"):
        runtimes["onnx"].generate(None, None, 4, image=np.zeros((1, 24, 24, 3), np.int64))


@pytest.mark.parametrize("runtime", ("keras", "tflite"))
def test_generate_cli_captions_an_image_file(exported, runtimes, runtime, tmp_path, capsys):
    image = exported["images"][0]
    np.save(tmp_path / "image.npy", image)
    argv = [
        f"--workdir={exported['workdir']}",
        f"--image={tmp_path / 'image.npy'}",
        f"--runtime={runtime}",
        "--strategy=beam",
        f"--beam_size={BEAM_SIZE}",
        "--length_penalty=1.0",
        f"--max_new_tokens={MAX_LENGTH - 1}",
        "--no_jit_compile",
    ]
    assert generate_main(argv) == 0
    sequences, lengths, _ = runtimes["onnx"].generate(None, None, MAX_LENGTH - 1, image=image[None])
    assert capsys.readouterr().out == exported["tokenizer"].decode(sequences[0, 1 : lengths[0]]) + "\n"
    np.save(tmp_path / "small.npy", image[:16, :16])
    assert generate_main([*argv[:1], f"--image={tmp_path / 'small.npy'}", f"--runtime={runtime}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "16, 16, 3)" in err and err.count("\n") == 1
    assert generate_main([*argv[:1], "--prompt=a red", f"--runtime={runtime}"]) == 2
    assert capsys.readouterr().err == "error: this model is a captioner: pass --image=PATH.png|.npy\n"
