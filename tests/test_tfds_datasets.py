"""tfds:NAME[/CONFIG][:FIELD] specs read through tensorflow_datasets, with `tfds.testing.mock_data`."""

import os

import pytest
import tensorflow_datasets as tfds

from tfzoo.data.text_datasets import (
    DatasetError,
    load_text_splits,
    load_tfds_classification,
    load_tfds_translation,
)


def test_lm_text_field_joins_examples_of_each_split(tmp_path):
    with tfds.testing.mock_data(num_examples=4):
        splits = load_text_splits("tfds:tiny_shakespeare", data_dir=str(tmp_path))
        explicit = load_text_splits("tfds:tiny_shakespeare:text", data_dir=str(tmp_path))
    assert splits.name == "tfds:tiny_shakespeare"
    assert splits.train.count("\n\n") == 3 and splits.validation.count("\n\n") == 3  # 4 examples each
    assert splits.train == explicit.train and splits.train.strip()


def test_max_examples_and_unknown_field(tmp_path):
    with tfds.testing.mock_data(num_examples=6):
        splits = load_text_splits("tfds:tiny_shakespeare", data_dir=str(tmp_path), max_examples=2)
        assert splits.train.count("\n\n") == 1
        with pytest.raises(DatasetError, match="no field 'body'; fields: text"):
            load_text_splits("tfds:tiny_shakespeare:body", data_dir=str(tmp_path))


def test_translation_pairs_follow_the_config_languages(tmp_path):
    with tfds.testing.mock_data(num_examples=5):
        task = load_tfds_translation("tfds:wmt14_translate/de-en", data_dir=str(tmp_path))
    assert (task.source_language, task.target_language) == ("de", "en")
    assert len(task.train_sources) == len(task.train_targets) == 5
    assert len(task.validation_sources) == 5
    assert all(isinstance(s, str) and s for s in task.train_sources + task.validation_targets)
    assert task.train_sources != task.train_targets  # two different fields, not one read twice


def test_classification_texts_and_labels(tmp_path):
    with tfds.testing.mock_data(num_examples=8):
        task = load_tfds_classification("tfds:imdb_reviews", data_dir=str(tmp_path))
    assert task.label_names == ("neg", "pos")
    assert len(task.train_texts) == len(task.train_labels) == 8
    assert set(task.train_labels + task.validation_labels) <= {0, 1}


def test_unprepared_data_is_a_clear_error_and_nothing_is_downloaded(tmp_path):
    with pytest.raises(
        DatasetError, match=r"tfds:imdb_reviews: split 'train' is not prepared in .*nothing is downloaded"
    ):
        load_text_splits("tfds:imdb_reviews", data_dir=str(tmp_path))
    assert not any(files for _, _, files in os.walk(tmp_path))  # nothing fetched or written


def test_unknown_dataset_and_bad_translation_spec(tmp_path):
    with pytest.raises(DatasetError, match="tfds:no_such_dataset_xyz: unknown tfds dataset"):
        load_text_splits("tfds:no_such_dataset_xyz", data_dir=str(tmp_path))
    with pytest.raises(DatasetError, match="name the languages"):
        load_tfds_translation("tfds:imdb_reviews", data_dir=str(tmp_path))
    with pytest.raises(DatasetError, match="expected a tfds:"):
        load_tfds_classification("imdb_reviews")
