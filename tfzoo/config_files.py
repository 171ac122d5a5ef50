"""Loads run config files (Python files with `get_config()`) by path.

`configs/` is a folder of files, not a package: `python -m tfzoo.train`
loads them by path, and a small config builds on a bigger one with
`sibling_config(__file__, "gpt_char")` instead of repeating its fields.
"""

from __future__ import annotations

import importlib.util
import os

import ml_collections


def load_config_file(path: str) -> ml_collections.ConfigDict:
    """Runs the config file at `path` and returns its `get_config()`.

    Config files are Python: load only files you trust.

    Args:
        path: str. A `.py` file defining `get_config() -> ml_collections.ConfigDict`.

    Raises:
        ValueError: the file is missing or has no `get_config`.

    Example:
    >>> config = load_config_file("configs/gpt_tiny.py")  # doctest: +SKIP
    >>> config.model  # doctest: +SKIP
    'gpt'
    """
    if not os.path.isfile(path):
        raise ValueError(f"config file {path} does not exist")
    name = "tfzoo_config_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "get_config", None)):
        raise ValueError(f"config file {path} has no get_config() function")
    return module.get_config()


def sibling_config(file: str, name: str) -> ml_collections.ConfigDict:
    """The config of `<name>.py` in the same folder as `file` (a config file's `__file__`).

    Args:
        file: str. The calling config file's `__file__`.
        name: str. The other config's file name without `.py`.

    Example:
    >>> sibling_config("configs/gpt_tiny.py", "gpt_char").seq_len  # doctest: +SKIP
    128
    """
    return load_config_file(os.path.join(os.path.dirname(os.path.abspath(file)), f"{name}.py"))
