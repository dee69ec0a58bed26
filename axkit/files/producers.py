"""Send (parts of) a file to a request with backpressure.

* ``SendfileProducer`` -- zero copy: ``os.sendfile`` from the file straight
  into the client's socket, whenever the socket can take more.  Used when
  the transport is a plain TCP (or UNIX) socket.  Nothing of the file is
  ever held in user space.
* ``FileProducer`` -- a block at a time through ``transport.write``,
  paused while the transport holds more than its buffer size.  Used for
  TLS and any transport without a socket to sendfile into.  At most one
  block (64 KiB) plus the transport's buffer is held per response.
* ``GzipProducer`` -- compresses a file on the fly, a block per step, a few
  steps per reactor turn, so neither memory nor the reactor is held up.

A body is a list of segments: ``bytes`` (framing, e.g. multipart headers)
or ``(offset, length)`` of the file.  A file that turns out shorter than
promised (truncated while being sent) ends the response by closing the
connection once what was sent is flushed: the client sees fewer bytes than
Content-Length, never a byte past it, and the server never waits for bytes
that will not come.
A file replaced (renamed over) while being sent is sent whole: the open
descriptor still names the old file.
"""

import os
import zlib

from twisted.internet.interfaces import IPullProducer, IPushProducer, ISSLTransport
from twisted.logger import Logger
from zope.interface import implementer

from axkit._compat import TCPConnection, write_buffered

from .cache import SharedFile, owned

log = Logger(namespace="axkit.files")

BLOCK = 65536
# Bytes one sendfile producer may send per reactor turn before it lets the
# other connections have theirs (it resumes on the next writable event).
SENDFILE_TURN = 1024 * 1024
# Blocks the gzip producer compresses per reactor turn.
GZIP_BLOCKS_PER_TURN = 2


def sendfile_socket(transport):
    """The socket file descriptor to sendfile into, or None (TLS, memory...)."""
    if ISSLTransport.providedBy(transport):
        return None
    if not isinstance(transport, TCPConnection) or not hasattr(os, "sendfile"):
        return None
    if write_buffered(transport) is None:
        return None
    try:
        return transport.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def send_segments(request, status, length, f, segments):
    """Send the head (``status``, ``length``), then ``segments`` of open file
    ``f`` with the best producer for the transport.  Takes ownership of ``f``."""
    transport = request.zero_copy_transport()
    fd = sendfile_socket(transport) if transport is not None else None
    if fd is not None:
        # The head waits in the kernel for the file's first bytes (the
        # sendfile below, in this turn): one packet, one wake-up of the client.
        request.start_response(status, length, body_follows=True)
        SendfileProducer(request, f, segments, transport, fd).start()
    else:
        request.start_response(status, length)
        FileProducer(request, f, segments).start()


class _Base:
    def __init__(self, request, f, segments):
        self.request = request
        self.file = f
        self.segments = list(segments)
        self.done = False

    def _stop(self):
        if self.done:
            return
        self.done = True
        self.file.close()
        try:
            self.request.unregister_producer()
        except Exception:
            pass

    def _finish(self):
        self._stop()
        self.request.finish()

    def _shrank(self):
        log.warn(
            "{name} shrank while being sent; cutting the response",
            name=getattr(self.file, "name", "file"),
        )
        self._stop()
        if self.request.chunked:
            # A chunked body has no length to fall short of: the last chunk
            # must never be sent, so the connection is cut.
            self.request.abort()
            return
        # finish() with fewer bytes than promised closes the connection once
        # what was sent has been flushed (a FIN, not a reset: a reset would
        # make the client's kernel drop bytes it already holds).
        self.request.keep_alive = False
        self.request.finish()

    def _lost(self, failure):
        self._stop()

    def stopProducing(self):
        self._stop()


