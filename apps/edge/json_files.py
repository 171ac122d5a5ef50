"""Reading the export's JSON files (`tokenizer.json`, `report.json`) with one-line errors.

The apps use only the exported artefacts (never tfzoo), so they share this; it lives in
`apps/edge`, the app that must run from a copy of its own folder.

Example:
>>> read_json("missing.json", missing="no report", error=ValueError)  # doctest: +SKIP
Traceback (most recent call last):
ValueError: no report
"""

from __future__ import annotations

import json
from typing import Any


def read_json(path: str, *, missing: str, error: type[Exception]) -> Any:
    """The JSON document at `path`; raises `error(missing)` when there is no such file and
    `error("cannot read PATH: ...")` when it cannot be read or parsed."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except FileNotFoundError:
        raise error(missing) from None
    except (OSError, ValueError) as reason:
        raise error(f"cannot read {path}: {reason}") from None
