"""access_log: one line per response in Combined Log Format.

Lines are buffered and written at most a second late (or when 64 KiB have
piled up), so logging costs no system call per request.
"""

import sys
import time

from axkit.config import Directive, NOT_FILES, string
from axkit.hooks import DECLINED

FLUSH_BYTES = 65536


class _Sink:
    """A buffered log destination: stdout, stderr or a file opened for append."""

    def __init__(self, where):
        self.where = where
        self.buffer = []
        self.size = 0
        self.timer = None
        if where == "stdout":
            self.stream = sys.__stdout__
        elif where == "stderr":
            self.stream = sys.__stderr__
        else:
            self.stream = open(where, "a", encoding="utf-8", errors="backslashreplace")

    def write(self, line):
        self.buffer.append(line)
        self.size += len(line)
        if self.size >= FLUSH_BYTES:
            self.flush()
        elif self.timer is None:
            from twisted.internet import reactor
            self.timer = reactor.callLater(1.0, self.flush)

    def flush(self):
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
        if self.buffer:
            data, self.buffer, self.size = "".join(self.buffer), [], 0
            try:
                self.stream.write(data)
                self.stream.flush()
            except (OSError, ValueError):
                pass


_time_cache = [0, ""]


def clf_time(now):
    second = int(now)
    if second != _time_cache[0]:
        _time_cache[0] = second
        _time_cache[1] = time.strftime("[%d/%b/%Y:%H:%M:%S +0000]", time.gmtime(second))
    return _time_cache[1]


def _quote(value):
    if value is None:
        return "-"
    return value.replace("\\", "\\\\").replace('"', '\\"')


class AccessLog:
    """Writes a Combined Log Format line for every response."""

    name = "access_log"
    directives = [
        Directive("AccessLog", string, scopes=NOT_FILES, default="stdout",
                  doc="Where access lines go: stdout, stderr, or a file path "
                      "(relative paths are taken from the working directory)."),
    ]

    def __init__(self):
        self.sinks = {}

    def sink(self, where):
        sink = self.sinks.get(where)
        if sink is None:
            sink = self.sinks[where] = _Sink(where)
        return sink

    def hook_response_sent(self, request, conf):
        headers = request.headers
        line = (f'{request.client_address} - {request.user or "-"} '
                f'{clf_time(request.started)} '
                f'"{_quote(request.method)} {_quote(request.target)} HTTP/{request.version}" '
                f'{request.status} {request.bytes_sent or "-"} '
                f'"{_quote(headers.get("referer"))}" "{_quote(headers.get("user-agent"))}"\n')
        self.sink(conf.access_log).write(line)
        return DECLINED

    def flush(self):
        for sink in self.sinks.values():
            sink.flush()
