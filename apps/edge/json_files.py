"""Reading the export's `report.json` (and other JSON files) with one-line errors.

The apps use only the exported artefacts (never tfzoo), so they share this; it lives in
`apps/edge`, the app that must run from a copy of its own folder. `read_report` checks the
report's `format_version` (docs/contract.md, "report.json") and `report_knobs` reads its knob
table: each decoding knob's dtype, default and the strategies whose `generate` signature takes it.
The apps keep no knob table of their own.

Example:
>>> report = {"format_version": 2, "knobs": {"top_k": {"dtype": "int32", "default": 0, "strategies": ["sample"]}}}
>>> check_report(report, "report.json", ValueError)
>>> report_knobs(report, "report.json", ValueError)["top_k"].value(None)
0
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

REPORT_FILENAME = "report.json"
REPORT_FORMAT_VERSION = 2  # the newest report.json these apps read
KNOB_DTYPES = ("int32", "float32")


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


def check_report(report: Any, source: str, error: type[Exception]) -> None:
    """Raises `error` (one line naming `source`) unless `report` is a report.json these apps read."""
    if not isinstance(report, dict):
        raise error(f"{source}: expected a JSON object")
    version = report.get("format_version")
    if version is None:
        raise error(f"{source} has no format_version (an older `python -m export` wrote it): re-export the model")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise error(f"{source}: format_version must be a positive integer, got {version!r}")
    if version > REPORT_FORMAT_VERSION:
        raise error(
            f"{source} has format_version {version}; this app reads format_version {REPORT_FORMAT_VERSION}: "
            "use the apps of the tfzoo version that exported it"
        )
    if version < REPORT_FORMAT_VERSION:
        raise error(f"{source} has format_version {version}; this app reads {REPORT_FORMAT_VERSION}: re-export")


def read_report(export_dir: str, error: type[Exception]) -> dict:
    """The checked `report.json` of an export folder; raises `error` with one line when it is missing or unusable."""
    path = os.path.join(export_dir, REPORT_FILENAME)
    missing = f"no {REPORT_FILENAME} in {export_dir}: not a `python -m export` folder (the export writes it there)"
    report = read_json(path, missing=missing, error=error)
    check_report(report, path, error)
    return report


@dataclass(frozen=True)
class Knob:
    """One decoding knob of `report.json`: a scalar input of the exported `generate` signatures.

    Args:
        name: str. The input's name, e.g. "top_k".
        dtype: str. "int32" or "float32".
        default: int or float. The value the export uses when the knob is not given.
        strategies: tuple of str. The decoding strategies whose `generate` signature takes it.

    Example:
    >>> Knob("temperature", "float32", 1.0, ("sample",)).value(2)
    2.0
    """

    name: str
    dtype: str
    default: int | float
    strategies: tuple[str, ...]

    def value(self, given: int | float | None, error: type[Exception] = ValueError) -> int | float:
        """`given` (or the default when None) as a Python int or float of this knob's dtype."""
        value = self.default if given is None else given
        if self.dtype == "float32":
            return float(value)
        if float(value) != int(value):
            raise error(f"--{self.name} must be a whole number (an int32 input), got {given}")
        return int(value)


def report_knobs(report: dict, source: str = REPORT_FILENAME, error: type[Exception] = ValueError) -> dict[str, Knob]:
    """The `knobs` table of a checked report as `{name: Knob}`; raises `error` when it is malformed."""
    table = report.get("knobs")
    if not isinstance(table, dict) or not table:
        raise error(f"{source}: 'knobs' must map each decoding knob to its dtype, default and strategies")
    knobs = {}
    for name, entry in table.items():
        entry = entry if isinstance(entry, dict) else {}
        dtype, default, strategies = entry.get("dtype"), entry.get("default"), entry.get("strategies")
        if dtype not in KNOB_DTYPES:
            raise error(f"{source}: knob {name!r} has dtype {dtype!r}; expected one of {', '.join(KNOB_DTYPES)}")
        number = isinstance(default, (int, float)) and not isinstance(default, bool)
        if not number or (dtype == "int32" and not isinstance(default, int)):
            raise error(f"{source}: knob {name!r} has default {default!r}, not a number of dtype {dtype}")
        if not isinstance(strategies, list) or not all(isinstance(s, str) for s in strategies):
            raise error(f"{source}: knob {name!r} needs 'strategies', a list of strategy names")
        knobs[name] = Knob(name, dtype, default, tuple(strategies))
    return knobs
