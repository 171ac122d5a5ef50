"""Resumable training state (model variables, optimizer state, step) on disk.

One checkpoint is one `.npz` file `ckpt-<step>.npz` holding every model
variable (weights and dropout seed-generator states) and every optimizer
variable (iteration count, moments), matched back by position and checked by
path and shape. Each file is written to a temporary name and renamed into
place, so a kill leaves either the old set of checkpoints or the new one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import zipfile

import keras
import numpy as np

_PATTERN = re.compile(r"^ckpt-(\d+)\.npz$")


class CheckpointError(ValueError):
    """A checkpoint does not fit the model or optimizer it is restored into."""


class _UnreadableCheckpoint(CheckpointError):
    """A checkpoint file that cannot be read (truncated, corrupt)."""


class Checkpointer:
    """Saves and restores a model and its optimizer as numbered checkpoints.

    Nothing is written (not even the directory) until the first `save`.

    Args:
        directory: str. Folder of the checkpoints, e.g. `workdir/checkpoints`.
        model: keras.Model. A built model.
        optimizer: keras.optimizers.Optimizer. Built (`optimizer.build(...)`)
            before `restore` is called.
        max_to_keep: int. Number of most recent checkpoints kept. Defaults to 3.

    Example:
    >>> import tempfile
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> optimizer = keras.optimizers.AdamW()
    >>> optimizer.build(model.trainable_variables)
    >>> checkpointer = Checkpointer(tempfile.mkdtemp(), model, optimizer)
    >>> path = checkpointer.save(step=10)
    >>> checkpointer.latest_step(), checkpointer.restore()
    (10, 10)
    """

    def __init__(self, directory: str, model: keras.Model, optimizer, max_to_keep: int = 3):
        self.directory = directory
        self.model = model
        self.optimizer = optimizer
        self.max_to_keep = max_to_keep

    def steps(self) -> list[int]:
        """Steps of the checkpoints on disk, oldest first."""
        if not os.path.isdir(self.directory):
            return []
        matches = (_PATTERN.match(name) for name in os.listdir(self.directory))
        return sorted(int(m.group(1)) for m in matches if m)

    def latest_step(self) -> int | None:
        """Step of the newest checkpoint, or None when there is none."""
        steps = self.steps()
        return steps[-1] if steps else None

    def path(self, step: int) -> str:
        return os.path.join(self.directory, f"ckpt-{step:08d}.npz")

    def _variables(self) -> dict[str, list]:
        return {"model": list(self.model.variables), "optimizer": list(self.optimizer.variables)}

    def save(self, step: int) -> str:
        """Writes checkpoint `step` atomically and deletes all but the newest `max_to_keep`."""
        os.makedirs(self.directory, exist_ok=True)
        arrays, manifest = {}, {"step": int(step)}
        for group, variables in self._variables().items():
            manifest[group] = [[v.path, list(v.shape)] for v in variables]
            for i, variable in enumerate(variables):
                arrays[f"{group}/{i}"] = keras.ops.convert_to_numpy(variable)
        arrays["manifest"] = np.array(json.dumps(manifest))
        path = self.path(step)
        temporary = f"{path}.tmp-{os.getpid()}"
        with open(temporary, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
        for old in self.steps()[: -self.max_to_keep]:
            os.remove(self.path(old))
        for name in os.listdir(self.directory):  # left behind by a killed run
            if ".npz.tmp-" in name:
                os.remove(os.path.join(self.directory, name))
        return path

    def restore(self, step: int | None = None) -> int:
        """Loads checkpoint `step` (default: the newest readable one) into the model and optimizer.

        Without a step, an unreadable (truncated, corrupt) checkpoint is skipped
        with a warning naming it, and the one before it is restored.

        Returns:
            int. The restored step.

        Raises:
            CheckpointError: no (readable) checkpoint, or its variables do not match.
        """
        if step is not None:
            return self._restore(step)
        problems = []
        for candidate in reversed(self.steps()):
            try:
                return self._restore(candidate)
            except _UnreadableCheckpoint as error:
                logging.warning("%s; trying the previous checkpoint", error)
                problems.append(str(error))
        if not problems:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        raise CheckpointError(f"no readable checkpoint in {self.directory}: {'; '.join(problems)}")

    def _restore(self, step: int) -> int:
        path = self.path(step)
        if not os.path.exists(path):
            raise CheckpointError(f"no checkpoint for step {step} in {self.directory}")
        try:
            return self._read_and_assign(path)
        except CheckpointError:
            raise
        except (OSError, EOFError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as error:
            raise _UnreadableCheckpoint(f"{path} is unreadable ({' '.join(str(error).split())[:200]})") from None

    def _read_and_assign(self, path: str) -> int:
        with np.load(path, allow_pickle=False) as data:
            manifest = json.loads(str(data["manifest"]))
            values = {}
            for group, variables in self._variables().items():
                saved = manifest[group]
                if len(saved) != len(variables):
                    raise CheckpointError(
                        f"{path} holds {len(saved)} {group} variables but the {group} has "
                        f"{len(variables)}; was it written with a different config?"
                    )
                for i, (variable, (name, shape)) in enumerate(zip(variables, saved)):
                    if list(variable.shape) != shape:
                        raise CheckpointError(
                            f"{path}: {group} variable {name} has shape {tuple(shape)} but "
                            f"{variable.path} has {tuple(variable.shape)}; was it written with a "
                            "different config?"
                        )
                    values[id(variable)] = data[f"{group}/{i}"]
        for variables in self._variables().values():
            for variable in variables:
                variable.assign(values[id(variable)])
        return int(manifest["step"])
