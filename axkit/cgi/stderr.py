"""A CGI program's stderr: to the error log a line at a time, tagged with
the program, a flood logged a batch per reactor turn."""

import collections

from twisted.logger import Logger

log = Logger(namespace="axkit.cgi")

STDERR_LINE = 4096  # longest stderr line logged (the rest is cut)
# stderr lines logged per reactor turn: a flood (one 64 KiB read can hold
# 30,000 lines) is logged a batch at a time, other clients served between
# batches, the program's stderr pipe unread meanwhile (it waits, as for a
# slow disk) -- instead of the whole server stopping for seconds.
STDERR_BATCH = 200


class StderrLogging:
    """CGIRun's part that logs the program's stderr (a mixin)."""

    __slots__ = ()

    def _stderr(self, data):
        buffer = self.stderr_buffer + data if self.stderr_buffer else data
        lines = buffer.split(b"\n")
        self.stderr_buffer = lines.pop()
        if len(self.stderr_buffer) > STDERR_LINE:
            lines.append(self.stderr_buffer)
            self.stderr_buffer = b""
        if self.stderr_backlog is not None:
            self.stderr_backlog.extend(lines)
            return
        if len(lines) > STDERR_BATCH:
            self.stderr_backlog = collections.deque(lines[STDERR_BATCH:])
            del lines[STDERR_BATCH:]
            self._stderr_pipe(False)
            self.reactor.callLater(0, self._stderr_more)
        for line in lines:
            self._log_stderr(line)

    def _stderr_more(self):
        backlog = self.stderr_backlog
        for _ in range(min(STDERR_BATCH, len(backlog))):
            self._log_stderr(backlog.popleft())
        if backlog:
            self.reactor.callLater(0, self._stderr_more)
        else:
            self.stderr_backlog = None
            self._stderr_pipe(True)

    def _stderr_pipe(self, reading):
        process = self.process
        pipe = process.pipes.get(2) if process is not None else None
        if pipe is not None:
            if reading:
                pipe.startReading()
            else:
                pipe.stopReading()

    def _log_stderr(self, line):
        line = line.rstrip(b"\r")
        if len(line) > STDERR_LINE:
            line = line[:STDERR_LINE] + b"..."
        log.error(
            "{script}: {line}",
            script=self.script,
            line=line.decode("utf-8", "replace"),
            request=self.request,
            plugin="cgi",
        )
