"""error_log: write log events at or above LogLevel to the error log.

Every log event of the server passes through the `logging` hook; this
plugin is the bundled implementation of it.  ErrorLog says where lines go
(stderr, stdout or a file, reopened on SIGUSR1); LogLevel, per scope, says
which levels are written.  Request traces (TraceHooks On) are always written.
"""

from twisted.logger import LogLevel

from axkit.config import SERVER_ONLY, Directive
from axkit.hooks import DECLINED
from axkit.log import LEVEL_NAMES, format_log_line, level_rank, log_file


def _where(word, ctx):
    if word in ("stdout", "stderr"):
        return word
    from axkit.config.types import path
    from axkit.log import check_log_path

    full = path(word, ctx)
    check_log_path(full)
    return full


_where.label = "stderr|stdout|PATH"


class ErrorLog:
    """Writes log events at or above LogLevel to stderr, stdout or a file."""

    name = "error_log"
    directives = [
        Directive(
            "ErrorLog",
            _where,
            scopes=SERVER_ONLY,
            default="stderr",
            doc="Where error-log lines go: stderr (the default), stdout, or a "
            "file path (relative to the config file; reopened on SIGUSR1).",
        ),
    ]

    def startup(self, config, reactor):
        # Opened before twistd drops root privileges (-u/-g).
        from axkit.log import open_early, scope_values

        open_early(scope_values(config, "errorlog"))

    def hook_logging(self, event, conf):
        level = event.get("log_level", LogLevel.info)
        if event.get("axkit_trace") or level_rank(level) >= level_rank(LEVEL_NAMES[conf.log_level]):
            log_file(conf.error_log).write(format_log_line(event))
        return DECLINED
