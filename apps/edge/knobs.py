"""The decoding knobs on the apps' command lines and in the inputs they feed, typed by `report.json`.

The flags are part of the apps' CLIs; their dtypes and defaults are not kept here but read from
the export's knob table (`apps.edge.json_files.report_knobs`), so an app feeds each exported
`generate` signature what the export says it takes.

Example:
>>> import numpy as np
>>> from apps.edge.json_files import Knob
>>> table = {"top_k": Knob("top_k", "int32", 0, ("sample",)), "top_p": Knob("top_p", "float32", 1.0, ("sample",))}
>>> knob_inputs(table, ["token_ids", "top_k", "top_p"], {"top_k": 5}, ValueError)
{'top_k': np.int32(5), 'top_p': np.float32(1.0)}
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping

import numpy as np

from apps.edge.json_files import Knob

# The knob flags of the apps' CLIs (besides --max_new_tokens, which every app declares itself).
KNOB_FLAGS = ("length_penalty", "repetition_penalty", "no_repeat_ngram_size", "temperature", "top_k", "top_p", "seed")
NUMPY_DTYPES = {"int32": np.int32, "float32": np.float32}


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)  # argparse turns a ValueError into "invalid _number value"


def add_knob_flags(parser: argparse.ArgumentParser, names: Iterable[str] = KNOB_FLAGS) -> None:
    """Adds `--NAME` for each knob, a number defaulting to None (the export's default, from report.json)."""
    for name in names:
        parser.add_argument(f"--{name}", type=_number, default=None, metavar="N", help="default: from report.json")


def given_knobs(args: argparse.Namespace, names: Iterable[str] = KNOB_FLAGS) -> dict[str, int | float]:
    """The knob flags that were given on the command line."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def knob_inputs(
    knobs: Mapping[str, Knob], input_names: Iterable[str], given: Mapping, error: type[Exception]
) -> dict[str, np.generic]:
    """A scalar numpy input for every knob among `input_names`: the given value or the report's default."""
    return {
        name: NUMPY_DTYPES[knobs[name].dtype](knobs[name].value(given.get(name), error))
        for name in input_names
        if name in knobs
    }


# The int32 table inputs of the exported `generate` signatures (docs/contract.md): one token sequence per
# row, left-aligned, padded with -1; an all -1 table is "none". Their shapes are the export's
# (`report.model.sequence_shapes`, or the interpreter's input details).
SEQUENCE_INPUTS = ("stop_sequences", "banned_sequences")


def sequence_table(name: str, sequences, shape, error: type[Exception]) -> np.ndarray:
    """Token-id sequences (or None) -> the int32 `shape` table padded with -1; one-line `error`s.

    Example:
    >>> sequence_table("stop_sequences", [[10, 4]], (2, 3), ValueError).tolist()
    [[10, 4, -1], [-1, -1, -1]]
    """
    count, width = (int(n) for n in shape)
    rows = [list(row) for row in (sequences or [])]
    if len(rows) > count:
        raise error(f"{len(rows)} {name} given; this export takes at most {count} (re-export to change it)")
    table = np.full((count, width), -1, np.int32)
    for index, row in enumerate(rows):
        if not row:
            raise error(f"{name}[{index}] is empty: a sequence needs at least one token")
        if len(row) > width:
            raise error(f"{name}[{index}] is {len(row)} tokens; this export takes at most {width} per sequence")
        if any(int(t) < 0 for t in row):
            raise error(f"{name}[{index}] has a negative token id")
        table[index, : len(row)] = row
    return table


def sequence_inputs(
    input_shapes: Mapping[str, Iterable[int]], given: Mapping, error: type[Exception]
) -> dict[str, np.ndarray]:
    """A table for every sequence input among `input_shapes` (`{name: shape}` of the signature): the given
    sequences, or none (all -1). Sequences given for an export without the input are an `error`."""
    for name in SEQUENCE_INPUTS:
        if given.get(name) and name not in input_shapes:
            raise error(f"this export has no {name} input (exported before it): re-export the model")
    return {
        name: sequence_table(name, given.get(name), input_shapes[name], error)
        for name in SEQUENCE_INPUTS
        if name in input_shapes
    }
