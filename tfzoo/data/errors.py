"""The data package's error: a dataset spec or its data is unusable.

In its own module so that every data module (text corpora, the synthetic
tasks, the input pipelines) can raise it without importing another.

Example:
>>> str(DatasetError("bad\\nspec"))
'bad\\\\nspec'
"""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset spec or its data is unusable; the message is one line."""

    def __init__(self, message: str):
        # One line, whatever the spec or value quoted in it holds (a path with a newline, a ConfigDict's repr).
        super().__init__(str(message).replace("\r", "\\r").replace("\n", "\\n"))
