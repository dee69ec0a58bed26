"""The httptools (llhttp) adapter: the parser's callbacks, which turn a
request's bytes into a `Request` and its body pieces, and what an llhttp
error is answered with.

`RequestParsing` is a mixin of `axkit.http.connection.HTTPConnection`:
llhttp calls ``on_*`` on the connection itself (no object in between, so
no extra call per callback).  The callbacks move the connection through
the reading states (IDLE -> HEADERS -> BODY -> RESPONDING) and hand each
complete head to the connection's queue; when a request is answered is
connection.py's business, how a connection ends closing.py's.
The RFC 9112 checks of a head are plain functions in `axkit.http.framing`.
"""

from httptools import (
    HttpParserCallbackError,
    HttpParserInvalidMethodError,
    HttpRequestParser,
)
from twisted.logger import Logger

from .framing import (
    ProtocolError,
    check_transfer_coding,
    read_head,
    status_for_invalid_method,
    status_for_parser_error,
    target_form,
)
from .headers import Headers
from .request import FINISHED, Request
from .states import BODY, HEADERS, PAUSE_BODY, PAUSE_PIPELINE, PAUSE_UPGRADE, RESPONDING

log = Logger(namespace="axkit.http")


# Field names as received -> lower-case str, for the names clients send
# (bounded: past _NAMES_MAX, or for a long name, each is decoded anew).  The
# same str objects each time: their hashes are kept, and every later look-up
# by name (read_head, the field index, plugins) skips hashing them again.
_NAMES: dict[bytes, str] = {}
_NAMES_MAX = 512
# The methods of RFC 9110 and PATCH, as str, without a decode each.
_METHODS = {
    m.encode("ascii"): m
    for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT")
}


class _Stop(Exception):
    """Raised inside a parser callback to stop parsing (connection closing)."""


def new_parser(connection):
    """An llhttp request parser.  llhttp_init leaves every dangerous
    leniency off (lenient headers, chunked length, keep-alive, transfer
    encoding, version, data after close, optional CR/LF, spaces after a
    chunk size); we never turn one on (tests/test_http_framing.py checks the
    behaviour each of them would change)."""
    return HttpRequestParser(connection)


def _failure_of(exc):
    from twisted.python.failure import Failure

    return Failure(exc, type(exc), exc.__traceback__)


