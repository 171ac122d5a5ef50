"""Embedded text classification task: short reviews whose sentiment follows from their structure.

Spec `reviews`: generated English reviews labelled negative (0) or positive
(1), with no download and identically on every machine (`random.Random(seed)`).
Every review is one or two clauses "the food was (not) (very) good", and the
label follows rules a bag of words cannot express:

- negation ("was not", "never seemed", "hardly felt", ...) flips the adjective's polarity;
- "A and B": both clauses agree;
- "A but B": the clauses disagree and B decides;
- "although A, B" and "B, although A": the clauses disagree and the clause
  without "although" decides, wherever it stands.

So the same words can carry either label ("the plot was good but the acting
was not great" vs "the plot was not great but the acting was good"); a model
must read word order. Validation reviews never occur in training.
"""

from __future__ import annotations

import dataclasses
import random

from tfzoo.data.errors import DatasetError

SPEC = "reviews"
LABEL_NAMES = ("negative", "positive")
DEFAULT_NUM_TRAIN = 10000
DEFAULT_NUM_VALIDATION = 1000

SUBJECTS = (
    "the food",
    "the service",
    "the movie",
    "the plot",
    "the acting",
    "the staff",
    "the room",
    "the price",
    "the music",
    "the ending",
    "the book",
    "the camera",
    "the battery",
    "the screen",
    "the hotel",
    "the coffee",
)
# Each verb and its negated forms (negation flips the polarity).
VERBS = {
    "was": ("was not", "was never", "was hardly"),
    "is": ("is not", "is never", "is hardly"),
    "seemed": ("did not seem", "never seemed", "hardly seemed"),
    "felt": ("did not feel", "never felt", "hardly felt"),
    "looked": ("did not look", "never looked", "hardly looked"),
}
POSITIVE = (
    "good",
    "great",
    "excellent",
    "wonderful",
    "delightful",
    "superb",
    "pleasant",
    "charming",
    "brilliant",
    "lovely",
    "fantastic",
    "enjoyable",
)
NEGATIVE = (
    "bad",
    "terrible",
    "awful",
    "boring",
    "dull",
    "poor",
    "dreadful",
    "disappointing",
    "mediocre",
    "horrible",
    "bland",
    "annoying",
)
INTENSIFIERS = ("very", "really", "quite", "truly", "rather", "extremely")
# Sentence forms and how often each is drawn.
FORMS = (("single", 0.3), ("and", 0.2), ("but", 0.25), ("although_first", 0.125), ("although_last", 0.125))


@dataclasses.dataclass(frozen=True)
class ClassificationData:
    """Train and validation texts and labels of an embedded classification task.

    Args:
        name: str. The spec the task was loaded from.
        label_names: tuple of str. Name of each label id.
        train_texts: tuple of str.
        train_labels: tuple of int. Label id of each training text.
        validation_texts: tuple of str. Never in `train_texts`.
        validation_labels: tuple of int.
    """

    name: str
    label_names: tuple[str, ...]
    train_texts: tuple[str, ...]
    train_labels: tuple[int, ...]
    validation_texts: tuple[str, ...]
    validation_labels: tuple[int, ...]

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def tokenizer_text(self) -> str:
        """Every training text, one per line: the text to learn a vocabulary from."""
        return "\n".join(self.train_texts)

    def __repr__(self) -> str:
        return (
            f"ClassificationData(name={self.name!r}, train={len(self.train_texts)} texts, "
            f"validation={len(self.validation_texts)} texts, labels={self.label_names})"
        )


def _clause(rng: random.Random, positive: bool) -> str:
    """One clause of the given polarity: the adjective's polarity, flipped when negated."""
    negated = rng.random() < 0.4
    adjective = rng.choice(POSITIVE if positive != negated else NEGATIVE)
    verb = rng.choice(list(VERBS))
    words = [rng.choice(SUBJECTS), rng.choice(VERBS[verb]) if negated else verb]
    if rng.random() < 0.35:
        words.append(rng.choice(INTENSIFIERS))
    words.append(adjective)
    return " ".join(words)


def generate_review(rng: random.Random) -> tuple[str, int]:
    """Draws one review and its label (0 negative, 1 positive).

    Example:
    >>> generate_review(random.Random(3))
    ('the movie hardly felt truly lovely but the coffee is hardly boring', 1)
    """
    label = rng.random() < 0.5
    form = rng.choices([name for name, _ in FORMS], weights=[weight for _, weight in FORMS])[0]
    if form == "single":
        text = _clause(rng, label)
    elif form == "and":
        text = f"{_clause(rng, label)} and {_clause(rng, label)}"
    elif form == "but":
        text = f"{_clause(rng, not label)} but {_clause(rng, label)}"
    elif form == "although_first":
        text = f"although {_clause(rng, not label)}, {_clause(rng, label)}"
    else:
        text = f"{_clause(rng, label)}, although {_clause(rng, not label)}"
    return text, int(label)


def load_classification_data(
    spec: str = SPEC,
    *,
    num_train: int = DEFAULT_NUM_TRAIN,
    num_validation: int = DEFAULT_NUM_VALIDATION,
    seed: int = 0,
) -> ClassificationData:
    """Generates the `reviews` task: distinct reviews, the first `num_validation` held out.

    Args:
        spec: str. "reviews". Defaults to "reviews".
        num_train: int. Training reviews. Defaults to 10000.
        num_validation: int. Validation reviews. Defaults to 1000.
        seed: int. Random seed of the generator. Defaults to 0.

    Raises:
        DatasetError: unknown spec or non-positive sizes.

    Example:
    >>> task = load_classification_data(num_train=50, num_validation=10)
    >>> len(task.train_texts), task.num_classes
    (50, 2)
    """
    if spec != SPEC:
        raise DatasetError(f"unknown classification task {spec!r}; valid: {SPEC}")
    for name, value in (("num_train", num_train), ("num_validation", num_validation)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DatasetError(f"{spec}: {name} must be a positive integer, got {value!r}")
    rng = random.Random(seed)
    seen: dict[str, int] = {}
    total = num_train + num_validation
    attempts = 0
    while len(seen) < total:
        attempts += 1
        if attempts > 20 * total:  # unreachable for sizes the phrase space allows (millions)
            raise DatasetError(f"{spec}: cannot draw {total} distinct reviews")
        text, label = generate_review(rng)
        seen.setdefault(text, label)
    texts, labels = tuple(seen), tuple(seen.values())
    return ClassificationData(
        name=spec,
        label_names=LABEL_NAMES,
        train_texts=texts[num_validation:],
        train_labels=labels[num_validation:],
        validation_texts=texts[:num_validation],
        validation_labels=labels[:num_validation],
    )
