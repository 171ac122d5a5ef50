"""Text datasets for language modelling, named by spec strings.

Specs:
- `stdlib_code`: the Python standard library's own `.py` files (the install
  running this code), split into train/validation by file.
- `text:PATH`: any UTF-8 text file; the first 90% of its characters train, the
  last 10% validate.
- `tfds:NAME[/CONFIG][:FIELD]`: a TensorFlow Datasets text field (not
  implemented yet: raises `DatasetError`).
"""

from __future__ import annotations

import dataclasses
import os
import sysconfig
import zlib

VALID_SPECS = "stdlib_code, text:PATH, tfds:NAME[/CONFIG][:FIELD]"

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


class DatasetError(ValueError):
    """A dataset spec or its data is unusable; the message is one line."""


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


def load_text_splits(spec: str) -> TextSplits:
    """Loads the train and validation text named by `spec`.

    Args:
        spec: str. `stdlib_code`, `text:PATH` or `tfds:NAME[/CONFIG][:FIELD]`.

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
        return _load_tfds(spec[len("tfds:") :])
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
        raise DatasetError(
            f"{spec}: too short to split 90/10 ({len(text)} characters, need at least {TEXT_MIN_CHARS})"
        )
    split = len(text) * TEXT_TRAIN_FRACTION_TENTHS // 10
    return TextSplits(
        name=spec, train=text[:split], validation=text[split:], train_files=(path,), validation_files=(path,)
    )


def _parse_tfds_spec(rest: str) -> tuple[str, str | None, str | None]:
    """Splits `NAME[/CONFIG][:FIELD]` (the part after `tfds:`) into (name, config, field)."""
    dataset, _, field = rest.partition(":")
    name, _, config = dataset.partition("/")
    if not name or (dataset.count("/") > 1) or ("/" in dataset and not config) or (":" in rest and not field):
        raise DatasetError(f"bad dataset spec 'tfds:{rest}'; expected tfds:NAME[/CONFIG][:FIELD]")
    return name, config or None, field or None


def _load_tfds(rest: str) -> TextSplits:
    # Hook for the tfds issue: parse the spec, then load NAME/CONFIG with
    # tensorflow_datasets (data already on disk, no downloads) and join FIELD.
    _parse_tfds_spec(rest)
    raise DatasetError(
        f"dataset spec 'tfds:{rest}': tfds datasets are not implemented yet; use stdlib_code or text:PATH"
    )
