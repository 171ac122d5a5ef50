"""Text datasets for language modelling, named by spec strings.

Specs:
- `stdlib_code`: the Python standard library's own `.py` files (the install
  running this code), split into train/validation by file.
- `text:PATH`: any UTF-8 text file; the first 90% of its characters train, the
  last 10% validate.
- `assistant:docs[@SEED][:MB]`: the pre-training documents of the generated shop
  world (`tfzoo.data.assistant_world`; validation: the same facts in new sentences),
  1.6 MB unless MB megabytes are asked for.
- `tfds:NAME[/CONFIG][:FIELD]`: a TensorFlow Datasets text field (default
  `text`), the examples of each split joined by blank lines; the data must
  already be prepared under `data_dir` (nothing is ever downloaded). Language
  modelling corpora: `tfds:tiny_shakespeare`, `tfds:lm1b` (validates on
  `test`), `tfds:wiki40b/en` (structure markers removed, see `clean_wiki40b`).

`load_tfds_translation` and `load_tfds_classification` read the same specs as
sentence pairs (`wmt14_translate/de-en`) or labelled texts (`imdb_reviews`).
"""

from __future__ import annotations

import dataclasses
import os
import sysconfig
import zlib

from tfzoo.data import assistant_world
from tfzoo.data.classification_data import ClassificationData
from tfzoo.data.errors import DatasetError
from tfzoo.data.translation_data import TranslationData

VALID_SPECS = "stdlib_code, text:PATH, tfds:NAME[/CONFIG][:FIELD], assistant:docs[@SEED][:MB]"

