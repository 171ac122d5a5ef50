"""`train_and_evaluate` on the seq2seq and classification tasks: embedded (CLI) and tfds (mocked).

Tiny configs (configs/transformer_tiny.py, configs/bert_tiny.py), a few steps
each: the records must carry the decoded metrics with sane values, and the
saved model and tokenizer must reload and agree with the trained one.
"""

import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

from tfzoo.data.tokenizers import load_tokenizer
from tfzoo.training.seq2seq_tasks import Seq2SeqTask
from tfzoo.training.text_tasks import ClassificationTask
from tfzoo.training.train_lib import train_and_evaluate
from tfzoo.training.validate import resolve_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(name: str, **overrides):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "configs", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.update(overrides)
    return config


def read_metrics(workdir):
    with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_translation_cli_writes_exact_match_and_bleu(tmp_path):
    workdir = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, "-m", "tfzoo.train", "--config=configs/transformer_tiny.py", f"--workdir={workdir}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "done: step 6" in result.stdout and "exact_match" in result.stdout and "bleu" in result.stdout
    assert "ninety-nine -> " in result.stdout
    records = read_metrics(workdir)
    assert [r["step"] for r in records] == [3, 6]
    for record in records:
        assert 0.0 <= record["exact_match"] <= 1.0 and 0.0 <= record["bleu"] <= 100.0
        assert record["decoded_examples"] == 16
        assert math.isfinite(record["val_loss"]) and record["val_loss"] > 0
    assert json.loads((workdir / "config.json").read_text())["model"] == "transformer"
    model = keras.saving.load_model(workdir / "model.keras")
    assert type(model).__name__ == "Transformer" and model.max_sequence_length == 64
    assert load_tokenizer(workdir / "tokenizer").vocabulary_size == model.vocabulary_size


def test_classification_reports_accuracy_of_the_saved_model(tmp_path):
    summary = train_and_evaluate(load_config("bert_tiny"), str(tmp_path))
    records = read_metrics(tmp_path)
    assert [r["step"] for r in records] == [3, 6] and summary["step"] == 6
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in records)
    assert summary["metrics"]["accuracy"] == records[-1]["accuracy"]
    assert summary["samples"][0].endswith(("-> negative", "-> positive"))
    # The reported accuracy is the saved model's argmax on the 1000 held-out reviews.
    config = resolve_config(load_config("bert_tiny"))
    task = ClassificationTask(config)
    model = keras.saving.load_model(tmp_path / "model.keras")
    token_ids, labels = task.validation
    assert len(labels) == 1000
    assert float(np.mean(task.predict(model, token_ids) == labels)) == pytest.approx(records[-1]["accuracy"])


def test_train_examples_caps_the_classification_training_split_only():
    full = ClassificationTask(resolve_config(load_config("bert_tiny", sample_prompts=())))
    capped = ClassificationTask(resolve_config(load_config("bert_tiny", sample_prompts=(), train_examples=32)))
    assert len(full.train[1]) > 32 and len(capped.train[1]) == 32
    assert np.array_equal(capped.train[1], full.train[1][:32])  # the first 32 labelled reviews
    assert len(capped.validation[1]) == len(full.validation[1]) == 1000  # validation: all held-out reviews
    with pytest.raises(ValueError, match="train_examples must be an integer >= 0"):
        resolve_config(load_config("bert_tiny", train_examples=-1))


def test_seq2seq_batches_shift_targets_and_pad_labels():
    config = resolve_config(load_config("transformer_tiny"))
    task = Seq2SeqTask(config)
    inputs, labels = next(iter(task.train_dataset(start_step=0)))
    source, target, labels = inputs["source_ids"].numpy(), inputs["target_ids"].numpy(), labels.numpy()
    assert source.shape == target.shape == labels.shape == (8, 64)
    assert np.all(target[:, 0] == task.start_id)
    pad, eos = task.tokenizer.pad_id, task.tokenizer.eos_id
    for t, y in zip(target, labels):
        n = int(np.sum(y != pad))  # target tokens + <eos>
        assert y[n - 1] == eos and np.all(t[1:n] == y[: n - 1]) and np.all(y[n:] == pad)
    again, _ = next(iter(task.train_dataset(start_step=0)))
    later, _ = next(iter(task.train_dataset(start_step=1)))
    assert np.array_equal(again["source_ids"], source) and not np.array_equal(later["source_ids"], source)
    # Metric arithmetic (config.eval_decode_examples = 16): a perfect translator, then one wrong row.
    references = task.validation_references[:16]
    task.translate = lambda model, ids: list(references[: len(ids)])
    assert task.evaluate(None) == {"exact_match": 1.0, "bleu": pytest.approx(100.0), "decoded_examples": 16}
    task.translate = lambda model, ids: ["un"] + list(references[1 : len(ids)])
    metrics = task.evaluate(None)
    assert metrics["exact_match"] == 15 / 16 and 50.0 < metrics["bleu"] < 100.0


def test_tfds_datasets_feed_the_seq2seq_and_classification_tasks(tmp_path):
    with tfds.testing.mock_data(num_examples=16):
        translation = Seq2SeqTask(
            resolve_config(
                load_config(
                    "transformer_tiny", dataset="tfds:wmt14_translate/de-en", data_dir=str(tmp_path), sample_prompts=()
                )
            )
        )
        classification = ClassificationTask(
            resolve_config(
                load_config("bert_tiny", dataset="tfds:imdb_reviews", data_dir=str(tmp_path), sample_prompts=())
            )
        )

    assert len(translation.validation_references) + (16 - len(translation.validation["index"])) == 16
    inputs, labels = next(iter(translation.train_dataset(start_step=0)))
    assert inputs["source_ids"].shape == labels.shape == (8, 64)
    assert classification.model_options() == {"num_classes": 2} and classification.label_names == ("neg", "pos")
    token_ids, labels = next(iter(classification.eval_dataset()))
    assert token_ids.shape == (8, 48) and set(labels.numpy()) <= {0, 1}
    assert np.all(token_ids.numpy()[:, 0] == classification.cls_id)


def test_task_mismatches_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="translation spec must look like"):
        train_and_evaluate(load_config("transformer_tiny", dataset="reviews"), str(tmp_path / "a"))
    with pytest.raises(ValueError, match="unknown classification task 'numbers:en-fr'"):
        train_and_evaluate(load_config("bert_tiny", dataset="numbers:en-fr"), str(tmp_path / "b"))
    with pytest.raises(ValueError, match="unknown position 'learned'"):
        train_and_evaluate(load_config("transformer_tiny", position="learned"), str(tmp_path / "c"))
    with pytest.raises(ValueError, match="no train pair fits seq_len 2"):
        train_and_evaluate(load_config("transformer_tiny", seq_len=2), str(tmp_path / "d"))
    with pytest.raises(ValueError, match="sample prompt 'ninety-nine' has 11 tokens; the model takes 1 to seq_len"):
        train_and_evaluate(load_config("transformer_tiny", seq_len=10), str(tmp_path / "e"))
    assert not os.listdir(tmp_path)  # nothing written for bad input
