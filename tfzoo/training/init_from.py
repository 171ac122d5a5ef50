"""Start training from another workdir's weights (`--config.init_from=DIR`), e.g. a converted GPT-2.

`load_initial_weights(model, workdir)` copies the weights of `DIR/model.keras`
into a freshly built model of the same architecture, variable by variable in
order, after checking that every shape matches. Only weights move: the
optimizer starts fresh, and a run that resumes from its own checkpoint never
calls this (the checkpoint wins).
"""

from __future__ import annotations

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
)


class InitFromError(ValueError):
    """The initial weights cannot be loaded into the model; the message names the file and the problem."""


def _source_config(path: str) -> tuple[str, dict]:
    """`(class_name, constructor config)` of the `.keras` archive at `path`, without TensorFlow."""
    try:
        return model_archive_config(path)
    except RunFolderError as error:
        raise InitFromError(f"init_from: {error}") from None


def check_compatible(model, workdir: str) -> str:
    """Returns the path of `workdir/model.keras` after checking its architecture matches `model`'s.

    Raises:
        InitFromError: the workdir or its model is missing, of another class, or
            of another architecture (the message names the first differing field).
    """
    path = workdir if workdir.endswith(".keras") else RunFolder(workdir).model_path
    if not os.path.isfile(path):
        raise InitFromError(f"init_from: {path} not found (convert a checkpoint or train into {workdir} first)")
    class_name, source = _source_config(path)
    if class_name != type(model).__name__:
        raise InitFromError(f"init_from: {path} holds a {class_name}, the run builds a {type(model).__name__}")
    target = model.get_config()
    for field in ARCHITECTURE_FIELDS:
        if field in target and field in source and source[field] != target[field]:
            hint = " (set max_sequence_length in the config)" if field == "max_sequence_length" else ""
            raise InitFromError(
                f"init_from: {path} has {field}={source[field]!r} but the run config gives {target[field]!r}{hint}"
            )
    return path


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

    path = check_compatible(model, workdir)
    try:
        source = keras.saving.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 (any failure to deserialize is one kind of bad input)
        message = " ".join(str(error).split())[:200]
        raise InitFromError(f"init_from: cannot load {path}: {type(error).__name__}: {message}") from None
    if not model.built:
        model.build((None, None))
    theirs = {_local_path(w): w for w in source.weights}
    pairs = []
    for mine in model.weights:
        other = theirs.pop(_local_path(mine), None)
        if other is None:
            raise InitFromError(f"init_from: {path} has no weight {_local_path(mine)!r}")
        if tuple(mine.shape) != tuple(other.shape):
            raise InitFromError(
                f"init_from: {path}: weight {_local_path(other)} has shape {tuple(other.shape)}, the model "
                f"expects {tuple(mine.shape)}"
            )
        pairs.append((mine, other))
    if theirs:
        raise InitFromError(f"init_from: {path} has weight {next(iter(theirs))!r} that the model lacks")
    for mine, other in pairs:
        mine.assign(other)


def _local_path(variable) -> str:
    """The variable's path without the model's own name (`gpt/block_0/...` -> `block_0/...`)."""
    return variable.path.split("/", 1)[-1]
