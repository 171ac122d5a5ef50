"""Atomic writes: everything lands under a temporary name and is renamed into place.

The one place tfzoo writes files from (training, tokenizers, plots), so that a
`kill -9` at any moment leaves the previous good file, never a part of one.
Imports nothing heavy (the tokenizers use it without TensorFlow).
"""

from __future__ import annotations

import os
import shutil


def temporary_path(path: str, suffix: str = "") -> str:
    """A hidden sibling of `path` to write before renaming: `.NAME.tmp-<pid><suffix>`.

    Example:
    >>> temporary_path("/a/b.json").startswith("/a/.b.json.tmp-")
    True
    """
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.tmp-{os.getpid()}{suffix}")


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Writes `data` to `path` so that readers see the old file or the new one, never a part.

    Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.bin")
    >>> atomic_write_bytes(path, b"hi")
    >>> open(path, "rb").read()
    b'hi'
    """
    temporary = temporary_path(path)
    try:
        with open(temporary, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def atomic_write_text(path: str, text: str) -> None:
    """Writes `text` to `path` so that readers see the old file or the new one, never a part.

    Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> atomic_write_text(path, "hello")
    >>> open(path).read()
    'hello'
    """
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_model(model, path: str) -> None:
    """`model.save(path)` (a `keras.Model`) through a temporary `.keras` file and a rename."""
    temporary = temporary_path(path, suffix=".keras")
    try:
        model.save(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def atomic_save_directory(save, directory: str) -> None:
    """Calls `save(temporary_directory)`, then swaps the result in for `directory`.

    Two renames: a kill between them leaves the previous folder at
    `.NAME.tmp-<pid>.old` and none at `directory` (POSIX has no atomic swap of
    two folders); a kill anywhere else leaves the old or the new folder whole.

    Args:
        save: callable taking a directory path, e.g. `tokenizer.save`.
        directory: str. Final location; an existing one is replaced.
    """
    temporary = temporary_path(directory)
    shutil.rmtree(temporary, ignore_errors=True)
    os.makedirs(temporary)
    try:
        save(temporary)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    old = temporary_path(directory, suffix=".old")
    if os.path.exists(directory):
        os.replace(directory, old)
    os.replace(temporary, directory)
    shutil.rmtree(old, ignore_errors=True)
