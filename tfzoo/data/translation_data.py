"""Embedded translation task: numbers written out in one language, translated into another.

Spec `numbers:SRC-TGT` (e.g. `numbers:en-fr`, `numbers:en-de`, `numbers:fr-en`):
every integer in `[0, max_number]` written out by `num2words` in the source
language is paired with the same number written out in the target language.
Nothing is downloaded; the pairs are generated on the fly, identically on
every machine (the `num2words` version is pinned).

The task has real linguistic structure: English "one thousand, two hundred and
thirty-four" -> French "mille deux cent trente-quatre" (no "one" before mille,
no "and", vigesimal 70-99 as in "quatre-vingt-dix-neuf", "et un" in 21-71 but
not 81, plural "deux cents"/"quatre-vingts" only when nothing follows) or German
"eintausendzweihundertvierunddreißig" (one word, units before tens). The split
is by number: a number is held out for validation when a hash of it (and
`seed`) falls below `validation_fraction`, so validation numbers never occur in
training and a model must generalize the rules, not memorize pairs.
"""

from __future__ import annotations

import dataclasses
import zlib

from tfzoo.data.errors import DatasetError

SPEC_PREFIX = "numbers:"
DEFAULT_SPEC = "numbers:en-fr"
DEFAULT_MAX_NUMBER = 9999
DEFAULT_VALIDATION_FRACTION = 0.1
LARGEST_MAX_NUMBER = 10**7  # Keeps generation to seconds.


@dataclasses.dataclass(frozen=True)
class TranslationData:
    """Train and validation sentence pairs of an embedded translation task.

    Args:
        name: str. The spec the task was loaded from.
        source_language: str. num2words language code of the sources.
        target_language: str. num2words language code of the targets.
        train_numbers: tuple of int. The number behind each training pair.
        train_sources: tuple of str. Source sentences, aligned with `train_numbers`.
        train_targets: tuple of str. Target sentences.
        validation_numbers: tuple of int. The held-out numbers.
        validation_sources: tuple of str.
        validation_targets: tuple of str.
    """

    name: str
    source_language: str
    target_language: str
    train_numbers: tuple[int, ...]
    train_sources: tuple[str, ...]
    train_targets: tuple[str, ...]
    validation_numbers: tuple[int, ...]
    validation_sources: tuple[str, ...]
    validation_targets: tuple[str, ...]

    def tokenizer_text(self) -> str:
        """Every training source and target, one per line: the text to learn a shared vocabulary from."""
        return "\n".join(self.train_sources + self.train_targets)

    def __repr__(self) -> str:
        return (
            f"TranslationData(name={self.name!r}, train={len(self.train_sources)} pairs, "
            f"validation={len(self.validation_sources)} pairs)"
        )


def is_validation_number(number: int, seed: int = 0, validation_fraction: float = DEFAULT_VALIDATION_FRACTION) -> bool:
    """Whether `number` is held out: crc32 of "seed:number", as a fraction of 2**32, is below the fraction.

    Example:
    >>> [n for n in range(60) if is_validation_number(n)]
    [10, 18, 41, 45, 51, 55, 59]
    """
    return zlib.crc32(f"{seed}:{number}".encode()) < validation_fraction * 2**32


def _parse_spec(spec: str) -> tuple[str, str]:
    from num2words import CONVERTER_CLASSES  # noqa: PLC0415 (num2words only when the numbers task is built)

    if not isinstance(spec, str) or not spec.startswith(SPEC_PREFIX):
        raise DatasetError(f"translation spec must look like {DEFAULT_SPEC!r} (numbers:SRC-TGT), got {spec!r}")
    languages = spec[len(SPEC_PREFIX) :].split("-")
    if len(languages) != 2 or not all(languages):
        raise DatasetError(f"translation spec must look like {DEFAULT_SPEC!r} (numbers:SRC-TGT), got {spec!r}")
    for language in languages:
        if language not in CONVERTER_CLASSES:
            raise DatasetError(
                f"{spec}: num2words has no language {language!r}; e.g. en, fr, de, es, it, nl, pt, pl, ru"
            )
    return languages[0], languages[1]


def load_translation_data(
    spec: str = DEFAULT_SPEC,
    *,
    max_number: int = DEFAULT_MAX_NUMBER,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
    seed: int = 0,
) -> TranslationData:
    """Generates the number-translation pairs named by `spec`, split by number.

    Args:
        spec: str. `numbers:SRC-TGT` with num2words language codes. Defaults to
            "numbers:en-fr".
        max_number: int. The largest number; pairs cover `0..max_number`.
            Defaults to 9999.
        validation_fraction: float in (0, 1). Share of the numbers held out.
            Defaults to 0.1.
        seed: int. Changes which numbers are held out. Defaults to 0.

    Raises:
        DatasetError: a malformed spec, an unknown language, or settings that
            leave a split empty.

    Example:
    >>> task = load_translation_data("numbers:en-fr", max_number=99)
    >>> pairs = dict(zip(task.train_sources, task.train_targets))
    >>> pairs["eighty"], pairs["eighty-one"], pairs["seventy-one"]
    ('quatre-vingts', 'quatre-vingt-un', 'soixante et onze')
    """
    from num2words import num2words  # noqa: PLC0415 (num2words only when the numbers task is built)

    source_language, target_language = _parse_spec(spec)
    if isinstance(max_number, bool) or not isinstance(max_number, int) or not 1 <= max_number <= LARGEST_MAX_NUMBER:
        raise DatasetError(f"{spec}: max_number must be an integer in [1, {LARGEST_MAX_NUMBER}], got {max_number!r}")
    if not 0.0 < validation_fraction < 1.0:
        raise DatasetError(f"{spec}: validation_fraction must be in (0, 1), got {validation_fraction!r}")
    splits = {True: ([], [], []), False: ([], [], [])}
    for number in range(max_number + 1):
        numbers, sources, targets = splits[is_validation_number(number, seed, validation_fraction)]
        numbers.append(number)
        sources.append(num2words(number, lang=source_language))
        targets.append(num2words(number, lang=target_language))
    train, validation = splits[False], splits[True]
    if not train[0] or not validation[0]:
        raise DatasetError(
            f"{spec}: max_number={max_number} with validation_fraction={validation_fraction} leaves "
            f"{len(train[0])} training and {len(validation[0])} validation numbers; use more numbers"
        )
    return TranslationData(
        name=spec,
        source_language=source_language,
        target_language=target_language,
        train_numbers=tuple(train[0]),
        train_sources=tuple(train[1]),
        train_targets=tuple(train[2]),
        validation_numbers=tuple(validation[0]),
        validation_sources=tuple(validation[1]),
        validation_targets=tuple(validation[2]),
    )
