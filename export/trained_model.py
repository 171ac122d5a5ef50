"""What a training run left in its workdir: config, tokenizer, model.

`inspect_workdir(workdir)` reads and checks everything without TensorFlow
(the model's architecture comes from the `config.json` inside the `.keras`
zip archive), so bad input fails fast with one line; `load_model()` then
loads the Keras model.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from typing import Any

from export.errors import ExportError

CONFIG_FILENAME = "config.json"
MODEL_FILENAME = "model.keras"
TOKENIZER_PATH = os.path.join("tokenizer", "tokenizer.json")
# Class name in `model.keras` -> model kind (`export.model_kinds`): what the export adapts to.
SUPPORTED_MODELS = {"GPT": "decoder", "Transformer": "seq2seq", "Captioner": "captioner"}
_METHODS = {
    "decoder": ("init_cache", "call_with_cache"),
    "seq2seq": ("init_cache", "call_with_cache", "encode", "cross_attention_cache", "init_decoding_cache",
                "decoding_step"),
    "captioner": ("init_cache", "call_with_cache", "encode", "cross_attention_cache", "init_decoding_cache",
                  "decoding_step"),
}  # fmt: skip


@dataclasses.dataclass
class TrainedModel:
    """What the export needs from a workdir.

    Args:
        workdir: str. The run folder.
        name: str. The model name (`config.model`, e.g. "gpt"): names the artefacts.
        config: dict. The resolved run config (`config.json`).
        model_config: dict. The model's constructor arguments (from `model.keras`).
        tokenizer: a tfzoo tokenizer (`tokenizer/tokenizer.json`).
        tokenizer_path: str. Path of `tokenizer.json`.
        model_path: str. Path of `model.keras`.
        kind: str. "decoder" (GPT), "seq2seq" (Transformer) or "captioner" (Captioner).
    """

    workdir: str
    name: str
    config: dict
    model_config: dict
    tokenizer: Any
    tokenizer_path: str
    model_path: str
    kind: str = "decoder"
    model: Any = None

    @property
    def max_sequence_length(self) -> int:
        return int(self.model_config["max_sequence_length"])

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        """(height, width, channels) of the captioner's images; None for text models."""
        if self.kind != "captioner":
            return None
        size = int(self.model_config.get("image_size", 32))
        return (size, size, int(self.model_config.get("num_channels", 3)))

    @property
    def position(self) -> str:
        return str(self.model_config.get("position", ""))

    def load_model(self):
        """Loads `model.keras` (imports TensorFlow); returns and keeps the model.

        Raises:
            ExportError: the archive cannot be loaded, or the model has no KV cache.
        """
        import keras  # noqa: PLC0415

        import tfzoo.models.captioner  # noqa: F401, PLC0415 (registers the zoo's classes for deserialization)
        import tfzoo.models.registry  # noqa: F401, PLC0415
        import tfzoo.models.transformer  # noqa: F401, PLC0415

        try:
            model = keras.saving.load_model(self.model_path, compile=False)
        except Exception as error:  # noqa: BLE001 (any failure to deserialize is one kind of bad input)
            message = " ".join(str(error).split())[:300]
            raise ExportError(f"cannot load {self.model_path}: {type(error).__name__}: {message}") from None
        for method in _METHODS[self.kind]:
            if not callable(getattr(model, method, None)):
                raise ExportError(
                    f"{type(model).__name__} in {self.model_path} has no {method}(); export supports "
                    f"{', '.join(SUPPORTED_MODELS)} models with a KV cache"
                )
        self.model = model
        return model


def _read_json(path: str, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ExportError(f"cannot read {what} {path}: {error}") from None


def _read_model_config(path: str) -> tuple[str, dict]:
    """The model's class name and `config` from the `config.json` member of a `.keras` archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("config.json"))
    except (OSError, KeyError, zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ExportError(f"cannot read {path}: not a Keras model archive ({error})") from None
    config = data.get("config") if isinstance(data, dict) else None
    if not isinstance(config, dict):
        raise ExportError(f"{path} has no model config")
    if data.get("class_name") not in SUPPORTED_MODELS:
        raise ExportError(
            f"{path} holds a {data.get('class_name')}; export supports {', '.join(SUPPORTED_MODELS)} "
            "(generative models with a KV cache)"
        )
    for field in ("vocabulary_size", "num_layers", "num_heads", "hidden_dim", "max_sequence_length"):
        if not isinstance(config.get(field), int):
            raise ExportError(
                f"{path}: {data.get('class_name')} has no integer {field!r}; export supports "
                f"{', '.join(SUPPORTED_MODELS)} models with a KV cache"
            )
    return data["class_name"], config


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
    if not os.path.isdir(workdir):
        raise ExportError(f"workdir {workdir} does not exist")
    model_path = os.path.join(workdir, MODEL_FILENAME)
    if not os.path.isfile(model_path):
        raise ExportError(
            f"no trained model in {workdir}: {MODEL_FILENAME} is missing (training writes it when it ends)"
        )
    config_path = os.path.join(workdir, CONFIG_FILENAME)
    if not os.path.isfile(config_path):
        raise ExportError(f"no run config in {workdir}: {CONFIG_FILENAME} is missing")
    config = _read_json(config_path, "run config")
    if not isinstance(config, dict) or not isinstance(config.get("model"), str) or not config["model"]:
        raise ExportError(f"{config_path} has no 'model' name; is it a tfzoo run config?")
    if not config["model"].replace("_", "").replace("-", "").isalnum():
        raise ExportError(f"{config_path}: model name {config['model']!r} cannot name files")
    from tfzoo.data.tokenizer import load_tokenizer  # noqa: PLC0415 (numpy only)

    tokenizer_path = os.path.join(workdir, TOKENIZER_PATH)
    try:
        tokenizer = load_tokenizer(tokenizer_path)
    except ValueError as error:
        raise ExportError(str(error)) from None
    class_name, model_config = _read_model_config(model_path)
    if model_config["vocabulary_size"] != tokenizer.vocabulary_size:
        raise ExportError(
            f"{model_path} has vocabulary_size {model_config['vocabulary_size']} but {tokenizer_path} has "
            f"{tokenizer.vocabulary_size} tokens"
        )
    return TrainedModel(
        workdir=workdir,
        name=config["model"],
        config=config,
        model_config=model_config,
        tokenizer=tokenizer,
        tokenizer_path=tokenizer_path,
        model_path=model_path,
        kind=SUPPORTED_MODELS[class_name],
    )
