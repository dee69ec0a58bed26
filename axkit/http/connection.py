"""One client connection: parse requests with httptools (llhttp), answer them
strictly in order, keep the connection alive or close it, enforce limits.

States of a connection, by what it waits for:

* IDLE -- between requests (KeepAliveTimeout; a fresh connection waits
  RequestHeaderTimeout for its first byte), closed silently when it expires;
* HEADERS -- a request head has started (RequestHeaderTimeout from its first
  byte; drip-feeding cannot extend it), 408 when it expires;
* BODY -- a request body is being read (RequestBodyTimeout between pieces);
* RESPONDING -- the active request's response is being produced.

Pipelined requests are parsed into a queue and dispatched one at a time:
request N+1 is handed to the handler only when response N has finished,
so responses leave in request order by construction.  A full queue, or a
request body nobody is consuming yet, pauses reading from the socket.

llhttp does most of the RFC 9112 framing checks (CL+TE, duplicate or signed
Content-Length, chunk syntax, bare CR/LF, control characters, whitespace
before a colon, obs-fold); the rest (Host, versions, transfer codings,
Connection token lists, target forms, limits) are checked here, in
``on_headers_complete``.  Every refusal answers once and closes.
"""

import fcntl
import re
import struct
import termios
from urllib.parse import urlsplit

from httptools import (HttpParserCallbackError, HttpParserError,
                       HttpParserInvalidMethodError, HttpParserUpgrade,
                       HttpRequestParser)
from twisted.internet.interfaces import (IHalfCloseableProtocol, IProtocol,
                                         IProtocolNegotiationFactory)
from twisted.internet.protocol import Factory
from twisted.internet.tcp import Server as _TCPServer
from twisted.logger import Logger
from zope.interface import implementer

from ..reactor import dispatch_directly
from .dates import http_date_now
from .headers import Headers
from .request import FINISHED, SERVER_HEADER, Request
from .status import error_body, status_line

log = Logger(namespace="axkit.http")

IDLE, HEADERS, BODY, RESPONDING = "idle", "headers", "body", "responding"
# A deadline kind: a closing connection reading and dropping what the client
# still sends (see _close), for at most LINGER seconds.
LINGERING = "lingering"
LINGER = 2.0
# A client whose response waits on it (SendTimeout, CGITimeout with the
# program paused) must take at least this much of what the kernel holds for
# it per timeout to count as reading: a slow reader does, a client taking a
# few bytes a minute to hold the connection (and a CGI slot) does not.
MIN_DRAIN = 16384


def drained(before, now):
    """Whether a client took at least MIN_DRAIN of what the kernel held for
    it (``unsent()`` then and now; None where it cannot be read)."""
    return before is not None and now is not None and before - now >= MIN_DRAIN
# A deadline kind (not a state): the response in progress waits on the client.
SENDING = "sending"

# Data is fed to the parser in slices this big, so a flood of pipelined
# requests in one read cannot queue more than one slice's worth.
FEED_SLICE = 16384
PIPELINE_SLICE = 1024
# Below this many open connections, a connection keeps its parser between
# requests (making one costs more than a request's parsing); at or above
# it, idle connections drop theirs to stay small.
KEEP_PARSER_BELOW = 1024
# After a response is complete, a request body still unread is read and
# thrown away up to this many bytes (keeping the connection); past it: close.
DISCARD_LIMIT = 1024 * 1024

# Reasons to stop reading from the socket (a bit set).
PAUSE_PIPELINE, PAUSE_BODY, PAUSE_FATAL = 1, 2, 4

CONTINUE_100 = b"HTTP/1.1 100 Continue\r\n\r\n"

# A request line whose method llhttp does not know but which is well formed:
# such a method is "not implemented" (501), anything else is garbage (400).
_UNKNOWN_METHOD_LINE = re.compile(
    rb"(?:^|\n)[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32} [\x21-\x7e]+ HTTP/1\.[01]\r\n")


class ProtocolError(Exception):
    """Bad input detected by our own checks: answer ``status`` and close."""

    def __init__(self, status, detail):
        Exception.__init__(self, status, detail)
        self.status = status
        self.detail = detail


class _Stop(Exception):
    """Raised inside a parser callback to stop parsing (connection closing)."""


def new_parser(connection):
    """An llhttp request parser.  llhttp_init leaves every dangerous
    leniency off (lenient headers, chunked length, keep-alive, transfer
    encoding, version, data after close, optional CR/LF, spaces after a
    chunk size); we never turn one on (tests/test_http_framing.py checks the
    behaviour each of them would change)."""
    return HttpRequestParser(connection)


def _split_tokens(value):
    """A comma-separated token list, lower-cased, empty elements dropped."""
    if "," not in value:
        token = value.strip().lower()
        return [token] if token else []
    return [t for t in (t.strip().lower() for t in value.split(",")) if t]


