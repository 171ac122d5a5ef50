"""The runtime adapters, as the export uses them: they live in `tfzoo.runtimes` (export depends on tfzoo).

Kept so that `from export.runtimes import load_runtime` keeps working; new code imports `tfzoo.runtimes`.
"""

from tfzoo.export_report import read_report
from tfzoo.run_folder import EXPORT_DIRNAME, REPORT_FILENAME
from tfzoo.runtimes import (
    RUNTIMES,
    ExportReadError,
    KerasRuntime,
    OnnxRuntime,
    Runtime,
    RuntimeInputError,
    SavedModelRuntime,
    TFLiteRuntime,
    load_runtime,
)

__all__ = [
    "EXPORT_DIRNAME",
    "REPORT_FILENAME",
    "RUNTIMES",
    "ExportReadError",
    "KerasRuntime",
    "OnnxRuntime",
    "Runtime",
    "RuntimeInputError",
    "SavedModelRuntime",
    "TFLiteRuntime",
    "load_runtime",
    "read_report",
]
