"""``wsgi.input``: the request body, streamed to the application thread.

The reactor feeds the body as it arrives (``request.stream_body``); the
application reads it with ``read()``, ``read(n)``, ``readline()``,
``readlines()`` or by iterating, from its own thread.  Reads wait for
data, and end with ``b""`` at the body's end -- never waiting past it
(Content-Length or the last chunk of a chunked body: ``wsgi.input_terminated``).

Memory stays bounded whatever the sizes: up to MEMORY unread bytes are kept
in memory, more go to an unlinked temporary file (written at one offset by
the reactor, read at another by the application: ``pwrite``/``pread``), and
past SPOOL unread bytes the client is paused until the application has read
half of them.  A client that sends faster than the application reads thus
finishes early, a large upload never sits whole in memory, and a client
that never stops is held back by TCP.

``read(n)`` returns n bytes unless the body ends first, as a file does
(older code reads exactly CONTENT_LENGTH bytes in fixed pieces).  A body
that can no longer complete (the client left, the engine answered 400/408/
413 in the middle) raises ``ClientDisconnected`` instead of ending early:
an application must never take a cut upload as whole.

``100 Continue`` goes out when the application first reads, not before: an
application that refuses without reading never makes the client send.
"""

import collections
import os
import tempfile
import threading

MEMORY = 256 * 1024  # unread bytes kept in memory
SPOOL = 16 * 1024 * 1024  # unread bytes (memory + file) before the client is paused
LINE_READ = 65536


class ClientDisconnected(OSError):
    """The request body ended before it was complete."""


class WouldBlock(RuntimeError):
    """A read that would wait, on the reactor thread (InlinePool in tests)."""


