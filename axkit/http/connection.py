"""One client connection: parse requests with httptools (llhttp), answer them
strictly in order, keep the connection alive or close it, enforce limits.

States of a connection, by what it waits for:

* IDLE -- between requests (KeepAliveTimeout);
* HEADERS -- a request head has started (RequestHeaderTimeout from its first
  byte; drip-feeding cannot extend it);
* BODY -- a request body is being read (RequestBodyTimeout between pieces);
* RESPONDING -- the active request's response is being produced.

Pipelined requests are parsed into a queue and dispatched one at a time:
request N+1 is handed to the handler only when response N has finished,
so responses leave in request order by construction.  A full queue, or a
request body nobody is consuming yet, pauses reading from the socket.
"""

import time
from collections import deque

from httptools import (HttpParserCallbackError, HttpParserError, HttpParserUpgrade,
                       HttpRequestParser)
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from .dates import http_date_now
from .headers import Headers
from .request import SERVER_HEADER, Request
from .status import error_body, status_line

log = Logger(namespace="axkit.http")

IDLE, HEADERS, BODY, RESPONDING = "idle", "headers", "body", "responding"

# Data is fed to the parser in slices this big, so a flood of pipelined
# requests in one read cannot queue more than one slice's worth.
FEED_SLICE = 16384
# After a response is complete, a request body still unread is read and
# thrown away up to this many bytes (keeping the connection); past it: close.
DISCARD_LIMIT = 1024 * 1024


class ProtocolError(Exception):
    """Bad input detected by our own checks: answer ``status`` and close."""

    def __init__(self, status, detail):
        Exception.__init__(self, status, detail)
        self.status = status
        self.detail = detail


class _Stop(Exception):
    """Raised inside a parser callback to stop parsing (connection closing)."""


