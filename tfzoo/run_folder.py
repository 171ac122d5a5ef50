"""The run folder (workdir): the one owner of its layout and of reading it back.

`python -m tfzoo.train` (and `python -m tfzoo.convert`) write a workdir;
`python -m export`, `tfzoo.generate`, `tfzoo.visualize` and `init_from` read
it. Its layout, named only here:

    config.json               the resolved run config
    metrics.jsonl             one JSON object per evaluation
    model.keras               the trained model (inference copy)
    tokenizer/tokenizer.json  the tokenizer (with the vocab.txt / sentencepiece.model it names)
    checkpoints/              resumable `.npz` checkpoints
    tb/                       TensorBoard events
    export/                   what `python -m export` wrote (report.json, artefacts)

Everything but `load_model` reads without TensorFlow (the model's class and
constructor arguments come from the `config.json` inside the `.keras` zip
archive), so bad input fails fast with one line (`RunFolderError`).

Example:
>>> import tempfile
>>> folder = RunFolder(tempfile.mkdtemp())
>>> os.path.basename(folder.model_path), folder.read_metrics()
('model.keras', [])
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

CONFIG_FILENAME = "config.json"
METRICS_FILENAME = "metrics.jsonl"
MODEL_FILENAME = "model.keras"
TOKENIZER_DIRNAME = "tokenizer"
TOKENIZER_FILENAME = "tokenizer.json"
CHECKPOINTS_DIRNAME = "checkpoints"
TENSORBOARD_DIRNAME = "tb"
EXPORT_DIRNAME = "export"
REPORT_FILENAME = "report.json"


class RunFolderError(ValueError):
    """A run folder, or a file in it, is missing or unreadable; one line naming the file and the problem."""


def read_json(path: str, what: str) -> Any:
    """The JSON value in `path`; `RunFolderError` naming `what` and the file if it cannot be read."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except FileNotFoundError:
        raise RunFolderError(f"no {what}: {path} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunFolderError(f"cannot read {what} {path}: {error}") from None


def model_archive_config(path: str) -> tuple[str, dict]:
    """`(class_name, constructor config)` from the `config.json` member of a `.keras` archive; no TensorFlow."""
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("config.json"))
    except (OSError, KeyError, zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunFolderError(f"cannot read {path}: not a Keras model archive ({error})") from None
    config = data.get("config") if isinstance(data, dict) else None
    if not isinstance(config, dict):
        raise RunFolderError(f"{path} has no model config")
    return str(data.get("class_name")), config


def read_metrics_file(path: str) -> list[dict]:
    """The records of a `metrics.jsonl` file ([] when it does not exist); `RunFolderError` on a bad line."""
    if not os.path.isfile(path):
        return []
    records = []
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise RunFolderError(f"{path}:{number}: not JSON ({error.msg})") from None
            if not isinstance(record, dict) or "step" not in record:
                raise RunFolderError(f"{path}:{number}: a record must be a JSON object with a 'step'")
            records.append(record)
    return records


class RunFolder:
    """Paths and readers of one workdir.

    Args:
        workdir: str. The run folder.
    """

    def __init__(self, workdir: str):
        self.workdir = os.fspath(workdir)

    def path(self, *parts: str) -> str:
        return os.path.join(self.workdir, *parts)

    @property
    def config_path(self) -> str:
        return self.path(CONFIG_FILENAME)

    @property
    def metrics_path(self) -> str:
        return self.path(METRICS_FILENAME)

    @property
    def model_path(self) -> str:
        return self.path(MODEL_FILENAME)

    @property
    def tokenizer_dir(self) -> str:
        return self.path(TOKENIZER_DIRNAME)

    @property
    def tokenizer_path(self) -> str:
        return self.path(TOKENIZER_DIRNAME, TOKENIZER_FILENAME)

    @property
    def checkpoints_dir(self) -> str:
        return self.path(CHECKPOINTS_DIRNAME)

    @property
    def tensorboard_dir(self) -> str:
        return self.path(TENSORBOARD_DIRNAME)

    @property
    def export_dir(self) -> str:
        return self.path(EXPORT_DIRNAME)

    @property
    def report_path(self) -> str:
        return self.path(EXPORT_DIRNAME, REPORT_FILENAME)

    def check_exists(self) -> None:
        if not os.path.isdir(self.workdir):
            raise RunFolderError(f"workdir {self.workdir} does not exist")

    def read_config(self) -> dict:
        """The run config (`config.json`) as a dict."""
        config = read_json(self.config_path, "run config")
        if not isinstance(config, dict):
            raise RunFolderError(f"{self.config_path} is not a JSON object; is it a tfzoo run config?")
        return config

    def read_metrics(self) -> list[dict]:
        """The evaluation records of `metrics.jsonl` ([] before the first evaluation)."""
        return read_metrics_file(self.metrics_path)

    def model_config(self) -> tuple[str, dict]:
        """`(class_name, constructor config)` of `model.keras`, without TensorFlow."""
        if not os.path.isfile(self.model_path):
            raise RunFolderError(
                f"no trained model in {self.workdir}: {MODEL_FILENAME} is missing (training writes it when it ends)"
            )
        return model_archive_config(self.model_path)

    def load_tokenizer(self):
        """The run's tokenizer (`tokenizer/tokenizer.json`); numpy only."""
        from tfzoo.data.tokenizers import load_tokenizer  # noqa: PLC0415 (keeps this module import-light)

        try:
            return load_tokenizer(self.tokenizer_path)
        except ValueError as error:
            raise RunFolderError(str(error)) from None

    def load_model(self):
        """Loads `model.keras` with the zoo's classes registered (imports TensorFlow)."""
        if not os.path.isfile(self.model_path):
            self.model_config()  # raises the one-line "no trained model" error
        import keras  # noqa: PLC0415 (TensorFlow only when a model is loaded)

        import tfzoo.models.registry  # noqa: F401, PLC0415 (registers the zoo's classes for deserialization)

        try:
            return keras.saving.load_model(self.model_path, compile=False)
        except Exception as error:  # noqa: BLE001 (any failure to deserialize is one kind of bad input)
            message = " ".join(str(error).split())[:300]
            raise RunFolderError(f"cannot load {self.model_path}: {type(error).__name__}: {message}") from None