# The fields that frame a request or decide its answer before any plugin.
_FRAMING_FIELDS = frozenset(("host", "connection", "content-length", "transfer-encoding",
                             "expect"))

# Characters a Host value (uri-host [":" port]) cannot hold.
_BAD_HOST = re.compile(r"[\s/\\@?#,]")
# Host values already found well formed (a server sees the same few).
_GOOD_HOSTS = set()


def _good_host(host):
    if _BAD_HOST.search(host) is not None:
        return False
    if len(_GOOD_HOSTS) >= 1024:
        _GOOD_HOSTS.clear()
    _GOOD_HOSTS.add(host)
    return True


@implementer(IProtocol, IHalfCloseableProtocol)
@dispatch_directly
class HTTPConnection:
    """The protocol of one client connection (slotted: there may be 100,000)."""

    __slots__ = (
        "factory", "handler", "limits", "parser", "transport", "connected",
        "queue", "active", "current", "requests", "state", "closing",
        "peer_host", "peer_port", "secure", "_url", "_fields", "_head_bytes",
        "_raw_head", "_began", "_fatal", "_paused", "_unparsed", "_deadline",
        "_deadline_state", "_wheel_slot", "_discarding", "_notes", "_upgrade",
        "_parsing", "_dispatching", "_advanced", "_sock", "server", "_held",
        "_sent_mark", "_read_closed", "_lingering", "__weakref__",
    )

    def __init__(self, factory):
        self.factory = factory
        self.handler = factory.handler
        self.limits = None
        self.parser = None
        self.transport = None
        self.connected = 0
        self.queue = None            # parsed requests waiting (list), if any
        self.active = None           # the request being answered
        self.current = None          # the request whose head/body is being parsed
        self.requests = 0
        self.state = IDLE
        self.closing = False
        self.peer_host = None
        self.peer_port = None
        self.secure = False
        self._url = None
        self._fields = None
        self._head_bytes = 0
        self._raw_head = 0
        self._began = False
        self._fatal = None
        self._paused = 0
        self._unparsed = b""
        self._deadline = None
        self._deadline_state = None
        self._wheel_slot = None
        self._discarding = 0
        self._notes = None
        self._upgrade = False
        self._parsing = False
        self._dispatching = False
        self._advanced = False
        self._held = None            # a request with a body, dispatched after this parse
        self._sent_mark = None       # progress seen at the last SendTimeout check
        self._read_closed = False    # the client has half-closed (sent its FIN)
        self._lingering = False      # closing: our side shut, the client's read and dropped
        self._sock = None
        self.server = None           # the listener's default <Server> (set by the handler)

    @property
    def notes(self):
        """Free space for plugins, per connection (created when first used)."""
        if self._notes is None:
            self._notes = {}
        return self._notes

    def logPrefix(self):
        return "HTTPConnection"

    # -- connection lifecycle ---------------------------------------------

    def makeConnection(self, transport):
        self.connected = 1
        self.transport = transport
        self.connectionMade()

    def connectionMade(self):
        factory = self.factory
        factory.connection_opened(self)
        self.limits = factory.limits()
        transport = self.transport
        if type(transport) is _TCPServer:
            # Plain TCP: the peer's (host, port, ...) as accept() gave it,
            # without building an address object; never TLS.
            client = transport.client
            self.peer_host = client[0] or "-"
            self.peer_port = client[1]
            self._sock = transport.socket
        else:
            peer = transport.getPeer()
            self.peer_host = getattr(peer, "host", None) or "-"
            self.peer_port = getattr(peer, "port", None)
            self.secure = factory.is_secure(transport)
        try:
            transport.setTcpNoDelay(True)
        except (AttributeError, OSError):
            pass
        # A fresh connection gets RequestHeaderTimeout for its first byte.
        self._set_deadline(IDLE, self.limits.header_timeout)
        self.handler.connection_made(self)

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

    def readConnectionLost(self):
        """The client closed its sending side (a FIN: `printf ... | nc -N`,
        shutdown(SHUT_WR)) and may still read: what it sent is answered, in
        order, then the connection closes (RFC 9112 §9.6; Apache, nginx and
        lighttpd answer too).  Only a failed write or a reset is a client
        gone (connectionLost)."""
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
        if not self._read_closed or self.closing or self._fatal is not None \
                or self._unparsed:
            return
        current = self.current
        if current is not None:
            if current.finished:
                # Answered; the rest of its body was being read and dropped.
                self._close()
            else:
                self.protocol_error(400, "the client closed the connection before "
                                         "the end of its request")
            return
        if self.state == HEADERS:
            self.protocol_error(400, "the client closed the connection in the middle "
                                     "of a request head")
            return
        queue = self.queue
        last = queue[-1] if queue else self.active
        if last is None:
            self._close()
        elif not last.headers_sent:
            last.keep_alive = False          # its answer says Connection: close

    def dataReceived(self, data):
        if self.closing or self._fatal is not None:
            return
        if self._paused or self._parsing:
            self._unparsed += data
            return
        if len(data) <= PIPELINE_SLICE:
            self._parse_bytes(data)
            if self._held is not None:
                self._dispatch_held()
        else:
            self._feed(data)
        if self._unparsed and not self._paused:
            self._drain()

    def _drain(self):
        """Parse what was held back while reading was paused.  Never from
        inside a parser callback: the parse in progress picks it up."""
        while self._unparsed and not self._paused and not self._parsing \
                and not self.closing and self._fatal is None:
            data, self._unparsed = self._unparsed, b""
            self._feed(data)
        if self._read_closed and not self._unparsed:
            self._check_read_closed()

    def _feed(self, data):
        # While a response is in progress, requests behind it are parsed a
        # small slice at a time, so a pause (MaxPipelinedRequests) takes
        # effect within a slice: the queue stays bounded.
        # Body bytes go in big slices (they queue nothing).
        view = memoryview(data)
        start = 0
        end = len(data)
        while start < end:
            if self.closing or self._fatal is not None:
                return
            if self._paused:
                self._unparsed = bytes(view[start:]) + self._unparsed
                return
            size = FEED_SLICE if self.state == BODY else PIPELINE_SLICE
            self._parse(view[start:start + size])
            start += size

    def _parse(self, data):
        self._parse_bytes(data)
        if self._held is not None:
            self._dispatch_held()

    def _dispatch_held(self):
        # The head and whatever of the body came in the same read have
        # been parsed: a body broken there was answered 400 instead.
        held = self._held
        self._held = None
        if not held.finished and not self.closing:
            self._dispatch(held)

    def _parse_bytes(self, data):
        self._began = False
        self._parsing = True
        parser = self.parser
        if parser is None:
            parser = self.parser = new_parser(self)
        try:
            parser.feed_data(data)
        except HttpParserUpgrade as e:
            self._parsing = False
            self._after_upgrade(data, e)
        except HttpParserCallbackError as e:
            self._parsing = False
            cause = e.__context__
            if isinstance(cause, ProtocolError):
                self.protocol_error(cause.status, cause.detail)
            elif isinstance(cause, _Stop):
                return
            else:
                log.failure("internal error while parsing a request",
                            failure=None if cause is None else _failure_of(cause))
                self.protocol_error(500, "internal error")
            return
        except HttpParserInvalidMethodError:
            self._parsing = False
            if _UNKNOWN_METHOD_LINE.search(bytes(data)) is not None:
                self.protocol_error(501, "request method not implemented")
            else:
                self.protocol_error(400, "malformed request line")
            return
        except HttpParserError as e:
            self._parsing = False
            self.protocol_error(*_status_for_parser_error(e))
            return
        except BaseException:
            self._parsing = False
            raise
        self._parsing = False
        state = self.state
        if state == IDLE:
            if len(self.factory.connections) >= KEEP_PARSER_BELOW:
                # Between requests the parser holds nothing: with many
                # connections open, drop it (with its bound callbacks,
                # ~1 KB): an idle connection keeps less.
                self.parser = None
        elif state == HEADERS:
            # httptools collects a header field whole before handing it
            # over: bound what it can hold by counting the raw bytes.
            if self._began:
                # A head began in this read and is not complete: from now
                # (its first byte) it has RequestHeaderTimeout.  A head read
                # whole in one read never needs the timer.
                self._set_deadline(HEADERS, self.limits.header_timeout)
                self._raw_head = self._head_bytes
            else:
                self._raw_head += len(data)
            if self._raw_head > self.limits.header_size:
                if self._fields is not None and not self._fields and \
                        self._head_bytes > self.limits.request_line:
                    self.protocol_error(414, "request line too long")
                else:
                    self.protocol_error(431, "the header block is too large")

    def _after_upgrade(self, data, e):
        # llhttp stops after a request with Upgrade (or a CONNECT), without
        # reading any body.  We take no upgrade: the request was answered as
        # plain HTTP/1.1.  With nothing between it and what follows (no
        # body), the rest is the next request; otherwise the connection
        # closes after the answer, so a body cannot be read as a request.
        if not self._upgrade or self.closing:
            self._stop_reading_after_current()
            return
        self._upgrade = False
        rest = bytes(data[e.args[0]:]) if e.args else b""
        self.parser = new_parser(self)
        if rest and not self.closing:
            self._parse(rest)

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

    # -- parser callbacks (httptools) --------------------------------------

    def on_message_begin(self):
        if self.closing or self._fatal is not None:
            raise _Stop()
        self._url = []
        self._fields = []
        self._head_bytes = 0
        self._raw_head = 0
        self._began = True
        self.state = HEADERS

    def on_url(self, url):
        self._url.append(url)
        self._head_bytes += len(url)
        if self._head_bytes > self.limits.request_line:
            raise ProtocolError(414, "request line too long")

    def on_header(self, name, value):
        request = self.current
        if request is not None:
            # A trailer field of a chunked body (RFC 9112 §7.1.2): kept
            # apart from the header fields, under the same limits.
            self._trailer(request, name, value)
            return
        size = len(name) + len(value) + 4
        head = self._head_bytes = self._head_bytes + size
        limits = self.limits
        fields = self._fields
        if size > limits.field_size or head > limits.header_size \
                or len(fields) >= limits.fields:
            if size > limits.field_size:
                raise ProtocolError(431, "a header field is too large")
            if head > limits.header_size:
                raise ProtocolError(431, "the header block is too large")
            raise ProtocolError(431, "too many header fields")
        fields.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def _trailer(self, request, name, value):
        trailers = request.trailers
        if trailers is None:
            trailers = request.trailers = Headers()
        size = len(name) + len(value) + 4
        self._head_bytes += size
        if size > self.limits.field_size or self._head_bytes > self.limits.header_size \
                or len(trailers) >= self.limits.fields:
            raise ProtocolError(431, "the trailer fields are too large")
        trailers.add(name.decode("latin-1").lower(), value.decode("latin-1"))

    def on_headers_complete(self):
        parser = self.parser
        target = b"".join(self._url).decode("latin-1")
        self._url = None
        version = parser.get_http_version()
        if version != "1.1" and version != "1.0":
            if version.startswith("0."):
                raise ProtocolError(400, "malformed request line")
            raise ProtocolError(505, f"HTTP/{version} is not supported")
        fields = self._fields
        self._fields = None
        # One pass over the fields for those that frame the message.
        host = connection = transfer_encoding = length = expect = None
        hosts = 0
        framing = _FRAMING_FIELDS
        for name, value in fields:
            if name not in framing:
                continue
            if name == "host":
                hosts += 1
                host = value
            elif name == "connection":
                connection = value if connection is None else f"{connection},{value}"
            elif name == "content-length":
                length = value
            elif name == "transfer-encoding":
                transfer_encoding = (value if transfer_encoding is None
                                     else f"{transfer_encoding},{value}")
            else:
                expect = value
        headers = Headers(fields, lowered=True)
        method = parser.get_method().decode("ascii")
        # Connection is a token list (RFC 9110 §7.6.1), over every field.
        if connection is None:
            keep_alive = version == "1.1"
        else:
            tokens = _split_tokens(connection)
            if version == "1.1":
                keep_alive = "close" not in tokens
            else:
                keep_alive = "keep-alive" in tokens and "close" not in tokens
        request = Request(self, method, target, version, headers, keep_alive,
                          self.factory.now())
        # RFC 9112 §3.2: a 1.1 request without Host, or with several, is a 400.
        if hosts != 1:
            if hosts:
                raise ProtocolError(400, "more than one Host header")
            if version == "1.1":
                raise ProtocolError(400, "HTTP/1.1 request without Host")
        elif host not in _GOOD_HOSTS and not _good_host(host):
            raise ProtocolError(400, "malformed Host header")
        if target[0] != "/" or "#" in target:
            self._check_target(request)
        self.current = request
        self.requests += 1
        max_requests = self.limits.max_requests
        if max_requests and self.requests >= max_requests:
            request.keep_alive = False
        if parser.should_upgrade():
            # Answered as plain HTTP (we take no upgrade); see _after_upgrade.
            self._upgrade = True
            if method == "CONNECT":
                request.keep_alive = False
        # Content-Length / Transfer-Encoding (RFC 9112 §6).
        if transfer_encoding is not None:
            self._check_transfer_coding(version, transfer_encoding, length)
            has_body = True
        elif length is not None:
            # llhttp has refused duplicates, signs and non-digits already.
            # LimitRequestBody is checked against it by the handler, once the
            # request's <Location> is known, before any of the body is read.
            length = int(length)
            request.content_length = length
            has_body = length > 0
        else:
            has_body = False
        if expect is not None:
            if expect.strip().lower() != "100-continue":
                request.expect_failed = True
            elif version == "1.1" and has_body:
                request.continue_wanted = True
        if has_body:
            self.state = BODY
            self._set_deadline(BODY, self.limits.body_timeout)
            if self._upgrade:
                # llhttp will not read this body: never read it as requests.
                self._upgrade = False
                request.keep_alive = False
        else:
            request.body_complete = True
            self.state = RESPONDING
            self._deadline = None
        queue = self.queue
        if self.active is None and not queue:
            if has_body and self._parsing:
                # Answer once the rest of this read is parsed, so a body that
                # breaks the framing right here gets its 400 (not, say, a 405
                # from a plugin that never looked at the body).
                self.active = self._held = request
                return
            self._dispatch(request)
            return
        if queue is None:
            queue = self.queue = []
        queue.append(request)
        if len(queue) > self.limits.max_pipelined:
            self._pause(PAUSE_PIPELINE)

    @staticmethod
    def _check_transfer_coding(version, transfer_encoding, length):
        if version == "1.0":
            # §6.1: a 1.0 message with Transfer-Encoding has faulty framing.
            raise ProtocolError(400, "Transfer-Encoding in an HTTP/1.0 request")
        if length is not None:
            raise ProtocolError(400, "both Content-Length and Transfer-Encoding")
        codings = _split_tokens(transfer_encoding)
        if not codings or codings[-1] != "chunked":
            raise ProtocolError(400, "the last transfer coding is not chunked")
        if len(codings) > 1:
            if "chunked" in codings[:-1]:
                raise ProtocolError(400, "chunked applied more than once")
            raise ProtocolError(501, f"transfer coding {codings[0]!r} is not implemented")

    def _check_target(self, request):
        """The four request-target forms (RFC 9112 §3.2)."""
        target = request.target
        if "#" in target:
            # No form has a fragment: it is the client's own business (as
            # Apache answers; a '#' taken into the path or query would name
            # something else).
            raise ProtocolError(400, "a fragment (#) is not part of a request target")
        if target[:1] == "/":
            return                                    # origin-form
        method = request.method
        if target == "*":
            if method != "OPTIONS":
                raise ProtocolError(400, "'*' is only a target for OPTIONS")
            request.raw_path = "*"
            return
        if "://" in target:                           # absolute-form
            try:
                parts = urlsplit(target)
            except ValueError:
                raise ProtocolError(400, "malformed absolute-form target")
            if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
                raise ProtocolError(400, "malformed absolute-form target")
            if method == "CONNECT":
                raise ProtocolError(400, "CONNECT needs an authority-form target")
            # §3.2.2: the target's authority replaces the Host header.
            request.headers.set("host", parts.netloc.rpartition("@")[2])
            request.raw_path = parts.path or "/"
            request.query = parts.query if "?" in target else None
            return
        if method == "CONNECT":                       # authority-form
            request.raw_path = "*"
            return
        raise ProtocolError(400, "malformed request target")

    def on_body(self, data):
        if self.closing:
            raise _Stop()        # (answered and closing: the rest is dropped)
        request = self.current
        if request is None:
            return
        request._body_arrived(data)
        limit = request.body_limit
        # A held request's own (per-<Location>) limit is applied when it is
        # dispatched, right after this read: no more than a read is taken.
        if limit and request.body_length > limit and request is not self._held:
            raise ProtocolError(413, "request body larger than LimitRequestBody")
        if not self._paused & PAUSE_BODY:
            if self._wheel_slot is None or self._deadline_state != BODY:
                # (After a pause that outlived the wheel entry, or another
                # kind of deadline: a new entry, or nothing would fire.)
                self._set_deadline(BODY, self.limits.body_timeout)
            else:
                self._deadline = self.factory.now() + self.limits.body_timeout
        if self._discarding:
            self._discarding -= len(data)
            if self._discarding < 0:
                self._close(linger=True)
                raise _Stop()
            return
        if request is self.active and request is not self._held:
            self.handler.body_data(request, data)

    def on_message_complete(self):
        request = self.current
        self.current = None
        if request is None:
            return
        request._body_done()
        active = self.active
        if request is active and request is not self._held:
            self.handler.body_done(request)
            if self._discarding:
                self._discarding = 0
            if request.state == FINISHED:
                self._advance()
                return
        elif active is None and request.state == FINISHED:
            # Answered before its message ended (no body, or a refused one).
            self._advance()
            return
        if self.state == BODY:
            self.state = RESPONDING
            self._deadline = None
            if self.active is not None and self.active.state != FINISHED \
                    and not self.closing:
                self._watch_sending()

    # -- dispatch and ordering ---------------------------------------------

    def _dispatch(self, request):
        self.active = request
        if request.expect_failed:
            request.send_error(417, "only 100-continue is a known expectation")
            return
        pending = request._body_pending
        arrived = list(pending) if pending else ()
        self.handler.handle(request)
        if request.state != FINISHED and self._deadline is None and not self.closing:
            # Answered later (a file sent in pieces, a program...): watch
            # that the client keeps reading (SendTimeout).
            self._watch_sending()
        # Body pieces that arrived while the request was queued.
        for data in arrived:
            if request.finished:
                break
            self.handler.body_data(request, data)
        if request.body_complete and request.state != FINISHED:
            self.handler.body_done(request)

    def want_body(self, request):
        """A plugin reads the body: the moment to send ``100 Continue``."""
        if request.continue_wanted and not request.headers_sent \
                and request.body_length == 0 and not request.body_complete:
            request.continue_wanted = False
            request.continue_sent = True
            self.transport.write(CONTINUE_100)
        self.resume_body()

    def response_finished(self, request):
        """Called by the request when its response is complete."""
        self.handler.response_finished(request)
        if request is not self.active:
            return
        if not request.keep_alive or self.closing:
            self._close(linger=not request.body_complete)
            return
        if not request.body_complete:
            if request.continue_wanted:
                # The client waits for 100 before sending its body: it may
                # or may not send it now.  Closing is the only safe framing.
                self._close()
                return
            # Read and drop the rest of the body, then go on with keep-alive.
            remaining = (request.content_length - request.body_length
                         if request.content_length is not None else DISCARD_LIMIT)
            if remaining > DISCARD_LIMIT:
                self._close(linger=True)
                return
            self._discarding = DISCARD_LIMIT
            self.resume_body()
            return
        if self.current is request:
            # Answered while its message is still being parsed (nothing can
            # be queued behind it yet): on_message_complete goes on.
            self.active = None
            return
        self._advance()

    def _advance(self):
        """The active response is complete: dispatch the next request (in a
        loop, not by recursion, when responses complete synchronously)."""
        self.active = None
        if self.closing:
            return
        if self._dispatching:
            self._advanced = True         # the loop below goes on
            return
        self._dispatching = True
        try:
            while True:
                self._advanced = False
                queue = self.queue
                if not queue:
                    break
                request = queue.pop(0)
                if self._paused & PAUSE_PIPELINE and \
                        len(queue) <= self.limits.max_pipelined:
                    self._resume(PAUSE_PIPELINE)
                self._dispatch(request)
                if not self._advanced or self.closing:
                    return
        finally:
            self._dispatching = False
        if self._fatal is not None:
            self._send_fatal()
            return
        if self._read_closed and not self._unparsed:
            self._check_read_closed()
            return
        if self.current is not None:
            return        # its message is still being parsed; see on_message_complete
        if self.state != HEADERS:
            if self.factory.draining:
                self._close()
                return
            self.state = IDLE
            self._set_deadline(IDLE, self.limits.keepalive_timeout)
            if not self._parsing and len(self.factory.connections) >= KEEP_PARSER_BELOW:
                self.parser = None
        if self._unparsed and not self._paused:
            self._drain()

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
                transport.resumeProducing()   # read (and drop) what comes
            self._set_deadline(LINGERING, LINGER)
            return
        transport.loseConnection()

    def body_unread(self, request):
        return not request.body_complete

    def abort_response(self, request):
        """Cut a response that cannot be completed."""
        self.closing = True
        if not request.finished:
            request._finished()
        self.transport.abortConnection()

    def write(self, data):
        """Write response bytes.  On a plain TCP socket with nothing queued,
        send at once: Twisted would otherwise queue the bytes and send them
        on the next reactor turn (two epoll updates per response)."""
        sock = self._sock
        active = self.active
        # The last response of a connection goes through the transport: it
        # sends it and closes in one turn (no extra empty send).
        if sock is not None and (active is None or active.keep_alive):
            transport = self.transport
            if not transport.dataBuffer and not transport._tempDataBuffer \
                    and transport.producer is None and not transport.disconnecting:
                try:
                    sent = sock.send(data)
                except BlockingIOError:
                    sent = 0
                except OSError:
                    sent = 0      # the transport finds the error and closes
                if sent == len(data):
                    return
                if sent:
                    data = data[sent:]
        self.transport.write(data)

    def drain(self):
        """Graceful shutdown: close now if idle, else after this response."""
        if self.closing:
            return
        if self.state == IDLE and self.active is None:
            self._close()

    # -- reading control ---------------------------------------------------

    def pause_body(self):
        """Stop reading the request body (backpressure from its consumer);
        the body timeout does not run while we are the ones not reading."""
        self._pause(PAUSE_BODY)
        if self.state == BODY:
            self._deadline = None

    def resume_body(self):
        self._resume(PAUSE_BODY)
        # (Resuming feeds what was held back; its consumer may have paused
        # the body again meanwhile: then the timeout does not run.)
        if self.state == BODY and self._deadline is None and not self.closing \
                and not self._paused & PAUSE_BODY:
            self._set_deadline(BODY, self.limits.body_timeout)

    def _pause(self, reason):
        # (A half-closed transport reads no more: it is never paused or
        # resumed -- resuming would read its end of file again.)
        if not self._paused and not self.closing and not self._read_closed:
            self.transport.pauseProducing()
        self._paused |= reason

    def _resume(self, reason):
        if not self._paused & reason:
            return
        self._paused &= ~reason
        if not self._paused and not self.closing:
            if not self._read_closed:
                self.transport.resumeProducing()
            if self._unparsed:
                self._drain()

    # -- errors and timeouts -----------------------------------------------

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
            status_line(status) + b"Date: " + http_date_now() + b"\r\n" + SERVER_HEADER
            + b"Content-Type: text/html; charset=utf-8\r\n"
            + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        self._close(linger=True)

    def _set_deadline(self, state, seconds):
        self._deadline_state = state
        self._deadline = deadline = self.factory.now() + seconds
        slot = self._wheel_slot
        if slot is None or deadline < slot - 1:
            self._wheel_slot = self.factory.wheel.add(self, deadline, slot)

    def deadline_check(self, slot, now):
        """Called by the factory's timer wheel for an entry at ``slot``."""
        if slot != self._wheel_slot:
            return                       # a stale entry; a newer one exists
        self._wheel_slot = None
        deadline = self._deadline
        if deadline is None or self.closing and not self._lingering:
            return
        if deadline > now:
            self._wheel_slot = self.factory.wheel.add(self, deadline)
            return
        self._deadline = None
        state = self._deadline_state
        if state == LINGERING:
            self.transport.loseConnection()
        elif state == IDLE:
            log.debug("closing idle connection from {client}", client=self.peer_host)
            self._close()
        elif state == HEADERS:
            if self.state == HEADERS:
                self.protocol_error(408, "request header timeout")
        elif state == BODY:
            self.protocol_error(408, "request body timeout")
        elif state == SENDING:
            self._check_sending(now)

    def unsent(self):
        """Bytes in the kernel's send queue for this connection (not yet
        acknowledged by the client), or None where it cannot be read (TLS).
        A reader slower than the queue is long frees no room for minutes
        (Twisted's buffer and the producer's pause do not move), yet this
        number falls as it reads."""
        sock = self._sock
        if sock is None:
            return None
        try:
            return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ,
                                                  b"\0\0\0\0"))[0]
        except (OSError, ValueError):
            return None

    def _send_progress(self):
        """What has left (or is queued) so far, for SendTimeout: None when
        nothing waits on the client (the response's producer is slow, or it
        is over)."""
        active = self.active
        if active is None or active.state == FINISHED:
            return None
        transport = self.transport
        if self._sock is not None and transport.producer is None \
                and not transport.dataBuffer and not transport._tempDataLen:
            return None        # plain TCP, nothing queued (a program still running)
        # A pull producer (sendfile) is only ever waiting for the socket.
        waiting_pull = getattr(transport, "producer", None) is not None and \
            not getattr(transport, "streamingProducer", True)
        buffered = 0
        offsets = []
        while transport is not None:         # TLS: down to the TCP transport
            data = getattr(transport, "dataBuffer", None)
            if data is not None:
                buffered += len(data) - transport.offset + transport._tempDataLen
                offsets.append((id(data), transport.offset))
            transport = getattr(transport, "transport", None)
        if not buffered and not waiting_pull:
            return None
        return (active.bytes_sent, buffered, tuple(offsets), self.unsent())

    def _watch_sending(self):
        self._sent_mark = self._send_progress()
        self._set_deadline(SENDING, self.limits.send_timeout)

    def _check_sending(self, now):
        mark = self._send_progress()
        last = self._sent_mark
        if mark is not None and last is not None and mark[:3] == last[:3] \
                and not drained(last[3], mark[3]):
            # Nothing moved -- but for the kernel's queue, which a slow
            # reader drains long before it frees room for more of ours.
            log.info("closing connection from {client}: it read nothing for "
                     "{timeout} s (SendTimeout)", client=self.peer_host,
                     timeout=self.limits.send_timeout)
            self.active.abort()
            return
        # Progress (or nothing waiting on the client): look again later.
        self._sent_mark = mark
        if self.active is not None and not self.closing:
            self._set_deadline(SENDING, self.limits.send_timeout)


