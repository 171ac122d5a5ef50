"""End to end: `python -m tfzoo.train` on a small text file, resume, reload.

One CLI run (4 evaluations) is shared by the tests of this file; the resume
test copies its workdir back to the state a kill right after the step-20
checkpoint would leave, and checks the re-run ends exactly where the
uninterrupted run did.
"""

import json
import os
import shutil

import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from tfzoo.data.tokenizers import load_tokenizer
from tfzoo.models.registry import build_model
from tfzoo.training.checkpoints import Checkpointer
from tfzoo.training.optimizer import make_optimizer
from tfzoo.training.schedule import WarmupCosineDecay
from train_helpers import printed_evaluations, read_metrics, run_cli, write_toy_text

METRIC_KEYS = {"step", "train_loss", "val_loss", "tokens_per_sec", "wall_time", "learning_rate"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    text = write_toy_text(root / "toy.txt")
    workdir = str(root / "workdir")
    args = [
        "--config=configs/gpt_tiny.py",
        f"--workdir={workdir}",
        f"--config.dataset=text:{text}",
        "--config.train_steps=40",
        "--config.eval_every=10",
        "--config.eval_steps=2",
        "--config.sample_prompts=('def ',)",
        "--config.sample_length=8",
    ]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(args=args, workdir=workdir, root=root, stdout=result.stdout)


def test_writes_every_workdir_file_of_the_contract(run):
    workdir = run["workdir"]
    assert {"config.json", "metrics.jsonl", "checkpoints", "model.keras", "tokenizer", "tb"} <= set(os.listdir(workdir))
    with open(os.path.join(workdir, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    assert config["train_steps"] == 40 and config["seq_len"] == 32 and config["dataset"].startswith("text:")
    assert config["early_stopping_patience"] == 0  # resolved: optional fields filled in
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == [
        "ckpt-00000020.npz",
        "ckpt-00000030.npz",
        "ckpt-00000040.npz",
    ]
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(os.path.join(workdir, "tb")))
    assert load_tokenizer(os.path.join(workdir, "tokenizer")).vocabulary_size == config_vocabulary(run)
    assert not [name for name in os.listdir(workdir) if ".tmp" in name]
    sample = run["stdout"].split("--- sample ---\n", 1)[1]
    assert sample.startswith("def ") and len(sample.split("\ndone:")[0]) > len("def ")
    assert "done: step 40" in run["stdout"]


def config_vocabulary(run) -> int:
    with open(os.path.join(run["root"], "toy.txt"), encoding="utf-8") as f:
        text = f.read()
    return len(set(text[: int(len(text) * 0.9)])) + 3  # characters of the train split + <pad>, <eos>, <unk>


def test_metrics_jsonl(run):
    records = read_metrics(run["workdir"])
    assert [r["step"] for r in records] == [10, 20, 30, 40]
    schedule = WarmupCosineDecay(3e-3, warmup_steps=5, decay_steps=40, min_learning_rate=3e-4)
    for record in records:
        assert METRIC_KEYS <= set(record)
        assert all(np.isfinite(record[k]) and record[k] > 0 for k in METRIC_KEYS - {"step"})
        assert record["learning_rate"] == pytest.approx(float(schedule(record["step"])), rel=1e-5)
    val = [r["val_loss"] for r in records]
    assert val[-1] < val[0] - 0.2, val
    assert records[0]["train_loss"] > val[-1]
    assert records[-1]["wall_time"] >= records[0]["wall_time"]


def _restored_model(workdir):
    """The model of config.json with the newest checkpoint loaded into it."""
    with open(os.path.join(workdir, "config.json"), encoding="utf-8") as f:
        config = ml_collections.ConfigDict(json.load(f))
    vocabulary_size = load_tokenizer(os.path.join(workdir, "tokenizer")).vocabulary_size
    model = build_model(config, vocabulary_size)
    optimizer = make_optimizer(config, model)
    optimizer.build(model.trainable_variables)
    step = Checkpointer(os.path.join(workdir, "checkpoints"), model, optimizer).restore()
    return model, step


def test_tensorboard_scalars(run):
    tb = os.path.join(run["workdir"], "tb")
    seen = {}
    for name in os.listdir(tb):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(tb, name)):
            for value in event.summary.value:
                assert value.metadata.plugin_data.plugin_name == "scalars"
                seen.setdefault(value.tag, []).append(event.step)
    for tag in ("train_loss", "val_loss", "tokens_per_sec", "learning_rate"):
        assert sorted(seen[tag]) == [10, 20, 30, 40], (tag, seen)


def test_model_keras_reloads_safely_with_the_trained_weights(run):
    workdir = run["workdir"]
    reloaded = keras.saving.load_model(os.path.join(workdir, "model.keras"), safe_mode=True)
    restored, step = _restored_model(workdir)
    assert step == 40
    tokens = np.random.default_rng(0).integers(1, reloaded.vocabulary_size, size=(2, 32)).astype("int32")
    expected = keras.ops.convert_to_numpy(restored(tokens))
    actual = keras.ops.convert_to_numpy(reloaded(tokens))
    assert actual.shape == (2, 32, reloaded.vocabulary_size)
    np.testing.assert_array_equal(actual, expected)


def test_rerun_of_a_finished_run_trains_no_more(run):
    workdir = run["workdir"]
    before = read_metrics(workdir)
    checkpoint_times = {
        name: os.path.getmtime(os.path.join(workdir, "checkpoints", name))
        for name in os.listdir(os.path.join(workdir, "checkpoints"))
    }
    result = run_cli(*run["args"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert printed_evaluations(result.stdout) == []
    assert "done: step 40" in result.stdout
    assert read_metrics(workdir) == before
    assert {
        name: os.path.getmtime(os.path.join(workdir, "checkpoints", name))
        for name in os.listdir(os.path.join(workdir, "checkpoints"))
    } == checkpoint_times


def test_interrupted_run_resumes_to_the_uninterrupted_result(run):
    workdir = str(run["root"] / "interrupted")
    shutil.copytree(run["workdir"], workdir)
    for step in (30, 40):  # a kill right after the step-20 checkpoint (metrics.jsonl was ahead)
        os.remove(os.path.join(workdir, "checkpoints", f"ckpt-000000{step}.npz"))
    os.remove(os.path.join(workdir, "model.keras"))
    args = [a if not a.startswith("--workdir=") else f"--workdir={workdir}" for a in run["args"]]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert printed_evaluations(result.stdout) == [30, 40]  # in global steps; steps 10 and 20 not retrained
    resumed, uninterrupted = read_metrics(workdir), read_metrics(run["workdir"])
    assert [r["step"] for r in resumed] == [10, 20, 30, 40]
    assert resumed[:2] == uninterrupted[:2]  # kept as they were
    for a, b in zip(resumed[2:], uninterrupted[2:]):
        assert a["wall_time"] > b["wall_time"]  # really recomputed
        assert a["learning_rate"] == pytest.approx(b["learning_rate"], rel=1e-6)
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5, abs=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5, abs=1e-5)


def test_early_stopped_run_is_not_resumed(run):
    workdir = str(run["root"] / "early_stopped")
    shutil.copytree(run["workdir"], workdir)
    records = read_metrics(workdir)
    for record in records[2:]:  # steps 30 and 40 did not beat step 20
        record["val_loss"] = records[1]["val_loss"] + 0.5
    with open(os.path.join(workdir, "metrics.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    args = [a if not a.startswith("--workdir=") else f"--workdir={workdir}" for a in run["args"]]
    args = [a for a in args if not a.startswith("--config.train_steps=")]
    result = run_cli(*args, "--config.train_steps=60", "--config.early_stopping_patience=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert printed_evaluations(result.stdout) == [] and "nothing to train (early stopping)" in result.stderr
    assert read_metrics(workdir) == records
