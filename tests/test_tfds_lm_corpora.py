"""Language-modelling corpora through the real tfds loading code, with `tfds.testing.mock_data`."""

from __future__ import annotations

import ml_collections
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tfzoo.data.errors import DatasetError
from tfzoo.data.text_datasets import load_text_splits

WIKI40B_TEXT = (
    "\n_START_ARTICLE_\nRed fox\n_START_SECTION_\nRange\n_START_PARAGRAPH_\nFoxes live here._NEWLINE_And there."
)


@pytest.mark.parametrize("spec", ["tfds:tiny_shakespeare", "tfds:lm1b", "tfds:wiki40b/en"])
def test_corpus_loads_both_splits(tmp_path, spec):
    with tfds.testing.mock_data(num_examples=3, data_dir=str(tmp_path)):
        splits = load_text_splits(spec, data_dir=str(tmp_path))
    assert splits.name == spec
    assert splits.train.count("\n\n") == 2 and splits.validation.count("\n\n") == 2  # 3 examples joined per split
    assert splits.train.strip() and "_START_" not in splits.train


def test_wiki40b_markers_become_plain_text(tmp_path):
    def as_dataset(self, split, **kwargs):
        del kwargs
        texts = [WIKI40B_TEXT, f"{WIKI40B_TEXT} ({split})"]
        return tf.data.Dataset.from_tensor_slices(
            {"text": texts, "wikidata_id": ["Q1", "Q2"], "version_id": ["1", "2"]}
        )

    with tfds.testing.mock_data(as_dataset_fn=as_dataset, data_dir=str(tmp_path)):
        splits = load_text_splits("tfds:wiki40b/en", data_dir=str(tmp_path))
        raw = load_text_splits("tfds:wiki40b/en:wikidata_id", data_dir=str(tmp_path))
    clean = "Red fox\nRange\nFoxes live here.\nAnd there."
    assert splits.train == f"{clean}\n\n{clean} (train)"
    assert splits.validation == f"{clean}\n\n{clean} (validation)"  # wiki40b has a validation split
    assert raw.train == "Q1\n\nQ2"  # other fields are read as they are


def test_lm1b_validates_on_its_test_split(tmp_path, monkeypatch):
    # lm1b has no validation split; mock builders declare no splits, so declare lm1b's two.
    declared = tfds.core.SplitDict(
        [tfds.core.SplitInfo(name=name, shard_lengths=[1], num_bytes=0) for name in ("train", "test")]
    )
    monkeypatch.setattr(tfds.core.DatasetInfo, "splits", property(lambda self: declared))
    seen = []

    def as_dataset(self, split, **kwargs):
        del kwargs
        seen.append(split)
        return tf.data.Dataset.from_tensor_slices({"text": [f"a sentence of {split}"]})

    with tfds.testing.mock_data(as_dataset_fn=as_dataset, data_dir=str(tmp_path)):
        splits = load_text_splits("tfds:lm1b", data_dir=str(tmp_path))
    assert seen == ["train", "test"]
    assert (splits.train, splits.validation) == ("a sentence of train", "a sentence of test")


def test_data_dir_is_where_prepared_data_is_looked_for(tmp_path):
    where = tmp_path / "my_tfds"
    with pytest.raises(DatasetError, match=rf"tfds:lm1b: split 'train' is not prepared in {where} "):
        load_text_splits("tfds:lm1b", data_dir=str(where))


def test_language_model_task_reads_a_tfds_corpus(tmp_path):
    from tfzoo.training.tasks import make_task

    config = ml_collections.ConfigDict(
        dict(
            dataset="tfds:tiny_shakespeare",
            data_dir=str(tmp_path),
            max_examples=0,
            tokenizer="byte",
            seq_len=8,
            batch_size=2,
            eval_steps=1,
            seed=0,
        )
    )
    with tfds.testing.mock_data(num_examples=4, data_dir=str(tmp_path)):
        task = make_task("lm", config)
    inputs, labels = next(iter(task.train_dataset(start_step=0)))
    assert inputs.shape == (2, 8) and bool(tf.reduce_all(inputs[:, 1:] == labels[:, :-1]))
