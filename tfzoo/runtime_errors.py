"""Errors of the runtime adapters (`tfzoo.runtimes`) and of reading an export's `report.json`."""

from __future__ import annotations


class RuntimeInputError(ValueError):
    """Bad arguments to an exported model's runtime adapter (shapes, knobs, strategy); one line."""


class ExportReadError(ValueError):
    """No export, an unreadable or newer `report.json`, or an artefact the export lacks; one line."""
