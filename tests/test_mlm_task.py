"""The `masked_lm` task: BertMaskedLM pre-training on reviews (or lines of text) with WordPiece masks.

Batches must follow BERT's masking (labels are the original ids at the
masked positions, fresh masks per step, special tokens never masked); a few
training steps must lower the masked-token loss; a short run must write
`masked_accuracy` and a reloadable model.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfzoo.config_files import load_config_file
from tfzoo.models.bert import BertMaskedLM
from tfzoo.models.registry import TASK_KINDS, build_model
from tfzoo.training.text_tasks import MaskedLMTask
from tfzoo.training.train_lib import train_and_evaluate
from tfzoo.training.validate import resolve_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(
    vocabulary_size=120,
    seq_len=16,
    num_layers=1,
    num_heads=2,
    hidden_dim=32,
    intermediate_dim=64,
    batch_size=16,
    train_steps=4,
    eval_every=2,
    eval_steps=1,
    warmup_steps=1,
    dropout=0.0,
    eval_decode_examples=64,
    jit_compile=False,
)


def tiny_config(**overrides):
    config = load_config_file(os.path.join(REPO, "configs", "bert_mlm.py"))
    config.update({**TINY, **overrides})
    return config


@pytest.fixture(scope="module")
def task():
    return MaskedLMTask(resolve_config(tiny_config()))


def test_batches_mask_real_tokens_and_label_the_originals(task):
    assert TASK_KINDS["bert_mlm"] == "masked_lm"
    specials = set(task.tokenizer.special_tokens.values())
    mask_id = task.tokenizer.special_tokens["<mask>"]
    inputs, labels = next(iter(task.train_dataset(start_step=0)))
    token_ids, positions, labels = (x.numpy() for x in (inputs["token_ids"], inputs["mask_positions"], labels))
    assert token_ids.shape == (16, 16) and positions.shape == labels.shape == (16, 5)
    used = labels != 0
    assert used.sum(axis=1).min() >= 1 and np.all(used[:, 0])  # at least one masked token per row
    assert not set(labels[used]) & specials  # only real tokens are chosen
    assert np.all(token_ids[:, 0] == task.tokenizer.special_tokens["<cls>"])  # <cls> is never masked
    corrupted = np.take_along_axis(token_ids, positions, axis=1)[used]
    assert np.mean(corrupted == mask_id) > 0.5  # 80% become <mask> (the rest random or kept)
    # The unmasked rows hold the labels back at the masked positions.
    restored = token_ids.copy()
    np.put_along_axis(restored, np.where(used, positions, 0), np.where(used, labels, token_ids[:, :1]), axis=1)
    assert mask_id not in restored[:, 1:][restored[:, 1:] != 0]
    # Fresh masks per step, the same masks for the same step (resumable).
    again, _ = next(iter(task.train_dataset(start_step=0)))
    later, _ = next(iter(task.train_dataset(start_step=1)))
    assert np.array_equal(again["mask_positions"], positions)
    assert not np.array_equal(later["mask_positions"], positions)


def test_a_few_training_steps_lower_the_masked_lm_loss(task):
    config = resolve_config(tiny_config(learning_rate=3e-3))
    keras.utils.set_random_seed(0)
    model = build_model(config, task.tokenizer.vocabulary_size)
    assert isinstance(model, BertMaskedLM)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    inputs, labels = next(iter(task.eval_dataset()))  # one fixed held-out batch: the loss must fall on it
    before = model.evaluate(inputs, labels, verbose=0)
    model.fit(tf.data.Dataset.from_tensors((inputs, labels)).repeat(25), epochs=1, verbose=0)
    after = model.evaluate(inputs, labels, verbose=0)
    assert before > np.log(task.tokenizer.vocabulary_size) * 0.8  # starts near uniform guessing
    assert after < 0.7 * before


def test_short_run_reports_masked_accuracy(tmp_path):
    summary = train_and_evaluate(tiny_config(), str(tmp_path))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4] and summary["step"] == 4
    for record in records:
        assert 0.0 <= record["masked_accuracy"] <= 1.0 and record["masked_tokens"] >= 64
        assert np.isfinite(record["val_loss"]) and record["val_loss"] > 0
    assert len(summary["samples"]) == 3 and all("→" in s for s in summary["samples"])
    model = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(model, BertMaskedLM)


def test_text_specs_give_one_row_per_line(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("".join(f"line {i} says hello to the world\n\n" for i in range(200)))
    task = MaskedLMTask(resolve_config(tiny_config(dataset=f"text:{path}", vocabulary_size=60)))
    assert 200 <= len(task.train) + len(task.validation[0]) <= 201  # the 90% cut may split a line
    assert task.tokenizer.decode(task.train[0]) == "line 0 says hello to the world"


def test_a_tokenizer_without_mask_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="tokenizer 'char' has no <mask> token"):
        train_and_evaluate(tiny_config(tokenizer="char"), str(tmp_path / "run"))
    assert not os.path.exists(tmp_path / "run")
