"""stderr_log: write log events at or above LogLevel to standard error.

An example of a logger plugin: every log event of the server passes through
the `logging` hook, and this plugin is one implementation of it.
"""

import sys
import time

from twisted.logger import LogLevel, formatEvent

from axkit.config import ANY, Directive, one_of
from axkit.hooks import DECLINED

LEVELS = {"debug": LogLevel.debug, "info": LogLevel.info, "warn": LogLevel.warn,
          "error": LogLevel.error, "crit": LogLevel.critical}
ORDER = [LogLevel.debug, LogLevel.info, LogLevel.warn, LogLevel.error, LogLevel.critical]


def format_log_line(event):
    """One error-log line (plus a traceback when the event carries a failure)."""
    level = event.get("log_level", LogLevel.info)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.get("log_time") or
                                                                time.time()))
    text = formatEvent(event)
    plugin = event.get("plugin")
    where = f"plugin {plugin}" if plugin else event.get("log_namespace", "-")
    line = f"[{when}] [{level.name}] [{where}] {text}\n"
    failure = event.get("log_failure")
    if failure is not None:
        line += failure.getTraceback()
    return line


class StderrLog:
    """Writes log events at or above LogLevel to stderr."""

    name = "stderr_log"
    directives = [
        Directive("LogLevel", one_of(*LEVELS), scopes=ANY, default="info",
                  doc="Least severe level written: debug, info, warn, error or crit."),
    ]

    def hook_logging(self, event, conf):
        level = event.get("log_level", LogLevel.info)
        if ORDER.index(level) >= ORDER.index(LEVELS[conf.log_level]):
            sys.__stderr__.write(format_log_line(event))
            sys.__stderr__.flush()
        return DECLINED
