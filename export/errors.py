"""Errors of the export pipeline."""

from __future__ import annotations


class ExportError(ValueError):
    """Bad input to the export (workdir, flags) or an artefact that cannot be built; one line naming the problem."""


class RuntimeInputError(ValueError):
    """Bad arguments to an exported model's runtime adapter (shapes, knobs, strategy); one line."""
