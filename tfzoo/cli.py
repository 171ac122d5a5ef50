"""What every tfzoo command line shares: bad input is one `error: ...` line and exit status 2.

Example:
>>> parser = OneLineErrorParser(prog="demo")
>>> _ = parser.add_argument("--steps", type=int)
>>> parser.parse_args(["--steps=x"])  # doctest: +SKIP
error: argument --steps: invalid int value: 'x'
"""

from __future__ import annotations

import argparse
import sys

USAGE_ERROR = 2


def print_error(message: object) -> int:
    """Prints `error: <message>` on one line of stderr (newlines folded) and returns exit status 2."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr, flush=True)
    return USAGE_ERROR


class OneLineErrorParser(argparse.ArgumentParser):
    """An `argparse` parser whose errors are one `error:` line and exit 2, without the usage dump."""

    def error(self, message: str):
        raise SystemExit(print_error(message))