def _failure_of(exc):
    from twisted.python.failure import Failure
    return Failure(exc, type(exc), exc.__traceback__)


def _status_for_parser_error(e):
    """(status, detail) for an llhttp error."""
    detail = str(e) or type(e).__name__
    text = detail.lower()
    if "pri/upgrade" in text:
        return 505, "HTTP/2 connection preface: this server speaks HTTP/1.1 only"
    if "transfer-encoding" in text and "invalid" in text and "header value" not in text:
        return 501, "unsupported transfer coding"
    return 400, detail


class DeadlineWheel:
    """Every connection deadline of one factory, in one-second buckets.

    One reactor timer ticks once a second while any deadline is pending; a
    tick looks only at the bucket that is due, so the cost of a deadline is
    O(1) whatever the number of connections, and moving one later (every
    request, every body piece) costs nothing: the entry is checked when its
    bucket comes due and put back if the deadline moved.  Moving one earlier
    moves its entry; a closed connection leaves the wheel at once.
    """

    __slots__ = ("reactor", "buckets", "timer", "cursor")

    def __init__(self, reactor):
        self.reactor = reactor
        self.buckets = {}
        self.timer = None
        self.cursor = 0

    def add(self, connection, deadline, old_slot=None):
        """File ``connection`` under ``deadline`` (moving it from
        ``old_slot``); returns its slot.  A connection is in one bucket at
        most, so a closed one is dropped at once (see discard)."""
        if old_slot is not None:
            self.discard(connection, old_slot)
        slot = int(deadline) + 1
        bucket = self.buckets.get(slot)
        if bucket is None:
            self.buckets[slot] = {connection}
        else:
            bucket.add(connection)
        if self.timer is None:
            self.cursor = int(self.reactor.seconds())
            self.timer = self.reactor.callLater(1.0, self._tick)
        return slot

    def _tick(self):
        self.timer = None
        now = self.reactor.seconds()
        buckets = self.buckets
        end = int(now)
        slot = self.cursor + 1
        if end - slot > len(buckets):
            # Long gap (a fake clock jumping): walk the keys, not the seconds.
            due = sorted(s for s in buckets if s <= end)
        else:
            due = range(slot, end + 1)
        self.cursor = end
        for slot in due:
            bucket = buckets.pop(slot, None)
            if bucket:
                for connection in bucket:
                    connection.deadline_check(slot, now)
        if buckets and self.timer is None:
            self.timer = self.reactor.callLater(1.0, self._tick)

    def discard(self, connection, slot):
        bucket = self.buckets.get(slot)
        if bucket is not None:
            bucket.discard(connection)
            if not bucket:
                del self.buckets[slot]

    def stop(self):
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
        self.buckets.clear()