class HTTPConnection(Protocol):
    def __init__(self, factory):
        self.factory = factory
        self.handler = factory.handler
        self.limits = None
        self.parser = None
        self.queue = deque()
        self.active = None           # the request being answered
        self.current = None          # the request whose head/body is being parsed
        self.requests = 0
        self.state = IDLE
        self.closing = False
        self.peer_host = None
        self.peer_port = None
        self.secure = False
        self._url = []
        self._fields = []
        self._head_bytes = 0
        self._fatal = None
        self._paused = set()
        self._unparsed = b""
        self._deadline = None
        self._timer = None
        self._discarding = 0
        self._deadline_state = None
        self.notes = {}

    # -- connection lifecycle ---------------------------------------------

    def connectionMade(self):
        factory = self.factory
        factory.connection_opened(self)
        self.limits = factory.limits()
        peer = self.transport.getPeer()
        self.peer_host = getattr(peer, "host", None) or "-"
        self.peer_port = getattr(peer, "port", None)
        try:
            from twisted.internet.interfaces import ISSLTransport
            self.secure = ISSLTransport.providedBy(self.transport)
        except ImportError:
            pass
        try:
            self.transport.setTcpNoDelay(True)
        except (AttributeError, OSError):
            pass
        self.parser = HttpRequestParser(self)
        self._set_deadline(HEADERS, self.limits.header_timeout)
        self.handler.connection_made(self)

    def connectionLost(self, reason):
        self.closing = True
        self._cancel_timer()
        active = self.active
        self.active = None
        if active is not None and not active.finished:
            active.aborted = True
            active.keep_alive = False
            active._finished()
        self.queue.clear()
        self.factory.connection_closed(self)
        self.handler.connection_lost(self, reason)

    def dataReceived(self, data):
        if self.closing or self._fatal is not None:
            return
        if self._paused:
            self._unparsed += data
            return
        self._feed(data)

    def _feed(self, data):
        if len(data) <= FEED_SLICE:
            self._parse(data)
            return
        view = memoryview(data)
        for start in range(0, len(data), FEED_SLICE):
            if self.closing or self._fatal is not None:
                return
            if self._paused:
                self._unparsed += bytes(view[start:])
                return
            self._parse(view[start:start + FEED_SLICE])

    def _parse(self, data):
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade as e:
            # An Upgrade we do not take (or CONNECT): the request was answered
            # as plain HTTP/1.1; what follows is read as the next request.
            rest = bytes(data[e.args[0]:]) if e.args else b""
            self.parser = HttpRequestParser(self)
            if rest and not self.closing:
                self.dataReceived(rest)
        except HttpParserCallbackError as e:
            cause = e.__context__
            if isinstance(cause, ProtocolError):
                self.protocol_error(cause.status, cause.detail)
            elif isinstance(cause, _Stop):
                return
            else:
                log.failure("internal error while parsing a request",
                            failure=None if cause is None else _failure_of(cause))
                self.protocol_error(500, "internal error")
        except HttpParserError as e:
            self.protocol_error(_status_for_parser_error(e), _parser_detail(e))

    # -- parser callbacks (httptools) --------------------------------------

    def on_message_begin(self):
        if self.closing or self._fatal is not None:
            raise _Stop()
        self._url = []
        self._fields = []
        self._head_bytes = 0
        self.state = HEADERS
        self._set_deadline(HEADERS, self.limits.header_timeout)

    def on_url(self, url):
        self._url.append(url)
        self._head_bytes += len(url)
        if self._head_bytes > self.limits.request_line:
            raise ProtocolError(414, "request line too long")

    def on_header(self, name, value):
        size = len(name) + len(value) + 4
        self._head_bytes += size
        if size > self.limits.field_size:
            raise ProtocolError(431, "a header field is too large")
        if self._head_bytes > self.limits.header_size:
            raise ProtocolError(431, "the header block is too large")
        if len(self._fields) >= self.limits.fields:
            raise ProtocolError(431, "too many header fields")
        self._fields.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self):
        parser = self.parser
        target = b"".join(self._url).decode("latin-1")
        version = parser.get_http_version()
        if version not in ("1.1", "1.0"):
            raise ProtocolError(505, f"HTTP/{version} is not supported")
        headers = Headers(self._fields)
        request = Request(self, parser.get_method().decode("ascii"), target, version,
                          headers, parser.should_keep_alive(), time.time())
        self._check_host(request)
        self.current = request
        self.requests += 1
        if self.limits.max_requests and self.requests >= self.limits.max_requests:
            request.keep_alive = False
        length = headers.get("content-length")
        if length is not None:
            request.content_length = int(length)  # llhttp has checked the digits
        if request.content_length or "transfer-encoding" in headers:
            self.state = BODY
            self._set_deadline(BODY, self.limits.body_timeout)
        else:
            request.body_complete = True
            self._clear_deadline()
        self.queue.append(request)
        if len(self.queue) > self.limits.max_pipelined:
            self._pause("pipeline")
        if self.active is None:
            self._dispatch_next()

    def on_body(self, data):
        request = self.current
        if request is None:
            return
        request._body_arrived(data)
        limit = self.limits.body
        if limit and request.body_length > limit:
            raise ProtocolError(413, "request body too large")
        if self.state == BODY:
            self._deadline = time.monotonic() + self.limits.body_timeout
        if self._discarding:
            self._discarding -= len(data)
            if self._discarding < 0:
                self.closing = True
                self.transport.loseConnection()
                raise _Stop()
            return
        if request is self.active:
            self.handler.body_data(request, data)

    def on_message_complete(self):
        request = self.current
        self.current = None
        if request is None:
            return
        request._body_done()
        if request is self.active:
            self.handler.body_done(request)
        if self._discarding:
            self._discarding = 0
        if request.finished and request is self.active:
            self._advance()
        elif self.active is not None and self.state == BODY:
            self.state = RESPONDING
            self._clear_deadline()

    def _check_host(self, request):
        # RFC 9112 §3.2: a 1.1 request without Host, or with several, is a 400.
        hosts = request.headers.get_all("host")
        if len(hosts) > 1:
            raise ProtocolError(400, "more than one Host header")
        if not hosts:
            if request.version == "1.1":
                raise ProtocolError(400, "HTTP/1.1 request without Host")
            return
        host = hosts[0].strip()
        if any(c in host for c in " /\\@?#") :
            raise ProtocolError(400, "malformed Host header")

    # -- dispatch and ordering ---------------------------------------------

    def _dispatch_next(self):
        request = self.queue.popleft()
        if "pipeline" in self._paused and len(self.queue) <= self.limits.max_pipelined:
            self._resume("pipeline")
        self.active = request
        if self.state != BODY:
            self.state = RESPONDING
        arrived = list(request._body_pending) if request._body_pending else ()
        self.handler.handle(request)
        # Body pieces that arrived while the request was queued.
        for data in arrived:
            if request.finished:
                break
            self.handler.body_data(request, data)
        if request.body_complete and not request.finished:
            self.handler.body_done(request)

    def response_finished(self, request):
        """Called by the request when its response is complete."""
        self.handler.response_finished(request)
        if request is not self.active:
            return
        if not request.keep_alive or self.closing:
            self._close_after(request)
            return
        if not request.body_complete:
            # Read and drop the rest of the body, then go on with keep-alive.
            remaining = (request.content_length - request.body_length
                         if request.content_length is not None else DISCARD_LIMIT)
            if remaining > DISCARD_LIMIT:
                self._close_after(request)
                return
            self._discarding = DISCARD_LIMIT
            self._resume("body")
            return
        self._advance()

    def _advance(self):
        self.active = None
        if self.closing:
            return
        if self.queue:
            self._dispatch_next()
            return
        if self._fatal is not None:
            self._send_fatal()
            return
        if self.current is None:
            self.state = IDLE
            self._set_deadline(IDLE, self.limits.keepalive_timeout)
        if self._unparsed and not self._paused:
            data, self._unparsed = self._unparsed, b""
            self._feed(data)

    def _close_after(self, request):
        self.closing = True
        self.active = None
        self.queue.clear()
        self.transport.loseConnection()

    def may_keep_alive(self, request):
        return not self.closing and self._fatal is None and not self.factory.draining

    def body_unread(self, request):
        return not request.body_complete

    def abort_response(self, request):
        """Cut a response that cannot be completed."""
        self.closing = True
        if not request.finished:
            request._finished()
        self.transport.abortConnection()

    def write(self, data):
        self.transport.write(data)

    # -- reading control ---------------------------------------------------

    def pause_body(self):
        """Stop reading the request body (backpressure from its consumer)."""
        self._pause("body")

    def resume_body(self):
        self._resume("body")

    def _pause(self, reason):
        if not self._paused:
            self.transport.pauseProducing()
        self._paused.add(reason)

    def _resume(self, reason):
        if reason not in self._paused:
            return
        self._paused.discard(reason)
        if not self._paused and not self.closing:
            self.transport.resumeProducing()
            if self._unparsed:
                data, self._unparsed = self._unparsed, b""
                self._feed(data)

    # -- errors and timeouts -----------------------------------------------

    def protocol_error(self, status, detail):
        """Bad input: answer ``status`` after earlier responses, then close."""
        if self._fatal is not None or self.closing:
            return
        self._fatal = (status, detail)
        self.current = None
        self._unparsed = b""
        self.handler.protocol_error(self, status, detail)
        if self.active is None and not self.queue:
            self._send_fatal()
        else:
            self._pause("fatal")

    def _send_fatal(self):
        status, detail = self._fatal
        body = error_body(status, detail)
        self.transport.write(
            status_line(status) + b"Date: " + http_date_now() + b"\r\n" + SERVER_HEADER
            + b"Content-Type: text/html; charset=utf-8\r\n"
            + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        self.closing = True
        self._cancel_timer()
        self.transport.loseConnection()

    def _set_deadline(self, state, seconds):
        self._deadline = time.monotonic() + seconds
        self._deadline_state = state
        timer = self._timer
        if timer is None:
            self._timer = self.factory.reactor.callLater(seconds, self._timer_fired)

    def _clear_deadline(self):
        self._deadline = None

    def _cancel_timer(self):
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _timer_fired(self):
        # Deadlines move often (every request, every body piece); the timer is
        # only re-armed when it fires early, so moving one costs no heap work.
        self._timer = None
        if self._deadline is None or self.closing:
            return
        remaining = self._deadline - time.monotonic()
        if remaining > 0.001:
            self._timer = self.factory.reactor.callLater(remaining, self._timer_fired)
            return
        state = self._deadline_state
        self._deadline = None
        if state == IDLE:
            self.closing = True
            self.transport.loseConnection()
        elif state == HEADERS:
            if self.active is None and not self.queue:
                self.protocol_error(408, "request header timeout")
        elif state == BODY:
            if self.active is not None and self.active.headers_sent:
                self.active.abort()
            else:
                self.protocol_error(408, "request body timeout")
                if self.active is not None:
                    self.active.abort()


def _failure_of(exc):
    from twisted.python.failure import Failure
    return Failure(exc, type(exc), exc.__traceback__)


def _status_for_parser_error(e):
    text = str(e).lower()
    if "transfer-encoding" in text and "unknown" in text:
        return 501
    if "invalid method" in text or "method" in text and "unknown" in text:
        return 400
    return 400


def _parser_detail(e):
    return str(e) or type(e).__name__


class HTTPFactory(Factory):
    """Builds a connection per client for one listening endpoint."""

    protocol = HTTPConnection
    noisy = False

    def __init__(self, handler, reactor=None):
        if reactor is None:
            from twisted.internet import reactor
        self.handler = handler
        self.reactor = reactor
        self.connections = set()
        self.draining = False

    def buildProtocol(self, addr):
        return HTTPConnection(self)

    def limits(self):
        return self.handler.limits()

    def connection_opened(self, connection):
        self.connections.add(connection)

    def connection_closed(self, connection):
        self.connections.discard(connection)
