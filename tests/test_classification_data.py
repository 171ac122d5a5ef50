"""The embedded review-classification task: rule-true labels, structure a bag of words cannot read."""

import collections
import math

import pytest

from tfzoo.data.classification_data import NEGATIVE, POSITIVE, VERBS, load_classification_data
from tfzoo.data.errors import DatasetError

NEGATED_FORMS = sorted((form for forms in VERBS.values() for form in forms), key=len, reverse=True)


def _clause_polarity(clause: str) -> int:
    """+1 or -1, read independently of the generator: adjective polarity, flipped by a negated verb."""
    words = clause.split()
    adjective = words[-1]
    assert (adjective in POSITIVE) != (adjective in NEGATIVE), clause
    polarity = 1 if adjective in POSITIVE else -1
    negated = any(f" {form} " in f" {clause} " for form in NEGATED_FORMS)
    return -polarity if negated else polarity


def _reference_label(text: str) -> int:
    if text.startswith("although "):
        _, decisive = text[len("although ") :].split(", ")
        return int(_clause_polarity(decisive) > 0)
    if ", although " in text:
        decisive, _ = text.split(", although ")
        return int(_clause_polarity(decisive) > 0)
    if " but " in text:
        first, decisive = text.split(" but ")
        assert _clause_polarity(first) != _clause_polarity(decisive), text
        return int(_clause_polarity(decisive) > 0)
    if " and " in text:
        first, second = text.split(" and ")
        assert _clause_polarity(first) == _clause_polarity(second), text
        return int(_clause_polarity(first) > 0)
    return int(_clause_polarity(text) > 0)


@pytest.fixture(scope="module")
def task():
    return load_classification_data()


def test_sizes_splits_and_balance(task):
    assert task.name == "reviews" and task.label_names == ("negative", "positive") and task.num_classes == 2
    assert len(task.train_texts) == len(task.train_labels) == 10000
    assert len(task.validation_texts) == len(task.validation_labels) == 1000
    assert len(set(task.train_texts)) == 10000
    assert not set(task.train_texts) & set(task.validation_texts)
    assert 0.45 < sum(task.train_labels) / 10000 < 0.55
    assert 0.42 < sum(task.validation_labels) / 1000 < 0.58
    assert task.tokenizer_text().split("\n") == list(task.train_texts)


def test_every_label_follows_the_rules(task):
    for text, label in zip(task.train_texts + task.validation_texts, task.train_labels + task.validation_labels):
        assert _reference_label(text) == label, text


def test_every_sentence_form_occurs(task):
    forms = collections.Counter(
        "although_first"
        if t.startswith("although ")
        else "although_last"
        if ", although " in t
        else "but"
        if " but " in t
        else "and"
        if " and " in t
        else "single"
        for t in task.train_texts
    )
    assert set(forms) == {"single", "and", "but", "although_first", "although_last"}
    assert min(forms.values()) > 800
    assert sum(any(f" {form} " in f" {t} " for form in NEGATED_FORMS) for t in task.train_texts) > 3000


def test_a_bag_of_words_cannot_solve_it(task):
    """Naive Bayes on word counts stays far below the 95% target: the labels depend on word order."""
    counts = [collections.Counter(), collections.Counter()]
    for text, label in zip(task.train_texts, task.train_labels):
        counts[label].update(text.split())
    vocabulary = set(counts[0]) | set(counts[1])
    totals = [sum(c.values()) + len(vocabulary) for c in counts]
    priors = [math.log(task.train_labels.count(k) / len(task.train_labels)) for k in (0, 1)]

    def predict(text):
        scores = [priors[k] + sum(math.log((counts[k][w] + 1) / totals[k]) for w in text.split()) for k in (0, 1)]
        return int(scores[1] > scores[0])

    accuracy = sum(predict(t) == y for t, y in zip(task.validation_texts, task.validation_labels)) / 1000
    assert 0.5 <= accuracy < 0.8


def test_generation_is_deterministic_and_seeded():
    first = load_classification_data(num_train=200, num_validation=50)
    assert first == load_classification_data(num_train=200, num_validation=50)
    assert first.validation_texts == load_classification_data(num_train=10, num_validation=50).validation_texts
    assert first.train_texts != load_classification_data(num_train=200, num_validation=50, seed=1).train_texts


@pytest.mark.parametrize(
    "spec, kwargs, message",
    [
        ("imdb", {}, "unknown classification task 'imdb'"),
        ("reviews", dict(num_train=0), "num_train must be a positive integer"),
        ("reviews", dict(num_validation=1.5), "num_validation must be a positive integer"),
    ],
)
def test_bad_specs_raise_dataset_errors(spec, kwargs, message):
    with pytest.raises(DatasetError, match=message):
        load_classification_data(spec, **kwargs)
