"""Fuzzing dataset spec strings and config values: a one-line ValueError subclass, never another exception.

- `load_text_splits(spec)` (tfzoo/data/text_datasets.py) on random strings,
  random `text:PATH` specs over a folder of unusable files, and random
  `tfds:` specs (read from an empty `data_dir`: nothing is ever downloaded):
  it loads or raises `DatasetError` with a one-line message.
- `resolve_config` (tfzoo/training/validate.py) on a valid config with one
  field set to an arbitrary value (or removed, or two fields changed at
  once): it returns a config that passes its own checks again, or raises
  `ConfigError` with a one-line message that names a field.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os

import ml_collections
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tfzoo.data.errors import DatasetError
from tfzoo.data.text_datasets import load_text_splits
from tfzoo.training.validate import CONTRACT_FIELDS, DEFAULTS, ConfigError, resolve_config

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> str:
    """A folder of files no dataset can be made of (and one good file); Hypothesis picks names from it."""
    root = str(tmp_path_factory.mktemp("fuzz_specs"))
    contents = {
        "empty.txt": b"",
        "latin1.txt": "caf\xe9 cr\xe8me\n".encode("latin-1") * 20,
        "short.txt": b"abc",
        "bom.txt": b"\xef\xbb\xbfabc",
        "nul.txt": b"\x00" * 50,
        "good.txt": b"def f(x):\n    return x\n" * 20,
    }
    for name, data in contents.items():
        with open(os.path.join(root, name), "wb") as file:
            file.write(data)
    os.makedirs(os.path.join(root, "folder.txt"))
    os.symlink(os.path.join(root, "missing"), os.path.join(root, "dangling.txt"))
    os.makedirs(os.path.join(root, "tfds_data"))
    return root


FILE_NAMES = st.sampled_from(
    [
        "empty.txt",
        "latin1.txt",
        "short.txt",
        "bom.txt",
        "nul.txt",
        "good.txt",
        "folder.txt",
        "dangling.txt",
        "missing.txt",
        "",
        "/",
        "..",
        "a\x00b",
    ]
)
SPEC_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=30)
TFDS_REST = st.text(alphabet="abcdmnist_/:-.0123456789 ", max_size=20)


def _check_spec(spec, files: str) -> None:
    try:
        splits = load_text_splits(spec, data_dir=os.path.join(files, "tfds_data"), max_examples=2)
    except DatasetError as error:
        message = str(error)
        assert message and "\n" not in message, repr(message)
    else:
        assert splits.train and splits.validation


@FUZZ
@given(SPEC_TEXT | st.builds(lambda s: "text:" + s, SPEC_TEXT) | st.builds(lambda s: "tfds:" + s, TFDS_REST))
def test_any_spec_string_loads_or_raises_a_dataset_error(files, spec):
    assume(not spec.startswith("text:") or "\x00" in spec or not os.path.exists(os.path.expanduser(spec[5:])))
    _check_spec(spec, files)  # `text:` paths that exist are the next test's business (not the disk's whole content)


@FUZZ
@given(FILE_NAMES, st.sampled_from(["", "./", "~", "../"]))
def test_text_specs_of_unusable_files_raise_a_dataset_error(files, name, prefix):
    spec = "text:" + (os.path.join(files, prefix + name) if prefix != "~" else "~/" + name)
    _check_spec(spec, files)


@pytest.mark.parametrize(
    "spec",
    [
        None,
        3,
        b"stdlib_code",
        ["text:a"],
        "TEXT:x",
        " stdlib_code",
        "text:",
        "tfds:",
        "tfds:/",
        "tfds:a//b",
        "tfds:a/b/c",
        "tfds:a:",
        "tfds::x",
    ],
)
def test_malformed_specs_raise_a_dataset_error(spec):
    with pytest.raises(DatasetError):
        load_text_splits(spec)


# --- config values --------------------------------------------------------------------------------------------------

VALUES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.integers(-3, 300)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(-2.0, 2.0)
    | st.sampled_from([math.nan, math.inf, -math.inf, 2**31, 2**70, -(2**31)])
    | st.text(max_size=12)
    | st.sampled_from(["gpt", "char", "learned", "rotary", "auto", "mirrored", "none", "nan", "1e-3"])
    | st.lists(st.integers(0, 3) | st.text(max_size=3), max_size=3)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)
FIELDS = sorted(set(CONTRACT_FIELDS) | set(DEFAULTS))


@functools.cache
def _gpt_tiny():
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "gpt_tiny.py")
    spec = importlib.util.spec_from_file_location("gpt_tiny_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _base() -> dict:
    return _gpt_tiny().get_config().to_dict()


def _check_config(values: dict) -> None:
    config = ml_collections.ConfigDict(values)
    try:
        resolved = resolve_config(config)
    except ConfigError as error:
        message = str(error)
        assert message and "\n" not in message, repr(message)
        assert any(field in message for field in FIELDS) or "config is missing" in message, message
        return
    assert resolve_config(resolved).to_dict() == resolved.to_dict()  # resolving is idempotent
    for name in (
        "learning_rate",
        "min_learning_rate",
        "weight_decay",
        "clip_norm",
        "dropout",
        "label_smoothing",
        "beta1",
        "beta2",
    ):
        assert math.isfinite(resolved[name]), (name, resolved[name])
    for name in ("seq_len", "batch_size", "train_steps", "num_layers", "hidden_dim", "vocabulary_size", "seed"):
        assert resolved[name] < 2**31, (name, resolved[name])  # sizes and counts go into int32 tensors


@FUZZ
@given(st.sampled_from(FIELDS), VALUES)
def test_one_field_with_any_value_resolves_or_raises_a_config_error(field, value):
    values = _base()
    values[field] = value
    _check_config(values)


@FUZZ
@given(st.sampled_from(FIELDS), VALUES, st.sampled_from(FIELDS), VALUES)
def test_two_fields_with_any_values_resolve_or_raise_a_config_error(field, value, other, other_value):
    values = _base()
    values[field], values[other] = value, other_value
    _check_config(values)


@FUZZ
@given(st.sets(st.sampled_from(FIELDS), min_size=1, max_size=4))
def test_removed_fields_resolve_to_defaults_or_raise_a_config_error(removed):
    values = {k: v for k, v in _base().items() if k not in removed}
    _check_config(values)
    if set(removed) & set(CONTRACT_FIELDS):
        with pytest.raises(ConfigError, match="config is missing field"):
            resolve_config(ml_collections.ConfigDict(values))


@pytest.mark.parametrize(
    "field, value",
    [
        ("learning_rate", float("nan")),
        ("learning_rate", float("inf")),
        ("dropout", float("nan")),
        ("weight_decay", float("inf")),
        ("clip_norm", float("nan")),
        ("seq_len", 2**70),
        ("batch_size", 2**31),
        ("seq_len", True),
        ("seq_len", 16.0),
        ("num_heads", 0),
        ("position", ["learned"]),
        ("model", {"name": "gpt"}),
    ],
)
def test_non_finite_and_wrongly_typed_values_are_rejected(field, value):
    values = _base()
    values[field] = value
    with pytest.raises(ConfigError, match=field):
        resolve_config(ml_collections.ConfigDict(values))
