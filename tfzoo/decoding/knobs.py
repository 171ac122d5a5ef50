"""The decoding knobs: the one table of their names, dtypes, defaults and strategies (numpy only).

Every knob is a scalar run-time input of the decode loop. `Generator`
(`tfzoo.decoding.generator`) takes them as keyword arguments, an exported
`generate` signature as scalar tensor inputs (those of its strategy), the
runtime adapters (`tfzoo.runtimes`) and the generate CLI (`tfzoo.generate`)
read their defaults here, and the export writes them into `report.json`
(`report["knobs"]`, see `tfzoo.export_report`).

Example:
>>> KNOBS_BY_NAME["length_penalty"].default, strategy_knobs("beam")[-1]
(1.0, 'length_penalty')
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

STRATEGIES = ("greedy", "beam", "sample")


@dataclasses.dataclass(frozen=True)
class Knob:
    """One decoding knob.

    Args:
        name: str. The keyword / signature input name.
        dtype: str. "int32" or "float32".
        default: int or float. The value that changes nothing (or the CLI's default length).
        strategies: tuple of str. The strategies whose exported `generate` signature takes it.
        help: str. One line for the CLI's `--help`.
    """

    name: str
    dtype: str
    default: Any
    strategies: tuple[str, ...]
    help: str

    @property
    def numpy_dtype(self) -> type:
        return np.int32 if self.dtype == "int32" else np.float32

    @property
    def exported(self) -> bool:
        """Whether an exported `generate` signature can take it (`min_new_tokens` is `Generator` only)."""
        return bool(self.strategies)


_ALL = STRATEGIES
KNOB_TABLE: tuple[Knob, ...] = (
    Knob("max_new_tokens", "int32", 64, _ALL, "most tokens to add per row"),
    Knob("min_new_tokens", "int32", 0, (), "no end-of-text before this many new tokens (Keras runs only)"),
    Knob("length_penalty", "float32", 1.0, ("beam",), "beam search alpha; 0 disables"),
    Knob("repetition_penalty", "float32", 1.0, _ALL, "CTRL penalty; 1 disables"),
    Knob("no_repeat_ngram_size", "int32", 0, _ALL, "0 disables"),
    Knob("temperature", "float32", 1.0, ("sample",), "sampling temperature"),
    Knob("top_k", "int32", 0, ("sample",), "0 disables"),
    Knob("top_p", "float32", 1.0, ("sample",), "1 disables"),
    Knob("seed", "int32", 0, ("sample",), "sampling seed"),
)
KNOBS_BY_NAME: dict[str, Knob] = {knob.name: knob for knob in KNOB_TABLE}
EXPORTED_KNOBS: tuple[str, ...] = tuple(knob.name for knob in KNOB_TABLE if knob.exported)


def strategy_knobs(strategy: str) -> tuple[str, ...]:
    """The knobs an exported `generate` signature of `strategy` takes, in signature order.

    Example:
    >>> strategy_knobs("greedy")
    ('max_new_tokens', 'repetition_penalty', 'no_repeat_ngram_size')
    """
    order = ("max_new_tokens", "repetition_penalty", "no_repeat_ngram_size")  # the common ones first
    names = [name for name in order if strategy in KNOBS_BY_NAME[name].strategies]
    return tuple(names + [k.name for k in KNOB_TABLE if strategy in k.strategies and k.name not in order])


def knob_defaults() -> dict[str, Any]:
    """`{name: default}` of every knob."""
    return {knob.name: knob.default for knob in KNOB_TABLE}


def report_knobs() -> dict[str, dict[str, Any]]:
    """`report["knobs"]`: every exported knob with its dtype, default and the decoding strategies that take it.

    `strategies` is the table's (whether or not one export carries them; its `model.strategies` says which
    signatures it has), so an app can say which strategy a knob needs.

    Example:
    >>> report_knobs()["length_penalty"]
    {'dtype': 'float32', 'default': 1.0, 'strategies': ['beam']}
    """
    return {
        knob.name: {
            "dtype": knob.dtype,
            "default": knob.default,
            "strategies": list(knob.strategies),
        }
        for knob in KNOB_TABLE
        if knob.exported
    }