class Input:
    def __init__(self, request, call, threaded=True):
        self.request = request
        self._call = call  # run a function on the reactor thread
        self._threaded = threaded
        self._cond = threading.Condition(threading.Lock())
        self._memory = collections.deque()
        self._memory_bytes = 0
        self._fd = None  # the spool file, once needed
        self._spool_write = 0  # its offsets (spooling while write > read)
        self._spool_read = 0
        self._ended = False  # the body is complete
        self._broken = None  # why it can never complete
        self._paused = False
        self._started = False  # stream_body called (reactor side)
        self._asked = False  # start asked for (application side)
        self._closed = False  # the application is done with it
        self._left = b""  # application side: bytes taken, not returned
        self._on_end = None
        self._pause_at = SPOOL  # unread bytes past which the client is paused
        self._length_env = None

    # -- reactor side ------------------------------------------------------------

    def start(self):
        """Take the body from the engine (sends 100 Continue if asked for)."""
        if self._started or self._closed:
            return
        self._started = True
        request = self.request
        if request.finished:
            self.broken("the response ended before the body was read")
            return
        request.stream_body(self.feed, self.end)

    def feed(self, data):
        pause = False
        with self._cond:
            if self._closed:
                return
            if self._spool_write > self._spool_read or self._memory_bytes + len(data) > MEMORY:
                if self._fd is None:
                    f = tempfile.TemporaryFile(prefix="axkit-wsgi-body-")
                    self._fd = os.dup(f.fileno())
                    f.close()
                os.pwrite(self._fd, data, self._spool_write)
                self._spool_write += len(data)
            else:
                self._memory.append(data)
                self._memory_bytes += len(data)
            if not self._paused and self._unread() > self._pause_at:
                self._paused = pause = True
            self._cond.notify()
        if pause:
            self.request.pause_body()

    def end(self):
        with self._cond:
            self._ended = True
            self._cond.notify_all()
        if self._length_env is not None:
            self._length_env["CONTENT_LENGTH"] = str(self.request.body_length)
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end()

    def when_complete(self, fn):
        """Call ``fn()`` (reactor thread) once the whole body is in, before
        the application runs: a chunked body whose CONTENT_LENGTH the
        application needs, or the InlinePool of the tests (where a read
        must never wait).  Nothing pauses the client meanwhile (the body is
        spooled; LimitRequestBody bounds it)."""
        self._pause_at = float("inf")
        if self._ended:
            fn()
        else:
            self._on_end = fn

    def set_length_when_complete(self, env):
        """At the body's end, put its length in ``env`` as CONTENT_LENGTH."""
        self._length_env = env

    def broken(self, why):
        """The body cannot complete (called when the response ends first)."""
        with self._cond:
            if not self._ended and self._broken is None:
                self._broken = why
            self._cond.notify_all()
        if self._on_end is not None:
            # The application was waiting for the whole body: it never runs,
            # so nobody else will drop what was spooled.
            self._on_end = None
            self.close()

    def close(self):
        """The application is done: drop what is left (and what comes)."""
        with self._cond:
            self._closed = True
            self._memory.clear()
            self._memory_bytes = 0
            fd, self._fd = self._fd, None
            self._spool_read = self._spool_write = 0
            paused, self._paused = self._paused, False
        if fd is not None:
            os.close(fd)
        if paused and not self.request.finished:
            self.request.resume_body()

    def _resume(self):
        if not self._closed and not self.request.finished:
            self.request.resume_body()

    def _unread(self):
        return self._memory_bytes + self._spool_write - self._spool_read

    # -- application side -----------------------------------------------------------

    def _take(self, limit):
        """Up to ``limit`` bytes (any amount if < 0), waiting for at least
        one; b"" at the end of the body."""
        if not self._asked:
            self._asked = True
            self._call(self.start)
        resume = False
        with self._cond:
            while not self._unread():
                if self._ended:
                    return b""
                if self._broken is not None:
                    raise ClientDisconnected(self._broken)
                if not self._threaded:
                    raise WouldBlock("wsgi.input would wait on the reactor thread")
                self._cond.wait()
            if self._memory:
                data = self._memory.popleft()
                if 0 <= limit < len(data):
                    self._memory.appendleft(data[limit:])
                    data = data[:limit]
                self._memory_bytes -= len(data)
            else:
                size = self._spool_write - self._spool_read
                if limit >= 0:
                    size = min(size, limit)
                data = os.pread(self._fd, min(size, 1 << 20), self._spool_read)
                self._spool_read += len(data)
                if self._spool_read == self._spool_write:
                    self._spool_read = self._spool_write = 0  # back to memory
            if self._paused and self._unread() <= SPOOL // 2:
                self._paused = False
                resume = True
        if resume:
            self._call(self._resume)
        return data

    def read(self, size=-1):
        if size is None or size < 0:
            pieces = [self._left] if self._left else []
            self._left = b""
            while True:
                data = self._take(-1)
                if not data:
                    return b"".join(pieces)
                pieces.append(data)
        if size == 0:
            return b""
        data, self._left = self._left[:size], self._left[size:]
        if len(data) == size:
            return data
        pieces = [data] if data else []
        got = len(data)
        while got < size:
            more = self._take(size - got)
            if not more:
                break
            pieces.append(more)
            got += len(more)
        return b"".join(pieces)

    def readline(self, size=-1):
        if size is None:
            size = -1
        buffer = self._left
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end >= 0 and (size < 0 or end < size):
                line, self._left = buffer[: end + 1], buffer[end + 1 :]
                return line
            if 0 <= size <= len(buffer):
                line, self._left = buffer[:size], buffer[size:]
                return line
            start = len(buffer)
            more = self._take(LINE_READ)
            if not more:
                self._left = b""
                return buffer
            buffer += more

    def readlines(self, hint=-1):
        lines = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def readable(self):
        return True


class NoInput:
    """``wsgi.input`` of a request without a body: always at its end."""

    __slots__ = ()

    def read(self, size=-1):
        return b""

    def readline(self, size=-1):
        return b""

    def readlines(self, hint=-1):
        return []

    def __iter__(self):
        return iter(())

    def readable(self):
        return True

    def close(self):
        pass


NO_INPUT = NoInput()
