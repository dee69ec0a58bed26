"""Logging: the `logging` hook router, plugin loggers, and shared log files.

Every log event of the process is a ``twisted.logger`` event.  LogRouter is
installed as the process's log observer (twistd's own observer is replaced
so nothing is written twice): an event that names a request goes through
that request's `logging` chain with its merged config, any other through
the global scope's.  With no logger plugin loaded, events still reach
stderr, so nothing important is lost.

Events carry ``log_level``, ``plugin`` (the plugin's name, when a plugin
logged it or failed) and ``request`` (when it is about one request).  A
plugin gets such a logger with ``PluginLogger("myplugin")``.

Log files are shared by name across plugins and config reloads, and
reopened on SIGUSR1 (``reopen_all``) so logrotate can move them away.  A
log file axkit creates gets LOG_FILE_MODE (0640), whatever the umask
(twistd sets 0077 when it daemonizes, after some files may already be
open); a file that exists keeps its mode.
"""

import os
import sys
import time

from twisted.logger import ILogObserver, Logger, LogLevel
from zope.interface import implementer

from axkit.hooks import PluginError, run_chain

LEVEL_ORDER = (LogLevel.debug, LogLevel.info, LogLevel.warn, LogLevel.error, LogLevel.critical)
LEVEL_NAMES = {
    "debug": LogLevel.debug,
    "info": LogLevel.info,
    "warn": LogLevel.warn,
    "error": LogLevel.error,
    "crit": LogLevel.critical,
}


def level_rank(level):
    try:
        return LEVEL_ORDER.index(level)
    except ValueError:
        return 1


class PluginLogger(Logger):
    """A twisted.logger.Logger whose events name the plugin::

    log = PluginLogger("hello")
    log.info("said hello to {who}", who=name, request=request)
    """

    def __init__(self, plugin_name, namespace=None, source=None, observer=None):
        Logger.__init__(
            self,
            namespace=namespace or f"axkit.plugins.{plugin_name}",
            source=source,
            observer=observer,
        )
        self.plugin_name = plugin_name

    def __get__(self, instance, owner=None):
        # As a class attribute (log = PluginLogger("x")): same name and
        # namespace, with the plugin instance as the event's source.
        return PluginLogger(
            self.plugin_name,
            self.namespace,
            instance if instance is not None else owner,
            self.observer,
        )

    def emit(self, level, format=None, **kwargs):
        kwargs.setdefault("plugin", self.plugin_name)
        Logger.emit(self, level, format, **kwargs)


@implementer(ILogObserver)
class LogRouter:
    """Sends each log event through the `logging` chain of its scope."""

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
            sys.__stderr__.write(
                f"axkit: logger plugin {e.plugin_name!r} failed: {e.failure.getErrorMessage()}\n"
            )
        finally:
            self._busy = False

    def _fallback(self, event):
        if self.fallback_level is None:
            return  # quiet (axkit.testing: events are collected instead)
        level = event.get("log_level", LogLevel.info)
        if level_rank(level) >= level_rank(self.fallback_level) or event.get("axkit_trace"):
            stream = sys.__stderr__
            if stream is not None:
                stream.write(format_log_line(event))
                stream.flush()


def format_log_line(event):
    """One error-log line (plus a traceback when the event carries a failure):

    [2026-11-26 10:15:35] [error] [plugin hello] [client 127.0.0.1] message

    An event with a ``log_tag`` (``log_tag="auth_basic"``) is written as
    Apache 2.4 writes its lines, for tools that read those:

    [2026-11-26 10:15:35] [auth_basic:error] [client 127.0.0.1:50312] message
    """
    from twisted.logger import formatEvent

    level = event.get("log_level", LogLevel.info)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.get("log_time") or time.time()))
    text = formatEvent(event)
    plugin = event.get("plugin")
    request = event.get("request")
    client = getattr(request, "client_address", None) if request is not None else None
    tag = event.get("log_tag")
    if tag:
        # Apache 2.4's own shape, which tools reading Apache's error log
        # (fail2ban's apache-auth filter) match: [module:level] [client ip:port]
        line = f"[{when}] [{tag}:{level.name}] "
        if client:
            line += f"[client {client}:{getattr(request, 'client_port', 0)}] "
    else:
        where = f"plugin {plugin}" if plugin else event.get("log_namespace", "-")
        line = f"[{when}] [{level.name}] [{where}] "
        if client:
            line += f"[client {client}] "
    line += text.replace("\n", "\n  ") + "\n"
    failure = event.get("log_failure")
    if failure is not None:
        line += failure.getTraceback()
    return line


# -- log files ---------------------------------------------------------------

FLUSH_BYTES = 65536
FLUSH_SECONDS = 1.0
# The mode of a log file axkit creates (access and error logs alike): the
# owner writes, its group reads (as Debian's logrotate creates Apache's).
LOG_FILE_MODE = 0o640


def open_log(path):
    """``path`` opened for appending text; created with LOG_FILE_MODE if it
    does not exist (not masked by the umask), else its mode is kept."""
    flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, LOG_FILE_MODE)
    except FileExistsError:
        fd = os.open(path, flags)
    else:
        try:
            os.fchmod(fd, LOG_FILE_MODE)  # (the umask took bits off)
        except OSError:
            pass
    return os.fdopen(fd, "a", encoding="utf-8", errors="backslashreplace")


