"""Fine-tuning a converted T5 with `configs/t5_finetune.py` and `--config.init_from` on the embedded translation task.

Tiny random Hugging Face T5 folders (tests/t5_reference.py: the original T5 and T5 v1.1) are converted with
`tfzoo.convert t5`. A run of the config, with the converted architecture's sizes, lowers the held-out loss in a few
steps with the weights still those it started from (a correlation above 0.8 with the converted ones), encodes
targets as T5 does (decoder start 0, one `</s>` in the labels), and the tuned workdir still
generates with `python -m tfzoo.generate`. A field that contradicts the converted model is one line naming it and
the flag to pass.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from gpt2_reference import run_cli
from t5_reference import t5_checkpoint
from tfzoo.convert_t5 import convert_t5
from tfzoo.run_folder import RunFolder

pytestmark = pytest.mark.reference

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = ("num_layers", "num_heads", "hidden_dim", "intermediate_dim", "head_dim", "max_sequence_length")


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> dict:
    """The original T5 and T5 v1.1, converted: name -> workdir."""
    result = {}
    for name, v1_1 in (("t5", False), ("t5_v1_1", True)):
        source = str(tmp_path_factory.mktemp(f"{name}_source"))
        t5_checkpoint(source, v1_1=v1_1)
        result[name] = str(tmp_path_factory.mktemp("out") / name)
        convert_t5(source, result[name], max_sequence_length=64)
    return result


def _config(workdir: str, **changes):
    """configs/t5_finetune.py with the converted workdir's sizes and head options, a few fast steps."""
    from tfzoo.config_files import load_config_file

    config = load_config_file(os.path.join(REPO, "configs", "t5_finetune.py"))
    with open(os.path.join(workdir, "config.json"), encoding="utf-8") as file:
        converted = json.load(file)
    config.update({field: converted[field] for field in SIZES})
    config.update(
        tokenizer=f"file:{workdir}/tokenizer",
        init_from=workdir,
        seq_len=64,
        batch_size=16,
        train_steps=30,
        eval_every=30,
        eval_steps=2,
        eval_decode_examples=4,
        learning_rate=3e-3,
        warmup_steps=5,
        dropout=0.0,
        jit_compile=False,
        sample_prompts=(),
    )
    config.update(changes)
    return config


def _task(config):
    from tfzoo.models.registry import TASK_KINDS
    from tfzoo.training.tasks import make_task
    from tfzoo.training.validate import resolve_config

    config = resolve_config(config)
    return config, make_task(TASK_KINDS[config.model], config)


def _loss(model, task, split: str) -> float:
    """The loss of `model` on the first batch of `split` ("train" from step 0, or "validation")."""
    from tfzoo.training.losses import MaskedSparseCrossEntropy

    dataset = task.train_dataset(start_step=0) if split == "train" else task.eval_dataset()
    inputs, labels = next(iter(dataset))
    return float(MaskedSparseCrossEntropy(pad_id=task.label_pad_id)(labels, model(inputs, training=False)))


def test_targets_are_encoded_as_t5_does(converted):
    config, task = _task(_config(converted["t5"]))
    tokenizer = task.tokenizer
    assert task.start_id == 0 == tokenizer.pad_id and tokenizer.append_eos
    lengths = (task.train["labels"] != 0).sum(1)
    rows = range(len(lengths))
    assert all(task.train["labels"][i, lengths[i] - 1] == tokenizer.eos_id for i in rows)  # y </s>
    assert not (task.train["labels"][:, :-1] == tokenizer.eos_id)[task.train["labels"][:, 1:] == tokenizer.eos_id].any()
    assert (task.train["target_ids"][:, 0] == 0).all()  # <pad> y: the labels shifted right
    shifted = task.train["labels"][:, :-1]  # transformers' shift_right, but for the </s> (it predicts only padding)
    np.testing.assert_array_equal(task.train["target_ids"][:, 1:], np.where(shifted == tokenizer.eos_id, 0, shifted))
    sources = task.train["source_ids"]
    assert all(sources[i, (sources[i] != 0).sum() - 1] == tokenizer.eos_id for i in range(8))  # x </s>


