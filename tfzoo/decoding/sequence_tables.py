"""The stop-sequence and banned-sequence tables on the numpy side: padding, checks, the exported shapes.

A table is int32 `[num_sequences, max_sequence_tokens]`, one token sequence per row, left-aligned
and padded with `PAD` (-1); an all-`PAD` table means none. What the graph does with them:
`tfzoo.decoding.sequences` (TensorFlow); this module is numpy only, for the runtimes and apps.

Example:
>>> pad_sequences([[3, 4], [7]], (2, 3)).tolist()
[[3, 4, -1], [7, -1, -1]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PAD = -1
SEQUENCE_OPTIONS = ("stop_sequences", "banned_sequences")
# The exported tables' shapes ([sequences, tokens per sequence]) unless `python -m export` is told otherwise.
DEFAULT_SHAPES = {"stop_sequences": (4, 16), "banned_sequences": (16, 16)}


def empty_table(shape: Sequence[int]) -> np.ndarray:
    """An all-`PAD` int32 table of `shape`: no sequence (what callers feed for "none")."""
    return np.full(tuple(int(n) for n in shape), PAD, np.int32)


def pad_sequences(
    sequences,
    shape: Sequence[int] | None = None,
    *,
    name: str = "stop_sequences",
    vocabulary_size: int | None = None,
    error: type[Exception] = ValueError,
) -> np.ndarray:
    """Token sequences -> an int32 table padded with `PAD`; checked, with one-line `error`s.

    Args:
        sequences: a list of token-id lists, or an int table already padded with `PAD`, or None.
        shape: `(num_sequences, max_tokens)` to pad to (an export's fixed shape), or None (as small
            as fits, at least (1, 1)).
        name: str. The option's name, for the messages.
        vocabulary_size: int or None. Ids must be below it when given.
        error: the exception class of the messages. Defaults to ValueError.

    Example:
    >>> pad_sequences([[5]], name="banned_sequences").tolist()
    [[5]]
    """
    rows = []
    if isinstance(sequences, np.ndarray):
        if sequences.ndim != 2:
            raise error(f"{name} must be a 2-D table of token ids, got shape {sequences.shape}")
        items = [[t for t in row if t != PAD] for row in sequences.tolist()]
        items = [row for row in items if row]
    elif sequences is None:
        items = []
    elif isinstance(sequences, (str, bytes)) or not hasattr(sequences, "__iter__"):
        raise error(f"{name} must be a list of token-id sequences, got {sequences!r}")
    else:
        items = list(sequences)
    for index, row in enumerate(items):
        if isinstance(row, (str, bytes)) or not hasattr(row, "__len__"):
            raise error(f"{name}[{index}] must be a sequence of token ids, got {row!r}")
        try:
            ids = [int(t) for t in row]
        except (TypeError, ValueError):
            raise error(f"{name}[{index}] must hold integer token ids, got {list(row)!r}") from None
        if not ids:
            raise error(f"{name}[{index}] is empty: a sequence needs at least one token")
        bad = [t for t in ids if t < 0 or (vocabulary_size is not None and t >= vocabulary_size)]
        if bad:
            limit = f"[0, {vocabulary_size})" if vocabulary_size is not None else "the non-negative ids"
            raise error(f"{name}[{index}] has token id {bad[0]} outside {limit}")
        rows.append(ids)
    if shape is None:
        shape = (max(len(rows), 1), max([len(r) for r in rows] + [1]))
    count, width = int(shape[0]), int(shape[1])
    if len(rows) > count:
        raise error(f"{len(rows)} {name} given; this model takes at most {count} (re-export to change it)")
    for index, row in enumerate(rows):
        if len(row) > width:
            raise error(
                f"{name}[{index}] is {len(row)} tokens; this model takes at most {width} per sequence "
                "(re-export to change it)"
            )
    table = empty_table((count, width))
    for index, row in enumerate(rows):
        table[index, : len(row)] = row
    return table
