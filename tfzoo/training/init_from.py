"""Start training from another workdir's weights (`--config.init_from=DIR`), e.g. a converted GPT-2.

`load_initial_weights(model, workdir)` copies the weights of `DIR/model.keras`
into a freshly built model of the same architecture, variable by variable in
order, after checking that every shape matches. Only weights move: the
optimizer starts fresh, and a run that resumes from its own checkpoint never
calls this (the checkpoint wins).

A task model with a backbone (`BertClassifier`, `BertMaskedLM`) also starts
from a workdir holding just its backbone (a converted `BertEncoder`) or
another task model around the same backbone: the backbone's weights are
copied and the task head keeps its fresh initialization, as transformers'
`from_pretrained` does for a head the checkpoint lacks. So does a pooler the
source encoder was saved without (`use_pooler=False`). What is left fresh is
logged.
"""

from __future__ import annotations

import logging
import os

from tfzoo.run_folder import RunFolder, RunFolderError, model_archive_config

# Architecture fields that must agree between the run config and the initial model.
ARCHITECTURE_FIELDS = (
    "vocabulary_size",
    "num_layers",
    "num_heads",
    "hidden_dim",
    "intermediate_dim",
    "max_sequence_length",
    "position",
    "activation",
    "norm_first",
    "tie_embeddings",
    "layer_norm_epsilon",
    "num_segments",
    # T5's options of the Transformer (configs/t5_finetune.py sets them as `tfzoo.convert t5` does)
    "norm",
    "use_bias",
    "scale_queries",
    "head_dim",
    "scale_embeddings",
    "scale_decoder_output",
    "decoder_start_id",
)
# Architecture fields a run config sets as is (`--config.NAME=VALUE`; decoder_start_id None is -1).
CONFIG_OPTIONS = ("norm", "scale_queries", "head_dim", "scale_embeddings", "scale_decoder_output", "decoder_start_id")
FRESH_WHEN_ABSENT = ("pooler/",)  # backbone weights a source may lack (an encoder saved without its pooler)


class InitFromError(ValueError):
    """The initial weights cannot be loaded into the model; the message names the file and the problem."""


def _source_config(path: str) -> tuple[str, dict]:
    """`(class_name, constructor config)` of the `.keras` archive at `path`, without TensorFlow."""
    try:
        return model_archive_config(path)
    except RunFolderError as error:
        raise InitFromError(f"init_from: {error}") from None


def _match(model, class_name: str, source: dict):
    """`(target, source_config, source_is_backbone)`: the part of `model` the archive's model fills, or None."""
    backbone = getattr(model, "backbone", None)
    inner = source.get("backbone") if isinstance(source.get("backbone"), dict) else {}
    if class_name == type(model).__name__:
        return model, source, False
    if backbone is not None and class_name == type(backbone).__name__:
        return backbone, source, False
    if backbone is not None and inner.get("class_name") == type(backbone).__name__:
        return backbone, inner.get("config", {}), True
    return None


def _resolve(model, workdir: str):
    path = workdir if workdir.endswith(".keras") else RunFolder(workdir).model_path
    if not os.path.isfile(path):
        raise InitFromError(f"init_from: {path} not found (convert a checkpoint or train into {workdir} first)")
    class_name, source = _source_config(path)
    match = _match(model, class_name, source)
    if match is None:
        raise InitFromError(f"init_from: {path} holds a {class_name}, the run builds a {type(model).__name__}")
    target, source_config, source_is_backbone = match
    wanted = _effective(target.get_config())
    source_config = _effective(source_config)
    for field in ARCHITECTURE_FIELDS:
        if field in wanted and field in source_config and source_config[field] != wanted[field]:
            hint = " (set max_sequence_length in the config)" if field == "max_sequence_length" else ""
            if field in CONFIG_OPTIONS:  # a field configs/t5_finetune.py has: say what to pass
                value = source_config[field]
                hint = f" (pass --config.{field}={-1 if value is None else value})"
            raise InitFromError(
                f"init_from: {path} has {field}={source_config[field]!r} but the run config gives "
                f"{wanted[field]!r}{hint}"
            )
    return path, target, source_is_backbone