# stdlib_code: directories skipped anywhere under the stdlib (tests, installed
# packages, build artefacts) and top-level entries that are generated, not code.
STDLIB_SKIP_DIRS = frozenset(
    {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__", "lib-dynload"}
)
STDLIB_SKIP_TOP_LEVEL = ("config-", "pydoc_data", "_sysconfigdata_")
STDLIB_VALIDATION_BUCKETS = 10  # A file validates when crc32(relative path) % 10 == 0.
STDLIB_FILE_HEADER = "# ---- {path} ----\n"  # Precedes each file in the concatenated text.

TEXT_TRAIN_FRACTION_TENTHS = 9  # text:PATH: the first 9/10 of the characters train.
TEXT_MIN_CHARS = 10  # text:PATH: shorter files cannot be split 90/10.
# tfds:wiki40b: markers of article structure in the `text` field, dropped from the language-model text.
WIKI40B_MARKERS = ("_START_ARTICLE_\n", "_START_SECTION_\n", "_START_PARAGRAPH_\n")


@dataclasses.dataclass(frozen=True)
class TextSplits:
    """The train and validation text of a dataset.

    Args:
        name: str. The spec the splits were loaded from.
        train: str. Training text.
        validation: str. Validation text.
        train_files: tuple of str. Source files of `train` (relative to the
            stdlib for `stdlib_code`, the file path for `text:PATH`).
        validation_files: tuple of str. Source files of `validation`.
    """

    name: str
    train: str
    validation: str
    train_files: tuple[str, ...] = ()
    validation_files: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (
            f"TextSplits(name={self.name!r}, train={len(self.train)} chars from {len(self.train_files)} files, "
            f"validation={len(self.validation)} chars from {len(self.validation_files)} files)"
        )


def load_text_splits(spec: str, data_dir: str | None = None, max_examples: int = 0) -> TextSplits:
    """Loads the train and validation text named by `spec`.

    Args:
        spec: str. `stdlib_code`, `text:PATH` or `tfds:NAME[/CONFIG][:FIELD]`.
        data_dir: str, optional. tfds specs: where the prepared data lives
            (tfds's default when empty).
        max_examples: int. tfds specs: read at most this many examples per
            split; 0 reads all. Defaults to 0.

    Raises:
        DatasetError: unknown spec, or unusable data (missing, empty, not UTF-8,
            too short to split, ...).

    Example:
    >>> splits = load_text_splits("stdlib_code")
    >>> len(splits.train) > 8 * len(splits.validation)
    True
    """
    if not isinstance(spec, str):
        raise DatasetError(f"dataset spec must be a string, got {type(spec).__name__}; valid forms: {VALID_SPECS}")
    if spec == "stdlib_code":
        return _load_stdlib_code()
    if spec.startswith("text:"):
        return _load_text_file(spec[len("text:") :])
    if spec.startswith("tfds:"):
        return _load_tfds(spec[len("tfds:") :], data_dir, max_examples)
    if spec.startswith("assistant:"):  # the shop world's documents (tfzoo.data.assistant_world)
        part, seed = assistant_world.parse_spec(spec)
        if part != "docs":
            raise DatasetError(f"{spec}: the lm task reads assistant:docs; {spec} is for the sft/dpo tasks")
        world = assistant_world.make_world(seed)
        train, validation = assistant_world.documents(world, size=assistant_world.docs_bytes(spec))
        return TextSplits(name=spec, train=train, validation=validation)
    raise DatasetError(f"unknown dataset spec {spec!r}; valid forms: {VALID_SPECS}")


def stdlib_code_files(root: str | None = None) -> list[str]:
    """Returns the sorted relative paths (with `/`) of the stdlib `.py` files used by `stdlib_code`."""
    root = root or sysconfig.get_paths()["stdlib"]
    paths = []
    for directory, subdirectories, filenames in os.walk(root):
        subdirectories[:] = [name for name in subdirectories if name not in STDLIB_SKIP_DIRS]
        relative_directory = os.path.relpath(directory, root)
        for filename in filenames:
            if not filename.endswith(".py"):
                continue
            path = filename if relative_directory == "." else os.path.join(relative_directory, filename)
            path = path.replace(os.sep, "/")
            if not path.startswith(STDLIB_SKIP_TOP_LEVEL):
                paths.append(path)
    return sorted(paths)


def _is_stdlib_validation_file(path: str) -> bool:
    # A hash of the path, not its rank, so a file added in another Python
    # version does not move every other file to the other split.
    return zlib.crc32(path.encode("utf-8")) % STDLIB_VALIDATION_BUCKETS == 0


def _load_stdlib_code() -> TextSplits:
    root = sysconfig.get_paths()["stdlib"]
    parts = {"train": [], "validation": []}
    files = {"train": [], "validation": []}
    for path in stdlib_code_files(root):
        try:
            with open(os.path.join(root, path), "rb") as file:
                text = file.read().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # Unreadable or legacy-encoded files are left out.
        text = text.replace("\r\n", "\n")
        if not text.strip():
            continue  # Empty `__init__.py` files add nothing but a header.
        if not text.endswith("\n"):
            text += "\n"
        split = "validation" if _is_stdlib_validation_file(path) else "train"
        parts[split].append(STDLIB_FILE_HEADER.format(path=path) + text)
        files[split].append(path)
    if not files["train"] or not files["validation"]:
        raise DatasetError(f"stdlib_code: found no usable standard library .py files under {root}")
    return TextSplits(
        name="stdlib_code",
        train="".join(parts["train"]),
        validation="".join(parts["validation"]),
        train_files=tuple(files["train"]),
        validation_files=tuple(files["validation"]),
    )


def _load_text_file(path: str) -> TextSplits:
    spec = f"text:{path}"
    if not path:
        raise DatasetError("dataset spec 'text:' needs a file path, as in text:PATH")
    path = os.path.expanduser(path)
    if os.path.isdir(path):
        raise DatasetError(f"{spec}: is a directory, expected a UTF-8 text file")
    if not os.path.exists(path):
        raise DatasetError(f"{spec}: file not found")
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise DatasetError(f"{spec}: cannot read file ({error.strerror})") from None
    if not data:
        raise DatasetError(f"{spec}: file is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DatasetError(f"{spec}: not valid UTF-8 at byte offset {error.start} ({error.reason})") from None
    text = text.removeprefix("\ufeff")  # A byte order mark is not text.
    if len(text) < TEXT_MIN_CHARS:
        raise DatasetError(f"{spec}: too short to split 90/10 ({len(text)} characters, need at least {TEXT_MIN_CHARS})")
    split = len(text) * TEXT_TRAIN_FRACTION_TENTHS // 10
    return TextSplits(
        name=spec, train=text[:split], validation=text[split:], train_files=(path,), validation_files=(path,)
    )


def parse_tfds_spec(rest: str) -> tuple[str, str | None, str | None]:
    """Splits `NAME[/CONFIG][:FIELD]` (the part after `tfds:`) into (name, config, field)."""
    dataset, _, field = rest.partition(":")
    name, _, config = dataset.partition("/")
    if not name or (dataset.count("/") > 1) or ("/" in dataset and not config) or (":" in rest and not field):
        raise DatasetError(f"bad dataset spec 'tfds:{rest}'; expected tfds:NAME[/CONFIG][:FIELD]")
    return name, config or None, field or None


def tfds_split_names(available) -> tuple[str, str]:
    """`(train split, validation split)` among a tfds dataset's split names (empty: unknown, as under mock data).

    Training reads `train`, else every `train*` split joined (librispeech's `train_clean100+...`); validation
    reads `validation`, else the first `validation*` or `dev*` split (`dev_clean`), else `test`, else `test*`.

    Example:
    >>> tfds_split_names({"train", "test"}), tfds_split_names({"train_clean100", "train_other500", "dev_clean"})
    (('train', 'test'), ('train_clean100+train_other500', 'dev_clean'))
    """
    available = sorted(available)
    trains = [s for s in available if s.startswith("train")]
    train = "train" if "train" in available or not trains else "+".join(trains)
    for candidates in (["validation"], [s for s in available if s.startswith(("validation", "dev"))], ["test"]):
        found = [s for s in candidates if s in available]
        if found:
            return train, found[0]
    tests = [s for s in available if s.startswith("test")]
    return train, tests[0] if tests else "validation"


def tfds_examples(rest: str, data_dir: str | None, max_examples: int, check=None) -> tuple[str, dict, dict]:
    """`(name, train, validation)`: each split as a dict of feature name -> list of numpy values.

    The splits are `tfds_split_names(...)`. `check(builder.info)`, if given, runs before any data is
    read (to refuse wrong features in one line). Only data already prepared under `data_dir` is read:
    `download=False`.
    """
    import tensorflow_datasets as tfds  # noqa: PLC0415 (tensorflow-datasets only for tfds: specs) (slow import, needed by tfds specs only)

    name, config, _ = parse_tfds_spec(rest)
    full_name = name if config is None else f"{name}/{config}"
    spec = f"tfds:{rest}"
    try:
        builder = tfds.builder(full_name, data_dir=data_dir or None)
    except Exception as error:  # noqa: BLE001 (DatasetNotFoundError, bad config name, ...)
        raise DatasetError(f"{spec}: unknown tfds dataset ({' '.join(str(error).split()[:12])}...)") from None
    if check is not None:
        check(builder.info)
    train, validation = tfds_split_names(builder.info.splits.keys())
    splits = {}
    for split in (train, validation):
        try:
            dataset = tfds.load(full_name, split=split, data_dir=data_dir or None, download=False)
        except (AssertionError, FileNotFoundError, ValueError) as error:
            where = data_dir or "the default tfds data_dir"
            raise DatasetError(
                f"{spec}: split {split!r} is not prepared in {where} (nothing is downloaded at run time; "
                f"run `tfds build {full_name}` first or set data_dir): {' '.join(str(error).split())[:120]}"
            ) from None
        if max_examples:
            dataset = dataset.take(max_examples)
        columns: dict[str, list] = {}
        for example in dataset.as_numpy_iterator():
            for key, value in example.items():
                columns.setdefault(key, []).append(value)
        if not columns:
            raise DatasetError(f"{spec}: split {split!r} is empty")
        splits[split] = columns
    return full_name, splits[train], splits[validation]


def _texts(spec: str, columns: dict, field: str) -> list[str]:
    if field not in columns:
        raise DatasetError(f"{spec}: no field {field!r}; fields: {', '.join(sorted(columns))}")
    values = columns[field]
    if not all(isinstance(v, bytes) for v in values):
        raise DatasetError(f"{spec}: field {field!r} is not a text field")
    return [v.decode("utf-8", errors="replace") for v in values]


def clean_wiki40b(text: str) -> str:
    """Plain text of a wiki40b example: structure markers dropped, `_NEWLINE_` as a newline.

    Example:
    >>> clean_wiki40b("\\n_START_ARTICLE_\\nFox\\n_START_PARAGRAPH_\\nA fox._NEWLINE_It runs.")
    'Fox\\nA fox.\\nIt runs.'
    """
    for marker in WIKI40B_MARKERS:
        text = text.replace(marker, "")
    return text.replace("_NEWLINE_", "\n").strip("\n")


def _load_tfds(rest: str, data_dir: str | None = None, max_examples: int = 0) -> TextSplits:
    name, _, field = parse_tfds_spec(rest)
    spec = f"tfds:{rest}"
    _, train, validation = tfds_examples(rest, data_dir, max_examples)
    clean = clean_wiki40b if name == "wiki40b" and (field or "text") == "text" else (lambda text: text)
    texts = {
        split: "\n\n".join(clean(t) for t in _texts(spec, columns, field or "text"))
        for split, columns in (("train", train), ("validation", validation))
    }
    if not texts["train"] or not texts["validation"]:
        raise DatasetError(f"{spec}: a split has no text")
    return TextSplits(name=spec, train=texts["train"], validation=texts["validation"])


def load_tfds_translation(spec: str, data_dir: str | None = None, max_examples: int = 0) -> TranslationData:
    """Sentence pairs of a tfds translation dataset, as a `TranslationData`.

    `tfds:NAME/SRC-TGT` (e.g. `tfds:wmt14_translate/de-en`): the source and
    target languages come from the config name (or `:SRC-TGT` after it).

    Args:
        spec: str. `tfds:NAME/CONFIG[:SRC-TGT]`.
        data_dir: str, optional. Where the prepared data lives; tfds's default when empty.
        max_examples: int. Read at most this many pairs per split; 0 reads all. Defaults to 0.

    Raises:
        DatasetError: a bad spec, an unknown dataset or language, or data that is not prepared.
    """
    rest = _tfds_rest(spec)
    _, config, field = parse_tfds_spec(rest)
    languages = (field or config or "").split("-")
    if len(languages) != 2 or not all(languages):
        raise DatasetError(f"{spec}: name the languages as in tfds:wmt14_translate/de-en (or :SRC-TGT)")
    _, train, validation = tfds_examples(rest, data_dir, max_examples)
    source, target = languages
    pairs = {}
    for name, columns in (("train", train), ("validation", validation)):
        pairs[name] = (_texts(spec, columns, source), _texts(spec, columns, target))
    return TranslationData(
        name=spec,
        source_language=source,
        target_language=target,
        train_numbers=tuple(range(len(pairs["train"][0]))),
        train_sources=tuple(pairs["train"][0]),
        train_targets=tuple(pairs["train"][1]),
        validation_numbers=tuple(range(len(pairs["validation"][0]))),
        validation_sources=tuple(pairs["validation"][0]),
        validation_targets=tuple(pairs["validation"][1]),
    )


def load_tfds_classification(spec: str, data_dir: str | None = None, max_examples: int = 0) -> ClassificationData:
    """Labelled texts of a tfds classification dataset (`tfds:imdb_reviews`), as a `ClassificationData`.

    The text field is `text` (or the FIELD of the spec); the label field is
    `label`, a tfds `ClassLabel` whose names become `label_names`.

    Raises:
        DatasetError: a bad spec, an unknown dataset, missing fields, or data that is not prepared.
    """
    import tensorflow_datasets as tfds  # noqa: PLC0415

    rest = _tfds_rest(spec)
    _, _, field = parse_tfds_spec(rest)
    full_name, train, validation = tfds_examples(rest, data_dir, max_examples)
    features = tfds.builder(full_name, data_dir=data_dir or None).info.features
    label_feature = features["label"] if "label" in features.keys() else None
    if not isinstance(label_feature, tfds.features.ClassLabel):
        raise DatasetError(f"{spec}: no ClassLabel field 'label' to classify by")
    labels = {}
    for split, columns in (("train", train), ("validation", validation)):
        values = [int(v) for v in columns["label"]]
        if any(not 0 <= v < label_feature.num_classes for v in values):
            raise DatasetError(f"{spec}: {split} has labels outside [0, {label_feature.num_classes})")
        labels[split] = tuple(values)
    return ClassificationData(
        name=spec,
        label_names=tuple(label_feature.names),
        train_texts=tuple(_texts(spec, train, field or "text")),
        train_labels=labels["train"],
        validation_texts=tuple(_texts(spec, validation, field or "text")),
        validation_labels=labels["validation"],
    )


def _tfds_rest(spec: str) -> str:
    if not isinstance(spec, str) or not spec.startswith("tfds:"):
        raise DatasetError(f"expected a tfds:NAME[/CONFIG][:FIELD] spec, got {spec!r}")
    return spec[len("tfds:") :]
