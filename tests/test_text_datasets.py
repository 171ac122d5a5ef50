"""Tests for the text dataset specs: stdlib_code, text:PATH and the errors on bad input."""

import time

import pytest

from tfzoo.data import DatasetError, load_text_splits
from tfzoo.data.text_datasets import (
    STDLIB_FILE_HEADER,
    STDLIB_SKIP_DIRS,
    _is_stdlib_validation_file,
    stdlib_code_files,
)


@pytest.fixture(scope="module")
def stdlib_code():
    start = time.perf_counter()
    splits = load_text_splits("stdlib_code")
    return splits, time.perf_counter() - start


def test_stdlib_code_loads_fast_and_is_large(stdlib_code):
    splits, seconds = stdlib_code
    assert seconds < 5.0
    assert splits.name == "stdlib_code"
    assert len(splits.train) > 2_000_000 and len(splits.validation) > 200_000
    assert 0.05 < len(splits.validation) / (len(splits.train) + len(splits.validation)) < 0.2


def test_stdlib_code_is_deterministic(stdlib_code):
    splits, _ = stdlib_code
    again = load_text_splits("stdlib_code")
    assert again == splits


def test_stdlib_code_splits_by_file(stdlib_code):
    splits, _ = stdlib_code
    train, validation = set(splits.train_files), set(splits.validation_files)
    assert not train & validation
    assert train | validation <= set(stdlib_code_files())
    assert all(_is_stdlib_validation_file(path) for path in validation)
    assert not any(_is_stdlib_validation_file(path) for path in train)
    for path in splits.train_files[::25]:
        header = STDLIB_FILE_HEADER.format(path=path)
        assert header in splits.train and header not in splits.validation
    for path in splits.validation_files[::5]:
        header = STDLIB_FILE_HEADER.format(path=path)
        assert header in splits.validation and header not in splits.train


def test_stdlib_code_files_are_concatenated_in_sorted_order(stdlib_code):
    splits, _ = stdlib_code
    assert list(splits.train_files) == sorted(splits.train_files)
    offsets = [splits.train.index(STDLIB_FILE_HEADER.format(path=path)) for path in splits.train_files]
    assert offsets == sorted(offsets) and offsets[0] == 0
    assert splits.validation.startswith(STDLIB_FILE_HEADER.format(path=splits.validation_files[0]))


def test_stdlib_code_leaves_out_tests_and_installed_packages():
    files = stdlib_code_files()
    assert "os.py" in files and "json/decoder.py" in files
    for path in files:
        assert path.endswith(".py")
        assert not set(path.split("/")[:-1]) & STDLIB_SKIP_DIRS, path
        assert not path.startswith(("pydoc_data/", "_sysconfigdata_")), path


def test_text_splits_repr_is_short(stdlib_code):
    splits, _ = stdlib_code
    assert len(repr(splits)) < 200 and "stdlib_code" in repr(splits)


def test_text_file_splits_characters_90_10(tmp_path):
    text = "".join(chr(0x61 + i % 26) if i % 7 else "\u00e9" for i in range(1000))
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    splits = load_text_splits(f"text:{path}")
    assert (len(splits.train), len(splits.validation)) == (900, 100)  # characters, not bytes
    assert splits.train + splits.validation == text
    assert splits.name == f"text:{path}" and splits.train_files == (str(path),)


def test_text_file_shortest_split_and_byte_order_mark(tmp_path):
    path = tmp_path / "short.txt"
    path.write_bytes("\ufeff0123456789".encode("utf-8"))
    splits = load_text_splits(f"text:{path}")
    assert (splits.train, splits.validation) == ("012345678", "9")


def _error(spec):
    with pytest.raises(DatasetError) as error:
        load_text_splits(spec)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_bad_specs_raise_one_line_dataset_errors(tmp_path):
    assert issubclass(DatasetError, ValueError)
    assert "stdlib_code, text:PATH, tfds:NAME[/CONFIG][:FIELD]" in _error("wikipedia")
    assert "stdlib_code, text:PATH" in _error("Stdlib_Code")
    assert "needs a file path" in _error("text:")
    assert "must be a string" in _error(None)

    missing = tmp_path / "missing.txt"
    assert _error(f"text:{missing}") == f"text:{missing}: file not found"
    assert _error(f"text:{tmp_path}") == f"text:{tmp_path}: is a directory, expected a UTF-8 text file"

    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert _error(f"text:{empty}") == f"text:{empty}: file is empty"

    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\u00e9 au lait".encode("utf-8") + b" na\xefve")
    assert "not valid UTF-8 at byte offset 16" in _error(f"text:{latin1}")

    short = tmp_path / "short.txt"
    short.write_text("abc\u00e9", encoding="utf-8")
    assert "too short to split 90/10 (4 characters, need at least 10)" in _error(f"text:{short}")


def test_malformed_tfds_specs():
    for spec in ("tfds:", "tfds:/en", "tfds:name/", "tfds:name:", "tfds:a/b/c"):
        assert "expected tfds:NAME[/CONFIG][:FIELD]" in _error(spec)
