"""Atomic writes: everything lands under a temporary name and is renamed into place."""

from __future__ import annotations

import os
import shutil

import keras


def _temporary(path: str, suffix: str = "") -> str:
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.tmp-{os.getpid()}{suffix}")


def atomic_write_text(path: str, text: str) -> None:
    """Writes `text` to `path` so that readers see the old file or the new one, never a part.

    Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> atomic_write_text(path, "hello")
    >>> open(path).read()
    'hello'
    """
    temporary = _temporary(path)
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def atomic_save_model(model: keras.Model, path: str) -> None:
    """`model.save(path)` through a temporary `.keras` file and a rename."""
    temporary = _temporary(path, suffix=".keras")
    model.save(temporary)
    os.replace(temporary, path)


def atomic_save_directory(save, directory: str) -> None:
    """Calls `save(temporary_directory)`, then swaps the result in for `directory`.

    Args:
        save: callable taking a directory path, e.g. `tokenizer.save`.
        directory: str. Final location; an existing one is replaced.
    """
    temporary = _temporary(directory)
    shutil.rmtree(temporary, ignore_errors=True)
    os.makedirs(temporary)
    save(temporary)
    old = _temporary(directory, suffix=".old")
    if os.path.exists(directory):
        os.replace(directory, old)
    os.replace(temporary, directory)
    shutil.rmtree(old, ignore_errors=True)
