"""Route every log event through the `logging` hook.

Installed as the process's log observer (twistd's own observer is replaced
so nothing is written twice): an event that names a request goes through
that request's `logging` chain with its merged config, any other through
the global scope's.  With no logger plugin loaded, warnings and worse still
reach stderr, so nothing important is lost.
"""

import sys

from twisted.logger import LogLevel
from zope.interface import implementer
from twisted.logger import ILogObserver

from axkit.hooks import PluginError, run_chain


@implementer(ILogObserver)
class LogRouter:
    def __init__(self, holder, fallback_level=LogLevel.info):
        self.holder = holder
        self.fallback_level = fallback_level
        self._busy = False

    def __call__(self, event):
        if self._busy:
            # A logger that logs: do not recurse; show it plainly.
            self._fallback(event)
            return
        config = self.holder.config if self.holder is not None else None
        if config is None:
            self._fallback(event)
            return
        request = event.get("request")
        if request is not None and getattr(request, "chains", None) is not None:
            chain, conf = request.chains["logging"], request.conf
        else:
            resolved = config.global_resolved
            chain, conf = resolved.chains["logging"], resolved.conf
        if not chain:
            self._fallback(event)
            return
        self._busy = True
        try:
            run_chain(chain, "logging", (event, conf))
        except PluginError as e:
            self._busy = False
            self._fallback(event)
            sys.__stderr__.write(f"axkit: logger plugin {e.plugin_name!r} failed: "
                             f"{e.failure.getErrorMessage()}\n")
        finally:
            self._busy = False

    def _fallback(self, event):
        level = event.get("log_level", LogLevel.info)
        if _rank(level) >= _rank(self.fallback_level):
            from axkit.plugins.stderr_log import format_log_line
            sys.__stderr__.write(format_log_line(event))
            sys.__stderr__.flush()


def _rank(level):
    return [LogLevel.debug, LogLevel.info, LogLevel.warn, LogLevel.error,
            LogLevel.critical].index(level)