@implementer(IPullProducer)
class SendfileProducer(_Base):
    """Zero-copy sending: a pull producer the transport resumes each time its
    own buffer is empty; when the socket is full we ask the transport to watch
    for writability (startWriting) and are resumed when it can take more."""

    def __init__(self, request, f, segments, transport, sock_fd):
        _Base.__init__(self, request, f, segments)
        self.transport = transport
        self.sock_fd = sock_fd
        self.file_fd = f.fileno()
        # The socket took less than offered: it is full, and the next try
        # waits for it to be writable (a try now would fail with EAGAIN).
        self.full = False

    def start(self):
        if not self._buffered() and self._pump(register=False):
            # All of it went out at once (anything up to the socket's buffer
            # usually does): no producer to register, nothing to wait for.
            return
        if self.file.__class__ is SharedFile:
            # Sent over later turns: the cache may close its descriptor
            # meanwhile, so this response takes one of its own.
            self.file = self.file.own()
            self.file_fd = self.file.fileno()
        self.request.notify_finish().addErrback(self._lost)
        # A pull producer is resumed at once, then whenever the buffer drains.
        self.request.register_producer(self, False)

    def _buffered(self):
        return write_buffered(self.transport)

    def resumeProducing(self):
        if self.done:
            return
        if self.full:
            # (Registering resumes a pull producer at once.)
            self.full = False
            self.transport.startWriting()
            return
        if self._buffered():
            # The head (or multipart framing) is still in the transport's
            # buffer: the file's bytes must wait behind it.
            self.transport.startWriting()
            return
        self._pump()

    def _pump(self, register=True):
        """Send what the socket takes now, up to SENDFILE_TURN.  True when
        the response ended here (sent whole, or cut).  Not ``register``ed
        yet (the first try, from start): stops short of anything that needs
        the transport to come back (a socket that is full, framing bytes
        to write, the turn's budget spent) and returns False."""
        budget = SENDFILE_TURN
        segments = self.segments
        request = self.request
        while segments:
            segment = segments[0]
            if segment.__class__ is bytes:
                if not register:
                    return False
                segments.pop(0)
                request.write(segment)
                return False  # resumed once the transport has sent it
            offset, length = segment
            try:
                sent = os.sendfile(self.sock_fd, self.file_fd, offset, min(length, budget))
            except BlockingIOError:
                if register:
                    self.transport.startWriting()
                return False
            except InterruptedError:
                continue
            except OSError as e:
                # EPIPE / ECONNRESET: the client went away; connectionLost follows.
                log.debug("sendfile failed: {error}", error=e)
                self._stop()
                request.abort()
                return True
            if sent == 0:
                self._shrank()
                return True
            request.bytes_sent += sent
            offered = min(length, budget)
            length -= sent
            budget -= sent
            if length:
                segments[0] = (offset + sent, length)
            else:
                segments.pop(0)
            if sent < offered:
                # A short send: the socket is full until the client reads.
                if register:
                    self.transport.startWriting()
                else:
                    self.full = True
                return False
            if budget <= 0 and segments:
                if register:
                    # The socket may take more: go on after the other
                    # connections' turn.
                    next_turn = getattr(self.transport.reactor, "next_turn", None)
                    if next_turn is not None:
                        next_turn(self.resumeProducing)
                    else:
                        self.transport.startWriting()
                return False
        self._finish()
        return True

    def pauseProducing(self):
        pass


@implementer(IPushProducer)
class FileProducer(_Base):
    """Reads a block, writes it, and pauses while the transport is full."""

    def __init__(self, request, f, segments):
        _Base.__init__(self, request, owned(f), segments)
        self.paused = False
        self.position = None

    def start(self):
        self.request.register_producer(self, True)
        self.request.notify_finish().addErrback(self._lost)
        self._pump()

    def _pump(self):
        request = self.request
        segments = self.segments
        while not self.paused and not self.done:
            if not segments:
                self._finish()
                return
            segment = segments[0]
            if segment.__class__ is bytes:
                segments.pop(0)
                request.write(segment)
                continue
            offset, length = segment
            try:
                data = os.pread(self.file.fileno(), min(BLOCK, length), offset)
            except OSError as e:
                log.error(
                    "reading {name} failed: {error}",
                    name=getattr(self.file, "name", "file"),
                    error=e,
                )
                data = b""
            if not data:
                self._shrank()
                return
            length -= len(data)
            if length:
                segments[0] = (offset + len(data), length)
            else:
                segments.pop(0)
            request.write(data)

    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        if self.paused and not self.done:
            self.paused = False
            self._pump()


@implementer(IPushProducer)
class GzipProducer(_Base):
    """Compresses ``length`` bytes of a file into a chunked response.

    The gzip stream is deterministic (no name, mtime 0, a fixed level), so
    its strong ETag holds.  Each reactor turn compresses at most
    GZIP_BLOCKS_PER_TURN blocks; other connections run in between."""

    def __init__(self, request, f, length, level, reactor=None):
        _Base.__init__(self, request, owned(f), [(0, length)])
        self.compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
        self.paused = False
        self.scheduled = None
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor

    def start(self):
        self.request.register_producer(self, True)
        self.request.notify_finish().addErrback(self._lost)
        self._schedule()

    def _schedule(self):
        if self.scheduled is None and not self.done and not self.paused:
            self.scheduled = self.reactor.callLater(0, self._step)

    def _step(self):
        self.scheduled = None
        request = self.request
        for _ in range(GZIP_BLOCKS_PER_TURN):
            if self.done or self.paused:
                return
            offset, length = self.segments[0]
            if length <= 0:
                tail = self.compressor.flush()
                self._stop()
                request.write(tail)
                request.finish()
                return
            try:
                data = os.pread(self.file.fileno(), min(BLOCK, length), offset)
            except OSError:
                data = b""
            if not data:
                self._shrank()
                return
            self.segments[0] = (offset + len(data), length - len(data))
            out = self.compressor.compress(data)
            if out:
                request.write(out)
        self._schedule()

    def _stop(self):
        if self.scheduled is not None and self.scheduled.active():
            self.scheduled.cancel()
        self.scheduled = None
        _Base._stop(self)

    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        if self.paused and not self.done:
            self.paused = False
            self._schedule()


def gzip_bytes(data, level):
    """``data`` as a deterministic gzip member (for small cached files)."""
    c = zlib.compressobj(level, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()
