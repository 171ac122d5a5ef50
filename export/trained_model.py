"""What a training run left in its workdir, as the export reads it: `RunFolder` plus the model's kind.

`inspect_workdir(workdir)` reads and checks everything without TensorFlow
(the model's class and constructor arguments come from the `config.json`
inside the `.keras` archive, `tfzoo.run_folder`; the class names its kind,
`tfzoo.kinds`), so bad input fails fast with one line; `load_model()` then
loads the Keras model.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from export.errors import ExportError
from tfzoo.kinds import ModelKind, ModelKindError, kind_named, kind_of_class, model_classes
from tfzoo.run_folder import CONFIG_FILENAME, RunFolder, RunFolderError, read_json


@dataclasses.dataclass
class TrainedModel:
    """What the export needs from a workdir.

    Args:
        workdir: str. The run folder.
        name: str. The model name (`config.model`, e.g. "gpt"): names the artefacts.
        config: dict. The resolved run config (`config.json`).
        model_config: dict. The model's constructor arguments (from `model.keras`; a BERT task
            model's: its backbone's, `ModelKind.architecture`).
        tokenizer: a tfzoo tokenizer (`tokenizer/tokenizer.json`).
        tokenizer_path: str. Path of `tokenizer.json`.
        model_path: str. Path of `model.keras`.
        kind: str. The model kind's name (`tfzoo.kinds`, e.g. `decoder` for GPT).
    """

    workdir: str
    name: str
    config: dict
    model_config: dict
    tokenizer: Any
    tokenizer_path: str
    model_path: str
    kind: str
    model: Any = None

    @property
    def model_kind(self) -> ModelKind:
        """The kind: bound to the model once it is loaded, else its runtime side."""
        return kind_named(self.kind) if self.model is None else type(kind_named(self.kind))(self.model)

    @property
    def max_sequence_length(self) -> int:
        return int(self.model_config["max_sequence_length"])

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        """(height, width, channels) of the model's images; None for text models."""
        return kind_named(self.kind).image_shape(self.model_config)

    @property
    def position(self) -> str:
        return str(self.model_config.get("position", ""))

    def load_model(self):
        """Loads `model.keras` (imports TensorFlow); returns and keeps the model.

        Raises:
            ExportError: the archive cannot be loaded, or the model lacks a method its kind needs.
        """
        try:
            model = RunFolder(self.workdir).load_model()
        except RunFolderError as error:
            raise ExportError(str(error)) from None
        problem = kind_named(self.kind).check_model(model, self.model_path)
        if problem:
            raise ExportError(f"{problem}; export supports {_supported()} models")
        self.model = model
        return model


def _supported() -> str:
    """The model class names `python -m export` builds: every kind's (`tfzoo.kinds.model_classes`)."""
    return ", ".join(model_classes())


def _check_model_config(path: str, class_name: str, config: dict) -> tuple[str, dict]:
    """`(kind name, architecture)` of `class_name`; `ExportError` if no kind adapts it or its config lacks a size."""
    try:
        kind = kind_of_class(class_name)
    except ModelKindError:
        raise ExportError(
            f"{path} holds a {class_name}; export supports {_supported()} "
            "(generative models with a KV cache, BERT encoders and speech synthesizers)"
        ) from None
    config = kind.architecture(config)
    for field in ("vocabulary_size", "num_layers", "num_heads", "hidden_dim", "max_sequence_length"):
        if not isinstance(config.get(field), int):
            raise ExportError(f"{path}: {class_name} has no integer {field!r}; export supports {_supported()} models")
    return kind.name, config


def inspect_workdir(workdir: str) -> TrainedModel:
    """Reads `config.json`, `tokenizer/tokenizer.json` and the architecture in `model.keras`; no TensorFlow.

    Args:
        workdir: str. A folder written by `python -m tfzoo.train`.

    Raises:
        ExportError: the folder, a file or the model is missing or unusable (one line).

    Example:
    >>> trained = inspect_workdir("runs/gpt_char")  # doctest: +SKIP
    >>> trained.name, trained.max_sequence_length  # doctest: +SKIP
    ('gpt', 128)
    """
    folder = RunFolder(workdir)
    try:
        folder.check_exists()
        if not os.path.isfile(folder.model_path):
            folder.model_config()  # the one-line "no trained model" error
        if not os.path.isfile(folder.config_path):
            raise ExportError(f"no run config in {workdir}: {CONFIG_FILENAME} is missing")
        config = read_json(folder.config_path, "run config")
        if not isinstance(config, dict) or not isinstance(config.get("model"), str) or not config["model"]:
            raise ExportError(f"{folder.config_path} has no 'model' name; is it a tfzoo run config?")
        if not config["model"].replace("_", "").replace("-", "").isalnum():
            raise ExportError(f"{folder.config_path}: model name {config['model']!r} cannot name files")
        tokenizer = folder.load_tokenizer()
        class_name, model_config = folder.model_config()
    except RunFolderError as error:
        raise ExportError(str(error)) from None
    kind, model_config = _check_model_config(folder.model_path, class_name, model_config)
    if model_config["vocabulary_size"] != tokenizer.vocabulary_size:
        raise ExportError(
            f"{folder.model_path} has vocabulary_size {model_config['vocabulary_size']} but "
            f"{folder.tokenizer_path} has {tokenizer.vocabulary_size} tokens"
        )
    return TrainedModel(
        workdir=workdir,
        name=config["model"],
        config=config,
        model_config=model_config,
        tokenizer=tokenizer,
        tokenizer_path=folder.tokenizer_path,
        model_path=folder.model_path,
        kind=kind,
    )
