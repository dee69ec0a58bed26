"""How a connection ends: refusals (an error answer after the earlier
responses), the client's half-close, lingering close, aborts, and the
graceful drain of a shutdown.

`Closing` is a mixin of `axkit.http.connection.HTTPConnection` (methods
only: the state is the connection's slots).  These are kept together
because they share one rule, RFC 9112 §9.6: whatever the client sent before
the end is answered in order, and our last answer must reach it -- closing
with unread input makes the kernel send a reset that can destroy it.
"""

from axkit._compat import can_send_now

from .dates import http_date_now
from .request import SERVER_HEADER
from .states import HEADERS, IDLE, LINGERING, PAUSE_FATAL
from .status import error_body, status_line

# How long a closing connection reads and drops what the client still sends
# (see Closing._close).
LINGER = 2.0
# Graceful shutdown: how long an idle connection is given to send the
# request it may have on its way.
DRAIN_GRACE = 1.0


class Closing:
    """The end of a connection (slots: see HTTPConnection)."""

    __slots__ = ()

    # -- refusals ------------------------------------------------------------

    def protocol_error(self, status, detail):
        """Bad input: answer ``status`` after earlier responses, then close."""
        if self._fatal is not None or self.closing:
            return
        self.handler.protocol_error(self, status, detail)
        current, self.current = self.current, None
        self._unparsed = b""
        active = self.active
        if current is not None and current is active:
            # The request being answered sent a bad body: answer it (if its
            # head is not out yet) and close.
            self._fatal = (status, detail)
            current.keep_alive = False
            if current.headers_sent:
                current.abort()
            else:
                current.send_error(status, detail)
            return
        self._fatal = (status, detail)
        if current is not None and self.queue and current in self.queue:
            # Its message can never complete: the error answer stands for it.
            self.queue.remove(current)
        if active is None and not self.queue:
            self._send_fatal()
        else:
            # Earlier requests are answered first (keeping their framing);
            # the error answer follows the last of them.
            self._pause(PAUSE_FATAL)

    def _send_fatal(self):
        status, detail = self._fatal
        body = error_body(status, detail)
        self.transport.write(
            status_line(status)
            + b"Date: "
            + http_date_now()
            + b"\r\n"
            + SERVER_HEADER
            + b"Content-Type: text/html; charset=utf-8\r\n"
            + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
            + body
        )
        self._close(linger=True)

    def _stop_reading_after_current(self):
        self._unparsed = b""
        self._pause(PAUSE_FATAL)
        for request in self._all_pending():
            request.keep_alive = False

    def _all_pending(self):
        if self.active is not None:
            yield self.active
        if self.queue:
            yield from self.queue

    # -- the client's end ----------------------------------------------------

    def readConnectionLost(self):
        """The client closed its sending side (a FIN: `printf ... | nc -N`,
        shutdown(SHUT_WR)) and may still read: what it sent is answered, in
        order, then the connection closes (RFC 9112 §9.6; Apache, nginx and
        lighttpd answer too).  Only a failed write or a reset is a client
        gone (connectionLost)."""
        if self._switched is not None:  # (after a 101: the new protocol's)
            self._read_closed = True
            if getattr(self._switched, "transport", None) is not None:
                self._relay_read_closed()
            return
        if self._lingering:
            # All it sent is read (and dropped): the close can complete.
            self.transport.loseConnection()
            return
        if self._read_closed:
            return
        self._read_closed = True
        active = self.active
        if active is not None and not active.finished:
            active._half_closed()
        self._check_read_closed()

    def writeConnectionLost(self):
        """(IHalfCloseableProtocol: our sending side closed; we never ask.)"""

    def _check_read_closed(self):
        """With the client's side closed and all it sent parsed: a request
        left incomplete can never complete (400); with nothing left to
        answer, close; else close after the last answer."""
        if not self._read_closed or self.closing or self._fatal is not None or self._unparsed:
            return
        current = self.current
        if current is not None:
            if current.finished:
                # Answered; the rest of its body was being read and dropped.
                self._close()
            else:
                self.protocol_error(
                    400, "the client closed the connection before the end of its request"
                )
            return
        if self.state == HEADERS:
            self.protocol_error(
                400, "the client closed the connection in the middle of a request head"
            )
            return
        queue = self.queue
        last = queue[-1] if queue else self.active
        if last is None:
            self._close()
        elif not last.headers_sent:
            last.keep_alive = False  # its answer says Connection: close

    def connectionLost(self, reason):
        self.connected = 0
        self.closing = True
        self._deadline = None
        if self._wheel_slot is not None:
            # Out of the wheel now: nothing keeps a closed connection alive.
            self.factory.wheel.discard(self, self._wheel_slot)
            self._wheel_slot = None
        active = self.active
        self.active = None
        if active is not None and not active.finished:
            active.aborted = True
            active.keep_alive = False
            active._finished()
        self.queue = None
        self.current = None
        # The parser holds bound methods of this object: break the cycle.
        self.parser = None
        self._sock = None
        self.factory.connection_closed(self)
        self.handler.connection_lost(self, reason)
        if self._switched is not None and getattr(self._switched, "transport", None):
            self._switched.connectionLost(reason)

    # -- our end -------------------------------------------------------------

    def _close(self, linger=False):
        """Close once what is queued is sent.  ``linger``: the client may
        still be sending (a body we did not read, a request we refused):
        closing with unread input makes the kernel send a reset, which can
        destroy our answer before the client reads it (RFC 9112 §9.6).  So
        our side is shut first, and what the client still sends is read
        and dropped until it closes too, or for LINGER seconds (Apache's
        lingering close)."""
        self.closing = True
        self.active = None
        self.queue = None
        self._deadline = None
        transport = self.transport
        # (Plain TCP only: under TLS our side must end with its close_notify,
        # which loseWriteConnection would skip.)
        if linger and not self._read_closed and self.connected and self._sock is not None:
            try:
                transport.loseWriteConnection()
            except (AttributeError, NotImplementedError):
                transport.loseConnection()
                return
            self._lingering = True
            if self._paused:
                transport.resumeProducing()  # read (and drop) what comes
            self._set_deadline(LINGERING, LINGER)
            return
        if self._sock is not None and self.connected:
            close_soon = getattr(self.factory.reactor, "close_soon", None)
            if close_soon is not None and can_send_now(transport):
                # All sent (the common case: the last response went out
                # whole): axkit's reactor closes it before its next poll.
                transport.stopReading()
                close_soon(transport)
                return
        transport.loseConnection()

    def abort_response(self, request):
        """Cut a response that cannot be completed."""
        self.closing = True
        if not request.finished:
            request._finished()
        self.transport.abortConnection()

    def drain(self):
        """Graceful shutdown: close now if idle, else after this response."""
        if self._switched is not None:
            # After a 101 there is no response to wait for (a WebSocket may
            # stay open for days): the protocol sees its connection closed.
            self.transport.loseConnection()
            return
        if self.closing:
            return
        if self.state == IDLE and self.active is None:
            # Its next (or first) request may be on its way already -- a
            # keep-alive client sends at once, and a retiring worker may have
            # accepted this a moment ago: closing now would fail it.  It gets
            # DRAIN_GRACE to arrive (and is answered with Connection: close).
            self._set_deadline(IDLE, min(DRAIN_GRACE, self.limits.header_timeout))
