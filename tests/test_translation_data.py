"""The embedded number-translation task: deterministic pairs, a held-out split by number, clear errors."""

import pytest
from num2words import num2words

from tfzoo.data.errors import DatasetError
from tfzoo.data.translation_data import DEFAULT_MAX_NUMBER, is_validation_number, load_translation_data


@pytest.fixture(scope="module")
def task():
    return load_translation_data()


def test_default_task_covers_every_number_once_split_by_number(task):
    assert task.name == "numbers:en-fr" and (task.source_language, task.target_language) == ("en", "fr")
    train, validation = set(task.train_numbers), set(task.validation_numbers)
    assert not train & validation
    assert train | validation == set(range(DEFAULT_MAX_NUMBER + 1))
    assert 0.08 < len(validation) / (DEFAULT_MAX_NUMBER + 1) < 0.12
    assert all(is_validation_number(n) for n in validation) and not any(is_validation_number(n) for n in train)
    assert len(task.train_sources) == len(task.train_targets) == len(train)
    assert len(task.validation_sources) == len(task.validation_targets) == len(validation)
    # Validation sentences never appear among the training ones.
    assert not set(task.validation_sources) & set(task.train_sources)


def test_pairs_are_the_number_in_both_languages(task):
    for numbers, sources, targets in (
        (task.train_numbers, task.train_sources, task.train_targets),
        (task.validation_numbers, task.validation_sources, task.validation_targets),
    ):
        for number, source, target in list(zip(numbers, sources, targets))[::97]:
            assert source == num2words(number, lang="en") and target == num2words(number, lang="fr")
    pairs = dict(zip(task.train_numbers + task.validation_numbers, task.train_targets + task.validation_targets))
    assert pairs[80] == "quatre-vingts" and pairs[81] == "quatre-vingt-un" and pairs[71] == "soixante et onze"
    assert pairs[200] == "deux cents" and pairs[201] == "deux cent un"
    assert pairs[1234] == "mille deux cent trente-quatre"
    sources = dict(zip(task.train_numbers + task.validation_numbers, task.train_sources + task.validation_sources))
    assert sources[1234] == "one thousand, two hundred and thirty-four"


def test_held_out_targets_use_only_words_seen_in_training(task):
    """Generalization is possible: every held-out word occurs in training, in other numbers."""
    seen_source = {w for s in task.train_sources for w in s.split()}
    seen_target = {w for s in task.train_targets for w in s.split()}
    assert {w for s in task.validation_sources for w in s.split()} <= seen_source
    assert {w for s in task.validation_targets for w in s.split()} <= seen_target


def test_generation_is_deterministic_and_seeded():
    first = load_translation_data("numbers:en-de", max_number=300)
    assert first == load_translation_data("numbers:en-de", max_number=300)
    targets = dict(zip(first.train_numbers + first.validation_numbers, first.train_targets + first.validation_targets))
    assert targets[21] == "einundzwanzig" and targets[300] == "dreihundert"
    other = load_translation_data("numbers:en-de", max_number=300, seed=1)
    assert set(other.validation_numbers) != set(first.validation_numbers)
    reverse = load_translation_data("numbers:fr-en", max_number=300)
    assert reverse.train_numbers == first.train_numbers
    assert reverse.train_sources == tuple(num2words(n, lang="fr") for n in reverse.train_numbers)


def test_tokenizer_text_is_the_training_side_only(task):
    lines = task.tokenizer_text().split("\n")
    assert lines == list(task.train_sources + task.train_targets)
    assert "\n" not in "".join(task.train_sources + task.train_targets)


@pytest.mark.parametrize(
    "spec, kwargs, message",
    [
        ("numbers", {}, "numbers:SRC-TGT"),
        ("numbers:en", {}, "numbers:SRC-TGT"),
        ("numbers:en-fr-de", {}, "numbers:SRC-TGT"),
        ("words:en-fr", {}, "numbers:SRC-TGT"),
        ("numbers:en-xx", {}, "num2words has no language 'xx'"),
        ("numbers:en-fr", dict(max_number=0), "max_number must be an integer"),
        ("numbers:en-fr", dict(max_number=10**9), "max_number must be an integer"),
        ("numbers:en-fr", dict(validation_fraction=1.0), "validation_fraction must be in"),
        ("numbers:en-fr", dict(max_number=3), "leaves 4 training and 0 validation numbers"),
    ],
)
def test_bad_specs_and_settings_raise_dataset_errors(spec, kwargs, message):
    with pytest.raises(DatasetError, match=message):
        load_translation_data(spec, **kwargs)
