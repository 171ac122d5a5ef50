"""What every `python -m tfzoo.convert` family shares: reading a Hugging Face folder, the errors, writing the workdir.

One owner for: `ConvertError` (one line naming the file and the problem; the
CLI prints it and exits 2), reading `config.json`-style JSON, the safetensors
weights (`model.safetensors` or a sharded `model.safetensors.index.json`, with
the `safetensors` numpy API, no PyTorch), the lenient check of a config's
special token ids, and writing the workdir (a temporary folder renamed into
place, so a failed conversion leaves nothing behind). The families
(`tfzoo/convert.py` for GPT-2, `tfzoo/convert_bert.py`, `tfzoo/convert_t5.py`) only map the
tensors they take from `CheckpointTensors`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable

import numpy as np

from tfzoo.run_folder import MODEL_FILENAME, RunFolder

HF_WEIGHTS = "model.safetensors"
HF_INDEX = "model.safetensors.index.json"
LOG = logging.getLogger("tfzoo.convert")
LOG.addHandler(logging.NullHandler())  # a library's logger: shown where the application configures logging


class ConvertError(ValueError):
    """The source is not a usable checkpoint; the message names the file and the problem."""


def read_json(path: str) -> dict:
    """The JSON object in `path`; ConvertError naming the file if it is missing, unreadable or not an object.

    Example:
    >>> read_json("/nonexistent/config.json")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    tfzoo.convert_files.ConvertError: /nonexistent/config.json: cannot read JSON (...)
    """
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConvertError(f"{path}: cannot read JSON ({error})") from None
    if not isinstance(data, dict):
        raise ConvertError(f"{path}: expected a JSON object")
    return data


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    """Every tensor of one safetensors file as numpy; ConvertError if it is missing, truncated or corrupt."""
    from safetensors.numpy import load_file  # noqa: PLC0415 (only conversion needs it)

    if not os.path.isfile(path):
        raise ConvertError(f"{path} not found")
    try:
        tensors = load_file(path)
    except Exception as error:  # noqa: BLE001 (SafetensorError, OSError, bad dtype...: all mean a bad file)
        message = " ".join(str(error).split())[:200]
        raise ConvertError(f"{path}: not a readable safetensors file (truncated or corrupt?): {message}") from None
    return tensors


def hf_tensors(source: str, prefixes: tuple[str, ...] = ()) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """All tensors of a Hugging Face folder's safetensors weights and the file each came from.

    Args:
        source: str. The folder (`model.safetensors`, or `model.safetensors.index.json` and its shards).
        prefixes: tuple of str. Name prefixes dropped from the keys (`"transformer."`, `"bert."`).

    Returns:
        `(tensors, origin)`: name -> array, and name -> the path of its file.

    Raises:
        ConvertError: no weights (a `pytorch_model.bin` alone is named), a bad index, a bad shard.

    Example:
    >>> tensors, origin = hf_tensors("bert-base-uncased", ("bert.",))  # doctest: +SKIP
    >>> tensors["embeddings.word_embeddings.weight"].shape  # doctest: +SKIP
    (30522, 768)
    """
    index_path = os.path.join(source, HF_INDEX)
    if os.path.isfile(os.path.join(source, HF_WEIGHTS)):
        files = [HF_WEIGHTS]
    elif os.path.isfile(index_path):
        weight_map = read_json(index_path).get("weight_map")
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise ConvertError(f"{index_path}: no 'weight_map'")
        files = sorted(set(weight_map.values()))
    else:
        extra = (
            " (pytorch_model.bin needs PyTorch: re-save it with safe_serialization=True)"
            if os.path.isfile(os.path.join(source, "pytorch_model.bin"))
            else ""
        )
        raise ConvertError(f"{source} has no {HF_WEIGHTS}{extra}")
    tensors, origin = {}, {}
    for name in files:
        path = os.path.join(source, name)
        for key, value in read_safetensors(path).items():
            for prefix in prefixes:
                key = key.removeprefix(prefix)
            tensors[key], origin[key] = value, path
    return tensors, origin


def special_id(config: dict, field: str, vocabulary_size: int, path: str, warnings: list[str]) -> int | None:
    """`config[field]` if it is a token id of the vocabulary; else None, with a warning when it was set.

    Lenient where Hugging Face is: transformers keeps a config's special ids even outside a small
    vocabulary (`GPT2Config` keeps eos 50256 for a 96-token model) and runs the model without them.
    A list (several end ids) gives its first entry; a value that is no integer is a ConvertError.

    Example:
    >>> notes = []
    >>> special_id({"eos_token_id": 50256}, "eos_token_id", 96, "config.json", notes), notes[0][:40]
    (None, 'config.json: eos_token_id 50256 is outsi')
    """
    value = config.get(field)
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConvertError(f"{path}: {field} must be an integer token id, got {value!r}")
    if not 0 <= value < vocabulary_size:
        warnings.append(f"{path}: {field} {value!r} is outside the vocabulary [0, {vocabulary_size}): ignored")
        return None
    return value


class CheckpointTensors:
    """A Hugging Face folder's tensors, taken one at a time with the shape its `config.json` implies.

    One owner for what every converter checks per tensor (present, that shape, floats; returned as
    float32) and for the leftovers: what was never taken is an unexpected tensor, so a checkpoint of
    another architecture is refused instead of half-read.

    Args:
        source: str. The Hugging Face folder (see `hf_tensors`).
        prefixes: tuple of str. Name prefixes dropped from the keys (`"bert."`).
        first: str. A tensor every checkpoint of the family has: errors about missing tensors name its file.

    Example:
    >>> reader = CheckpointTensors("bert-base-uncased", ("bert.",))  # doctest: +SKIP
    >>> reader.take("embeddings.word_embeddings.weight", (30522, 768)).dtype  # doctest: +SKIP
    dtype('float32')
    """

    def __init__(self, source: str, prefixes: tuple[str, ...] = (), first: str = "") -> None:
        self.tensors, self.origin = hf_tensors(source, prefixes)
        self.weights_file = self.origin.get(first, os.path.join(source, HF_WEIGHTS))
        self.used: set[str] = set()

    def take(self, key: str, shape: tuple) -> np.ndarray:
        """The tensor `key` as float32; ConvertError naming the file if missing, of another shape or not floats."""
        if key not in self.tensors:
            raise ConvertError(f"{self.weights_file}: tensor {key!r} is missing")
        value = self.tensors[key]
        if tuple(value.shape) != shape:
            raise ConvertError(
                f"{self.origin[key]}: {key} has shape {tuple(value.shape)}, but config.json implies {shape}"
            )
        if not np.issubdtype(value.dtype, np.floating):
            raise ConvertError(f"{self.origin[key]}: {key} has dtype {value.dtype}, expected floats")
        self.used.add(key)
        return value.astype(np.float32)

    def check_all_used(self, what: str, ignored_suffixes: tuple[str, ...] = ()) -> None:
        """ConvertError naming the first tensor never taken (buffers ending in `ignored_suffixes` aside)."""
        unexpected = sorted(k for k in self.tensors if k not in self.used and not k.endswith(ignored_suffixes))
        if unexpected:
            raise ConvertError(f"{self.origin[unexpected[0]]}: unexpected tensor {unexpected[0]!r} ({what})")


def assign(variable, weights: dict[str, np.ndarray], key: str, source: str) -> None:
    """`variable.assign(weights[key])`, reshaped when only the layout differs (biases (H, D) -> (H, 1, D)).

    Raises:
        ConvertError: the sizes differ (names `source` and the key).

    Example:
    >>> import keras
    >>> variable = keras.Variable(np.zeros((2, 1, 3), "float32"))
    >>> assign(variable, {"bias": np.ones((2, 3), "float32")}, "bias", "model.safetensors")
    >>> float(variable.numpy().sum())
    6.0
    """
    value = weights[key]
    shape = tuple(variable.shape)
    if tuple(value.shape) != shape and value.size == np.prod(shape):
        value = value.reshape(shape)
    if tuple(value.shape) != shape:
        raise ConvertError(f"{source}: {key} has shape {tuple(value.shape)}, the model expects {shape}")
    variable.assign(value)


def check_workdir(workdir: str, overwrite: bool) -> None:
    """ConvertError unless `workdir` is absent, empty, or (with `overwrite`) an earlier tfzoo workdir.

    Example:
    >>> check_workdir("/nonexistent/out", overwrite=False)
    """
    if os.path.exists(workdir) and (not os.path.isdir(workdir) or os.listdir(workdir)):
        if not overwrite:
            raise ConvertError(f"{workdir} already exists and is not empty; pass --overwrite to replace it")
        if not os.path.isfile(RunFolder(workdir).model_path):
            raise ConvertError(f"{workdir} is not a tfzoo workdir (no {MODEL_FILENAME}): not overwriting it")


def write_workdir(workdir: str, config: dict, tokenizer, model) -> None:
    """Writes `config.json`, the tokenizer and `model.keras` into a new folder and renames it to `workdir`.

    Example:
    >>> write_workdir("runs/minilm", run_config, tokenizer, model)  # doctest: +SKIP
    """
    from tfzoo.files import atomic_save_directory  # noqa: PLC0415 (bad input fails before the heavy imports)

    def save(directory: str) -> None:
        folder = RunFolder(directory)
        with open(folder.config_path, "w", encoding="utf-8") as file:
            json.dump(config, file, indent=2, sort_keys=True)
        tokenizer.save(folder.tokenizer_dir)
        model.save(folder.model_path)

    os.makedirs(os.path.dirname(os.path.abspath(workdir)), exist_ok=True)
    atomic_save_directory(save, workdir)  # a new folder beside it, renamed into place


def contract_config(**fields) -> dict:
    """The contract fields of a converted workdir's `config.json` (nothing to train yet), then `fields`.

    Example:
    >>> contract_config(model="gpt")["model"], contract_config(model="gpt")["train_steps"]
    ('gpt', 0)
    """
    return {
        "dataset": "",
        "batch_size": 1,
        "train_steps": 0,
        "eval_every": 1,
        "eval_steps": 1,
        "learning_rate": 0.0,
        "min_learning_rate": 0.0,
        "warmup_steps": 0,
        "weight_decay": 0.0,
        "beta1": 0.9,
        "beta2": 0.999,
        "clip_norm": 1.0,
        "dropout": 0.0,
        "label_smoothing": 0.0,
        "seed": 0,
        "distribution_strategy": "auto",
        "mixed_precision": "none",
        **fields,
    }


def log_warnings(warnings: list[str], emit: Callable[[str], None] | None = None) -> None:
    """Logs each conversion warning (and hands it to `emit`, e.g. the CLI's stderr printer).

    Example:
    >>> log_warnings(["config.json: pad_token_id 9 is outside the vocabulary [0, 5): ignored"], print)
    config.json: pad_token_id 9 is outside the vocabulary [0, 5): ignored
    """
    for warning in warnings:
        LOG.warning(warning)
        if emit is not None:
            emit(warning)
