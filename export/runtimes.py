"""The runtime adapters, as the export uses them: they live in `tfzoo.runtimes` (export depends on tfzoo).

Kept so that `from export.runtimes import load_runtime` keeps working; new code imports `tfzoo.runtimes`.
"""

from tfzoo.export_report import read_report
from tfzoo.run_folder import EXPORT_DIRNAME, REPORT_FILENAME
from tfzoo.runtimes import *  # noqa: F403 (this module is the old name of tfzoo.runtimes: all of it)
from tfzoo.runtimes import __all__ as _RUNTIMES_ALL

__all__ = [*_RUNTIMES_ALL, "EXPORT_DIRNAME", "REPORT_FILENAME", "read_report"]