class RequestParsing:
    """The parser callbacks of a connection (slots: see HTTPConnection)."""

    __slots__ = ()

    def _parse_failed(self, e, data):
        """llhttp stopped on ``e`` (an HttpParserError) while parsing
        ``data``: answer the error it stands for, and close."""
        if isinstance(e, HttpParserCallbackError):
            # One of our callbacks raised.
            cause = e.__context__
            if isinstance(cause, ProtocolError):
                self.protocol_error(cause.status, cause.detail)
            elif isinstance(cause, _Stop):
                return
            else:
                log.failure(
                    "internal error while parsing a request",
                    failure=None if cause is None else _failure_of(cause),
                )
                self.protocol_error(500, "internal error")
        elif isinstance(e, HttpParserInvalidMethodError):
            self.protocol_error(*status_for_invalid_method(data))
        else:
            self.protocol_error(*status_for_parser_error(e))

    def _after_upgrade(self, data, e):
        # llhttp stops after a request with Upgrade (or a CONNECT), without
        # reading any body.  What follows the head is the new protocol's if
        # the request is answered 101 (request.upgrade, switching.py), else
        # the next request.  So it is held, unparsed, until the answer
        # (PAUSE_UPGRADE; _advance parses it after a plain answer).  After a
        # request with a body the connection closes after the answer, so a
        # body cannot be read as a request.
        rest = bytes(data[e.args[0] :]) if e.args else b""
        if self._switched is not None:
            # Answered 101 at once, while its head was being parsed.
            if getattr(self._switched, "transport", None) is None:
                self._hand_over(rest)
            return
        request = self._upgrade
        if not request or self.closing:
            self._stop_reading_after_current()
            return
        self.parser = new_parser(self)
        if request.state != FINISHED:
            self._unparsed = rest + self._unparsed
            self._pause(PAUSE_UPGRADE)
            return
        self._upgrade = False  # (answered at once, as plain HTTP)
        if rest and not self.closing:
            self._parse(rest)

    # -- the head ------------------------------------------------------------

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
        if size > limits.field_size or head > limits.header_size or len(fields) >= limits.fields:
            if size > limits.field_size:
                raise ProtocolError(431, "a header field is too large")
            if head > limits.header_size:
                raise ProtocolError(431, "the header block is too large")
            raise ProtocolError(431, "too many header fields")
        lname = _NAMES.get(name)
        if lname is None:
            lname = name.decode("latin-1").lower()
            if len(_NAMES) < _NAMES_MAX and len(name) <= 64:
                _NAMES[name] = lname
        fields.append((lname, value.decode("latin-1")))

    def _trailer(self, request, name, value):
        trailers = request.trailers
        if trailers is None:
            trailers = request.trailers = Headers()
        size = len(name) + len(value) + 4
        self._head_bytes += size
        if (
            size > self.limits.field_size
            or self._head_bytes > self.limits.header_size
            or len(trailers) >= self.limits.fields
        ):
            raise ProtocolError(431, "the trailer fields are too large")
        trailers.add(name.decode("latin-1").lower(), value.decode("latin-1"))

    def on_headers_complete(self):
        parser = self.parser
        target = b"".join(self._url).decode("latin-1")
        self._url = None
        version = parser.get_http_version()
        fields = self._fields
        self._fields = None
        keep_alive, length, transfer_encoding, expect = read_head(version, fields)
        raw_method = parser.get_method()
        method = _METHODS.get(raw_method)
        if method is None:
            method = raw_method.decode("ascii")
        request = Request(
            self,
            method,
            target,
            version,
            Headers(fields, lowered=True),
            keep_alive,
            self.factory.now(),
        )
        if target[0] != "/" or "#" in target:
            form = target_form(method, target)
            if form is not None:
                request.raw_path, request.query, authority = form
                if authority is not None:
                    request.headers.set("host", authority)
        self.current = request
        self.requests += 1
        max_requests = self.limits.max_requests
        if max_requests and self.requests >= max_requests:
            request.keep_alive = False
        if parser.should_upgrade():
            # Answered as plain HTTP unless a handler takes the upgrade
            # (request.upgrade); see _after_upgrade.
            self._upgrade = request
            if method == "CONNECT":
                request.keep_alive = False
        # Content-Length / Transfer-Encoding (RFC 9112 §6).
        if transfer_encoding is not None:
            check_transfer_coding(version, transfer_encoding, length)
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
        # Into the connection's order: answered now, or queued behind the
        # responses in progress (see connection.py: _dispatch, _advance).
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

    # -- the body ------------------------------------------------------------

    def on_body(self, data):
        if self.closing:
            raise _Stop()  # (answered and closing: the rest is dropped)
        request = self.current
        if request is None:
            return
        limit = request.body_limit
        # Checked before the piece is handed on: a consumer (an application)
        # never sees a byte past the limit.  A held request's own
        # (per-<Location>) limit is applied when it is dispatched, right
        # after this read: no more than a read is taken.
        if limit and request.body_length + len(data) > limit and request is not self._held:
            raise ProtocolError(413, "request body larger than LimitRequestBody")
        request._body_arrived(data)
        if not self._paused & PAUSE_BODY:
            if self._wheel_slot is None or self._deadline_state != BODY:
                # (After a pause that outlived the wheel entry, or another
                # kind of deadline: a new entry, or nothing would fire.)
                self._set_deadline(BODY, self.limits.body_timeout)
            else:
                self._deadline = self.factory.now() + self.limits.body_timeout
        if self._discarding:
            # (The response is complete: the rest of the body is dropped.)
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
            if self.active is not None and self.active.state != FINISHED and not self.closing:
                self._watch_sending()