class LogFile:
    """A log destination: "stdout", "stderr" or a file opened for append.

    A buffered one (the access log) writes at most FLUSH_SECONDS late or
    when FLUSH_BYTES have piled up, so logging costs no system call per
    request; the service flushes every buffered file once a second.
    """

    def __init__(self, where, buffered=False):
        self.where = where
        self.buffered = buffered
        self.buffer = []
        self.size = 0
        self.last_flush = time.monotonic()
        self.stream = None
        self.open()

    def open(self):
        if self.where == "stdout":
            self.stream = sys.__stdout__
        elif self.where == "stderr":
            self.stream = sys.__stderr__
        elif _opener() is not None and _opener().knows(self.where):
            # Privileges were dropped since the start: the root-held log
            # opener opens the file (see axkit/logopener.py).
            fd = _opener().open(self.where)
            self.stream = os.fdopen(fd, "a", encoding="utf-8", errors="backslashreplace")
        else:
            folder = os.path.dirname(self.where)
            if folder:
                os.makedirs(folder, exist_ok=True)
            self.stream = open_log(self.where)

    @property
    def is_file(self):
        return self.where not in ("stdout", "stderr")

    def write(self, line):
        if not self.buffered:
            self._write(line)
            return
        self.buffer.append(line)
        self.size += len(line)
        if self.size >= FLUSH_BYTES or time.monotonic() - self.last_flush >= FLUSH_SECONDS:
            self.flush()

    def flush(self):
        self.last_flush = time.monotonic()
        if self.buffer:
            data, self.buffer, self.size = "".join(self.buffer), [], 0
            self._write(data)

    def _write(self, data):
        stream = self.stream
        if stream is None:
            return
        try:
            stream.write(data)
            stream.flush()
        except (OSError, ValueError):
            pass

    def reopen(self):
        """Flush, close and open the path again (after logrotate moved it).
        If it cannot be opened now (privileges dropped since), the old file
        stays in use and OSError is raised for the caller to report."""
        self.flush()
        if self.is_file:
            old = self.stream
            try:
                self.open()
            except OSError:
                self.stream = old
                raise
            try:
                old.close()
            except OSError:
                pass


_files = {}
# The shared files by path, for a hot path's own first look (read only;
# log_file() makes and registers them).
open_files = _files


def file_paths():
    """The paths of the log files open now (not stdout/stderr)."""
    return [f.where for f in _files.values() if f.is_file]


def _opener():
    from axkit.logopener import active

    return active()


def use_opener(opener):
    """Reopen the files it knows through ``opener`` (an
    axkit.logopener.LogOpener; None: stop)."""
    from axkit.logopener import activate

    activate(opener)


def check_log_path(path):
    """Raise ConfigError unless a log file can be written at ``path`` (the file,
    or the nearest existing folder above it, must be writable)."""
    from axkit.config.errors import ConfigError

    if os.path.isdir(path):
        raise ConfigError(f"{path} is a directory, not a log file")
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            raise ConfigError(f"log file {path} is not writable")
        return
    # As Apache: the folder must exist (a typo would otherwise create a
    # tree somewhere unexpected, or fail later where nobody sees it).
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise ConfigError(f"cannot create log file {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot create log file {path}: folder {folder} is not writable")


def log_file(where, buffered=False):
    """The shared LogFile for ``where`` (a path, "stdout" or "stderr")."""
    f = _files.get(where)
    if f is not None and (f.buffered or not buffered):
        return f  # stdout/stderr or an absolute path, as stored
    key = where if where in ("stdout", "stderr") else os.path.abspath(where)
    f = _files.get(key)
    if f is None:
        f = _files[key] = LogFile(key, buffered)
    elif buffered and not f.buffered:
        f.buffered = True
    return f


def flush_all():
    for f in list(_files.values()):
        f.flush()


def reopen_all():
    """Reopen every log file (SIGUSR1); the paths that could not be reopened
    (they keep their old file) are returned with the reason."""
    failed = []
    for f in list(_files.values()):
        try:
            f.reopen()
        except OSError as e:
            failed.append((f.where, e.strerror or str(e)))
            Logger(namespace="axkit.log").error(
                "cannot reopen log file {path} ({why}); still writing to the old one",
                path=f.where,
                why=e.strerror or str(e),
            )
    return failed


def open_early(paths, buffered=False):
    """Open the log files at ``paths`` now -- before twistd drops root
    privileges (a plugin's ``startup``), so they stay writable after."""
    for where in paths:
        if where not in ("off", None):
            log_file(where, buffered)


def scope_values(config, key):
    """Every value directive ``key`` (lower-case name) is given anywhere in
    ``config``, section by section as written."""
    found = []
    todo = [config.global_scope]
    while todo:
        scope = todo.pop()
        if key in scope.values:
            found.append(scope.values[key])
        todo.extend(scope.sections)  # <Server>s and their sections too
    return found


def close_file(where):
    """Flush and forget ``where`` (tests use this to release a temp file)."""
    key = where if where in ("stdout", "stderr") else os.path.abspath(where)
    f = _files.pop(key, None)
    if f is not None:
        f.flush()
        if f.is_file:
            f.stream.close()