def _effective(config: dict) -> dict:
    """`config` with `head_dim` None written as the width it means (hidden_dim // num_heads)."""
    if config.get("head_dim") is None and "hidden_dim" in config and config.get("num_heads"):
        return {**config, "head_dim": config["hidden_dim"] // config["num_heads"]}
    return config


def check_compatible(model, workdir: str) -> str:
    """Returns the path of `workdir/model.keras` after checking its architecture matches `model`'s.

    The archive may hold `model`'s class, or (for a task model) its backbone's class or another
    task model around the same backbone (module docstring).

    Raises:
        InitFromError: the workdir or its model is missing, of another class, or
            of another architecture (the message names the first differing field).
    """
    return _resolve(model, workdir)[0]


def load_initial_weights(model, workdir: str) -> None:
    """Copies the weights of `workdir/model.keras` into `model` (built, same architecture).

    Args:
        model: keras.Model. The freshly built model of the run.
        workdir: str. A workdir holding `model.keras` (or the `.keras` file itself).

    Raises:
        InitFromError: missing file, other architecture, or a variable whose shape differs;
            one line naming the file and the first problem.

    Example:
    >>> load_initial_weights(model, "runs/gpt2")  # doctest: +SKIP
    """
    import keras  # noqa: PLC0415 (the compatibility check above runs without TensorFlow)

    import tfzoo.models.registry  # noqa: F401, PLC0415 (registers the zoo's classes for deserialization)

    path, target, source_is_backbone = _resolve(model, workdir)
    try:
        source = keras.saving.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 (any failure to deserialize is one kind of bad input)
        message = " ".join(str(error).split())[:200]
        raise InitFromError(f"init_from: cannot load {path}: {type(error).__name__}: {message}") from None
    if not model.built:
        model.build((None, None))
    if source_is_backbone:
        source = source.backbone
    theirs = _weights_by_name(source)
    pairs, fresh = [], []
    for name, mine in _weights_by_name(target).items():
        other = theirs.pop(name, None)
        if other is None and name.removeprefix("backbone/").startswith(FRESH_WHEN_ABSENT):
            fresh.append(name)
            continue
        if other is None:
            raise InitFromError(f"init_from: {path} has no weight {name!r}")
        if tuple(mine.shape) != tuple(other.shape):
            raise InitFromError(
                f"init_from: {path}: weight {name} has shape {tuple(other.shape)}, the model expects "
                f"{tuple(mine.shape)}"
            )
        pairs.append((mine, other))
    if theirs:
        raise InitFromError(f"init_from: {path} has weight {next(iter(theirs))!r} that the model lacks")
    for mine, other in pairs:
        mine.assign(other)
    if target is not model:
        logging.info("init_from: %s filled the backbone; the task head starts fresh", path)
    if fresh:
        logging.info("init_from: %s has no %s: freshly initialized", path, ", ".join(fresh))


def _weights_by_name(part) -> dict:
    """`part`'s variables by their path below `part` (`gpt/block_0/...` -> `block_0/...`).

    A backbone's own name (`bert_encoder`, `bert_encoder_1`: it depends on creation order) is written
    `backbone`, so the same architecture gives the same names in every process.
    """
    backbone = getattr(part, "backbone", None)
    inner = {id(variable) for variable in backbone.weights} if backbone is not None else set()
    named = {}
    for variable in part.weights:
        parts = variable.path.split("/")  # `task/backbone/...` or `backbone/...`, as the model was built
        if id(variable) in inner:
            owner, prefix = backbone.name, ["backbone"]
        else:
            owner, prefix = part.name, []
        rest = parts[parts.index(owner) + 1 :] if owner in parts else parts[1:]
        named["/".join(prefix + rest)] = variable
    return named
