"""stderr_log: the old name of error_log (kept so existing configs load)."""

from axkit.log import format_log_line  # noqa: F401  (re-exported)
from axkit.plugins.error_log import ErrorLog


class StderrLog(ErrorLog):
    """Old name of error_log: log events at or above LogLevel to ErrorLog."""

    name = "stderr_log"
