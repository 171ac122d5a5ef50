"""Mixed precision: `mixed_precision=bfloat16` and `float16` (with loss scaling) train, resume and save float32 models.

Layers compute in the policy's dtype while variables, logits and the loss
stay float32; the policy is a training setting only, so `model.keras` is
saved in float32 for export and generation.
"""

import importlib.util
import os

import keras
import numpy as np
import pytest

from distributed_checks import REPO, write_toy_text
from tfzoo.models.registry import build_model
from tfzoo.training.losses import MaskedSparseCrossEntropy
from tfzoo.training.train_lib import train_and_evaluate


def _gpt_tiny():
    spec = importlib.util.spec_from_file_location("gpt_tiny", os.path.join(REPO, "configs", "gpt_tiny.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


@pytest.mark.parametrize("position", ["learned", "sinusoidal", "relative", "rotary", "alibi"])
def test_gpt_layers_follow_the_policy(position):
    config = _gpt_tiny()
    config.position = position
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_model(config, vocabulary_size=40)
    finally:
        keras.config.set_dtype_policy("float32")
    assert {layer.compute_dtype for layer in model._flatten_layers()} == {"bfloat16"}
    assert {v.dtype for v in model.variables} == {"float32"}
    logits = model(np.zeros((2, 8), "int32"))
    assert logits.dtype == "float32"  # the output projection casts back before the loss
    loss = MaskedSparseCrossEntropy(pad_id=0)(np.ones((2, 8), "int32"), keras.ops.cast(logits, "bfloat16"))
    assert loss.dtype == "float32"  # and the loss would recast bfloat16 logits itself


def _config(text, mixed_precision, train_steps=20):
    config = _gpt_tiny()
    config.dataset = f"text:{text}"
    config.mixed_precision = mixed_precision
    config.train_steps, config.eval_every, config.eval_steps = train_steps, 10, 2
    config.sample_length = 0
    return config


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    return write_toy_text(tmp_path_factory.mktemp("mixed") / "toy.txt")


def test_bfloat16_trains_like_float32(tmp_path, text):
    full = train_and_evaluate(_config(text, "none"), str(tmp_path / "float32"))
    mixed = train_and_evaluate(_config(text, "bfloat16"), str(tmp_path / "bfloat16"))
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    assert mixed["step"] == 20 and np.isfinite(mixed["val_loss"])
    assert mixed["val_loss"] == pytest.approx(full["val_loss"], rel=0.05)  # bfloat16 keeps 8 bits of mantissa
    assert mixed["val_loss"] != full["val_loss"]  # it did compute in bfloat16
    model = keras.saving.load_model(os.path.join(tmp_path, "bfloat16", "model.keras"))
    assert {layer.compute_dtype for layer in model._flatten_layers()} == {"float32"}  # saved for inference


def test_float16_uses_loss_scaling_and_resumes(tmp_path, text):
    workdir = str(tmp_path / "float16")
    result = train_and_evaluate(_config(text, "float16"), workdir)
    assert result["step"] == 20 and np.isfinite(result["val_loss"])
    reference = result["val_loss"]
    # Back to the state a kill right after the step-10 checkpoint leaves; the re-run resumes there.
    os.remove(os.path.join(workdir, "checkpoints", "ckpt-00000020.npz"))
    resumed = train_and_evaluate(_config(text, "float16"), workdir)
    assert resumed["resumed_from"] == 10 and resumed["step"] == 20
    assert resumed["val_loss"] == pytest.approx(reference, rel=0.01)
    # The loss-scale state is part of the checkpoint (it must survive a resume).
    with np.load(os.path.join(workdir, "checkpoints", "ckpt-00000020.npz")) as data:
        assert "loss_scale_optimizer" in str(data["manifest"])