def test_fine_tuning_starts_from_the_converted_t5_lowers_the_loss_and_generates(converted, tmp_path):
    from tfzoo.generate import main as generate_main
    from tfzoo.training.train_lib import train_and_evaluate

    workdir = converted["t5"]
    config, task = _task(_config(workdir))
    source = RunFolder(workdir).load_model()
    before = _loss(source, task, "validation")
    run = tmp_path / "run"
    train_and_evaluate(_config(workdir), str(run))
    records = [json.loads(line) for line in open(run / "metrics.jsonl", encoding="utf-8")]
    tuned = RunFolder(str(run)).load_model()
    after = _loss(tuned, task, "validation")
    assert after < before - 0.3, (before, after)  # measured: 4.48 -> 4.00 in 30 steps
    assert records[-1]["step"] == 30 and records[-1]["val_loss"] < before
    # It started from the converted weights: after 30 small steps they are still nearly the same vectors
    # (a fresh initialization would be uncorrelated with them).
    for mine, theirs in zip(tuned.weights, source.weights, strict=True):
        correlation = np.corrcoef(np.ravel(mine.numpy()), np.ravel(theirs.numpy()))[0, 1]
        assert correlation > 0.8, (mine.path, correlation)
    arguments = tuned.get_config()
    for field in ("norm", "scale_queries", "scale_embeddings", "scale_decoder_output", "decoder_start_id", "head_dim"):
        assert arguments[field] == source.get_config()[field], field
    code, out, err = run_cli(generate_main, [f"--workdir={run}", "--prompt=ninety-nine", "--max_new_tokens=8"])
    assert code == 0 and out.strip(), err


def test_t5_v1_1_options_load_into_the_config_model(converted):
    """Gated GELU, untied head, no rescale: the config's model takes the converted weights, same logits."""
    from tfzoo.models.registry import build_model
    from tfzoo.training.init_from import load_initial_weights

    workdir = converted["t5_v1_1"]
    changes = dict(activation="geglu_tanh", tie_embeddings=False, scale_decoder_output=False)
    config, task = _task(_config(workdir, **changes))
    model = build_model(config, task.tokenizer.vocabulary_size)
    load_initial_weights(model, workdir)
    inputs, _ = next(iter(task.eval_dataset()))
    source = RunFolder(workdir).load_model()
    np.testing.assert_allclose(model(inputs), source(inputs), atol=1e-5)


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"activation": "geglu_tanh"}, "has activation='relu' but the run config gives 'geglu_tanh'"),
        (
            {"decoder_start_id": -1},
            "has decoder_start_id=0 but the run config gives None (pass --config.decoder_start_id=0)",
        ),
        ({"norm": "layer"}, "has norm='rms' but the run config gives 'layer' (pass --config.norm=rms)"),
        ({"scale_queries": True}, "(pass --config.scale_queries=False)"),
        ({"head_dim": 0, "num_heads": 2}, "has num_heads=4 but the run config gives 2"),
    ],
)
def test_a_field_that_contradicts_the_converted_model_is_one_line(converted, changes, message):
    from tfzoo.models.registry import build_model
    from tfzoo.training.init_from import InitFromError, check_compatible

    workdir = converted["t5"]
    config, task = _task(_config(workdir, **changes))
    with pytest.raises(InitFromError) as error:
        check_compatible(build_model(config, task.tokenizer.vocabulary_size), workdir)
    assert message in str(error.value) and "\n" not in str(error.value)
    config, task = _task(_config(workdir, head_dim=0))  # 0: hidden_dim // num_heads, which is the converted 8
    check_compatible(build_model(config, task.tokenizer.vocabulary_size), workdir)
