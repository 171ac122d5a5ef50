"""Errors of the export pipeline (the runtime adapters' own errors are in `tfzoo.runtime_errors`)."""

from __future__ import annotations

from tfzoo.runtime_errors import RuntimeInputError

__all__ = ["ExportError", "RuntimeInputError"]


class ExportError(ValueError):
    """Bad input to the export (workdir, flags) or an artefact that cannot be built; one line naming the problem."""