@implementer(IProtocolNegotiationFactory)
class HTTPFactory(Factory):
    """Builds a connection per client for one listening endpoint."""

    protocol = HTTPConnection
    noisy = False

    def acceptableProtocols(self):
        # TLS: what ALPN may choose.  Twisted answers a client offering ALPN
        # (every browser, curl) with a fatal "internal error" alert when the
        # factory names no protocol at all.
        return [b"http/1.1", b"http/1.0"]

    def __init__(self, handler, reactor=None, gate=None):
        if reactor is None:
            from twisted.internet import reactor
        self.handler = handler
        self.reactor = reactor
        self.connections = set()
        self.draining = False
        self.wheel = DeadlineWheel(reactor)
        self.gate = gate
        self.now = reactor.seconds
        self._tls = None

    def buildProtocol(self, addr):
        gate = self.gate
        if gate is not None and not gate.admit():
            return None
        return HTTPConnection(self)

    def limits(self):
        return self.handler.limits()

    def is_secure(self, transport):
        if self._tls is None:
            from twisted.internet.interfaces import ISSLTransport
            self._tls = ISSLTransport
        return self._tls.providedBy(transport)

    def connection_opened(self, connection):
        self.connections.add(connection)
        if self.gate is not None:
            self.gate.opened()

    def connection_closed(self, connection):
        self.connections.discard(connection)
        if self.gate is not None:
            self.gate.closed()

    def drain(self):
        """Stop keeping connections alive; close the idle ones now."""
        self.draining = True
        for connection in list(self.connections):
            connection.drain()

    def abort_all(self):
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abortConnection()


class ConnectionGate:
    """MaxConnections across every listener: past it, stop accepting (the
    listening sockets stop being read) until connections close."""

    def __init__(self, maximum):
        self.maximum = maximum
        self.count = 0
        self.ports = []
        self.paused = False

    def admit(self):
        # An accept burst may pass the limit before the ports are paused.
        if self.maximum and self.count >= self.maximum:
            self._pause()
            return False
        return True

    def opened(self):
        self.count += 1
        if self.maximum and self.count >= self.maximum:
            self._pause()

    def closed(self):
        self.count -= 1
        if self.paused and self.count < self.maximum:
            self.paused = False
            log.info("{count} connections: accepting again", count=self.count)
            for port in self.ports:
                port.startReading()

    def _pause(self):
        if not self.paused:
            self.paused = True
            log.warn("MaxConnections ({maximum}) reached: not accepting until "
                     "connections close", maximum=self.maximum)
            for port in self.ports:
                port.stopReading()
