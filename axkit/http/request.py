"""One HTTP request and the writing of its response.

A plugin reads the request (``method``, ``path``, ``headers``, ``query`` ...)
and answers with one of:

* ``request.send(status, body, content_type=...)`` -- a whole response;
* ``request.start_response(status, length)`` then ``write()``/``finish()``
  -- a streamed one (chunked on HTTP/1.1 when the length is not known);
* ``request.send_error(status)`` -- the core's error page.

Response headers go in ``request.response_headers`` before the head is sent.

Request is ~370 lines with its mixins' methods apart (body.py, handling.py)
because every response method reads and writes the same framing state
(state, length, chunked, keep-alive); it is slotted (one per request).
"""

import os
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from axkit.notes import ERROR_DOCUMENT, ERROR_HEADERS, ERROR_STATUS

from .body import RequestBody
from .handling import HandlerAPI
from .head import SERVER_HEADER, HeaderInjection, head_bytes
from .headers import Headers, normalise_host
from .paths import BadTarget, normalize_path, slash_redirect
from .states import FINISHED, HEAD_PENDING, STREAMING
from .status import error_body, has_no_body, reason

# (SERVER_HEADER, HeaderInjection, BadTarget, normalize_path and
# slash_redirect are imported from here by older code: re-exported.)
__all__ = [
    "Request",
    "RequestWatcher",
    "SERVER_HEADER",
    "HeaderInjection",
    "BadTarget",
    "normalize_path",
    "slash_redirect",
    "HEAD_PENDING",
    "STREAMING",
    "FINISHED",
]


_KEEP_ON_ERROR = frozenset(
    (
        "allow",
        "location",
        "www-authenticate",
        "retry-after",
        "content-range",
        "vary",
        "cache-control",
        "expires",
        "etag",
        "last-modified",
        "set-cookie",
    )
)
_KEEP_ON_5XX = _KEEP_ON_ERROR - {"cache-control", "expires"}


class RequestWatcher:
    """Told of a request's end and of its client's half-close: register
    with ``request.watch(watcher)``.  (A CGI run is one; ``when_ended``
    and ``when_half_closed`` wrap a function in one.)"""

    __slots__ = ()

    def request_ended(self) -> None:
        """The response ended, however (finished, or ``request.aborted``)."""

    def client_half_closed(self) -> None:
        """The client closed its sending side while the response is pending."""


class _OnEnd(RequestWatcher):
    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], object]) -> None:
        self.fn = fn

    def request_ended(self) -> None:
        self.fn()


class _OnHalfClose(RequestWatcher):
    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], object]) -> None:
        self.fn = fn

    def client_half_closed(self) -> None:
        self.fn()


class Request(RequestBody, HandlerAPI):
    """A parsed request plus the state of its response."""

    __slots__ = (
        "channel",
        "method",
        "target",
        "version",
        "headers",
        "raw_path",
        "path",
        "query",
        "_host",
        "keep_alive",
        "server",
        "resolved",
        "conf",
        "chains",
        "filename",
        "path_info",
        "mime_type",
        "status",
        "response_headers",
        "state",
        "bytes_sent",
        "chunked",
        "head_only",
        "started",
        "notes",
        "body_complete",
        "body_length",
        "_body_pending",
        "_body_consumer",
        "_body_buffered",
        "_finish_waiters",
        "aborted",
        "_length",
        "user",
        "auth_type",
        "content_length",
        "error",
        "finfo",
        "trailers",
        "body_limit",
        "reason_text",
        "expect_failed",
        "continue_wanted",
        "handler",
        "client_address",
        "client_port",
    )

    def __init__(
        self,
        channel: Any,
        method: str,
        target: str,
        version: str,
        headers: Headers,
        keep_alive: bool,
        started: float,
    ) -> None:
        self.channel: Any = channel
        # The client, as the connection sees it (a plugin such as RemoteIP
        # may put the real one behind a proxy here).
        self.client_address: str | None = channel.peer_host
        self.client_port: int | None = channel.peer_port
        self.method: str = method  # "GET"
        self.target: str = target  # the raw request target, as sent
        self.version: str = version  # "1.1" or "1.0"
        self.headers: Headers = headers  # Headers (names lower-case)
        self.keep_alive: bool = keep_alive
        self.started: float = started  # time the request began (seconds)
        path, _, query = target.partition("?")
        self.raw_path: str = path  # still percent-encoded
        self.query: str | None = query if _ else None
        self.path: str | None = None  # decoded, normalised (set by the engine)
        self._host: str | None = None  # see host
        self.server: Any = None  # the ServerConfig answering
        self.resolved: Any = None  # its merged scope
        self.conf: Any = None
        self.chains: Any = None
        self.filename: str | None = None  # set by uri_translation
        self.path_info: str = ""
        self.mime_type: str | None = None
        self.status: int = 200
        self.response_headers: Headers = Headers()
        self.state: int = HEAD_PENDING
        self.bytes_sent: int = 0  # body bytes written
        self.chunked: bool = False
        self.head_only: bool = method == "HEAD"
        self.notes: dict[str, Any] = {}  # free space for plugins
        self.body_complete: bool = False
        self.body_length: int = 0
        self.content_length: int | None = None
        self._body_pending: list[bytes] | None = None
        self._body_consumer: tuple[Callable[[bytes], object], Callable[[], object]] | None = None
        self._body_buffered: int = 0
        self._finish_waiters: list[Any] | None = None
        self.aborted: bool = False
        self._length: int | None = None
        self.user: str | None = None
        self.auth_type: str | None = None
        self.error: Any = None
        self.finfo: os.stat_result | None = None  # os.stat_result of filename, when known
        self.trailers: Headers | None = None  # Headers of a chunked body's trailer
        self.body_limit: int = channel.limits.body if channel.limits is not None else 0
        self.reason_text: str | None = None  # a reason phrase instead of the standard one
        self.expect_failed: bool = False  # Expect: something other than 100-continue
        self.continue_wanted: bool = False  # Expect: 100-continue, not answered yet
        # Who answers, when not the file handlers (Apache's r->handler): set
        # by a plugin that claims the request before fixup ("cgi-script");
        # file-oriented plugins (compress, expires) leave such requests alone.
        self.handler: str | None = None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target} HTTP/{self.version}>"

    # -- reading ---------------------------------------------------------

    @property
    def reactor(self) -> Any:
        """The reactor serving this request (a fake clock under axkit.testing):
        what a plugin schedules its slow work on (deferLater, callLater)."""
        return self.channel.factory.reactor

    @property
    def host(self) -> str:
        """The host the request is for, as virtual hosts compare it: the
        Host field (an absolute-form target's authority replaced it),
        lower-cased, port and trailing dot stripped; '' when there is none."""
        host = self._host
        if host is None:
            host = self._host = normalise_host(self.headers.get("host") or "")
        return host

    @host.setter
    def host(self, value: str) -> None:
        self._host = value

    @property
    def secure(self) -> bool:
        return self.channel.secure

    # -- responding ------------------------------------------------------

    @property
    def headers_sent(self) -> bool:
        return self.state != HEAD_PENDING

    @property
    def finished(self) -> bool:
        return self.state == FINISHED

    def send(
        self, status: int = 200, body: bytes | str = b"", content_type: str | None = None
    ) -> None:
        """Send a whole response with a Content-Length and finish."""
        if isinstance(body, str):
            body = body.encode("utf-8")
            if content_type and "charset" not in content_type and content_type.startswith("text/"):
                content_type += "; charset=utf-8"
        if content_type is not None:
            self.response_headers.set("Content-Type", content_type)
        self.status = status
        self._length = len(body)
        head = self._head()
        if self.head_only or status < 200 or status == 204 or status == 304:
            self.channel.write(head)
        else:
            self.channel.write_pair(head, body)
            self.bytes_sent = len(body)
        self._finished()

    def send_error(self, status: int, detail: str | None = None) -> None:
        """Answer with the core's error page for ``status`` (if nothing was sent)."""
        if self.state != HEAD_PENDING:
            # Too late for a status: cut the response so the client sees it fail.
            self.abort()
            return
        self.reason_text = None
        # A 5xx never keeps the document's cache lifetime (a cache in front
        # must not keep a crash).  Then a plugin's error-page fields (the
        # headers plugin's `Header always`, Apache's err_headers_out).
        keep = _KEEP_ON_ERROR if status < 500 else _KEEP_ON_5XX
        self.response_headers = Headers(
            [(k, v) for k, v in self.response_headers if k.lower() in keep]
        )
        decorate = self.notes.get(ERROR_HEADERS) if self.notes else None
        if decorate is not None:
            decorate(self.response_headers)
        if status >= 400 and not self.body_complete and self.channel.body_unread(self):
            # The rest of the body would be read as the next request: close.
            self.keep_alive = False
        # An admin's own page for this status (ErrorDocument), if a plugin
        # left one: it answers with these fields, or declines.
        page = self.notes.get(ERROR_DOCUMENT) if self.notes else None
        if page is not None and page(self, status, detail):
            return
        body = b"" if has_no_body(status) else error_body(status, detail)
        self.send(status, body, "text/html; charset=utf-8" if body else None)

    def start_response(
        self, status: int | None = None, length: int | None = None, body_follows: bool = False
    ) -> None:
        """Send the head.  ``length=None``: chunked (HTTP/1.1) or close-delimited.
        ``body_follows``: the caller writes body bytes before it returns to
        the reactor (a sendfile), so the head may wait for them in the
        kernel and leave in the same packet (MSG_MORE)."""
        if status is not None:
            self.status = status
        self._length = length
        self.channel.write(self._head(), body_follows)
        self.state = STREAMING
        if has_no_body(self.status):
            self._length = 0

    def write(self, data: bytes) -> None:
        """Write a piece of the body (the head is sent first if it was not)."""
        if self.state == HEAD_PENDING:
            self.start_response()
        if self.state == FINISHED or not data or self.head_only or has_no_body(self.status):
            return
        self.bytes_sent += len(data)
        if self.chunked:
            self.channel.write(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            self.channel.write(data)

    def finish(self) -> None:
        """End the response (sends the head first if nothing was written)."""
        if self.state == FINISHED:
            return
        if self.state == HEAD_PENDING:
            self._length = 0 if self._length is None else self._length
            self.start_response()
        if self.chunked and not self.head_only:
            self.channel.write(b"0\r\n\r\n")
        elif (
            self._length is not None
            and self.bytes_sent < self._length
            and not self.head_only
            and not has_no_body(self.status)
        ):
            # Fewer bytes than promised: the client must not take this as complete.
            self.keep_alive = False
        self._finished()

    def abort(self) -> None:
        """Cut the connection: the response cannot be completed."""
        if self.state == FINISHED:
            return
        self.keep_alive = False
        self.aborted = True
        self.channel.abort_response(self)

    def register_producer(self, producer: Any, streaming: bool) -> None:
        """Twisted's producer/consumer contract: a push producer
        (``streaming=True``) is paused while the client's socket is full and
        resumed when it drains; a pull producer is asked for more each time
        it drained.  One producer at a time; unregister it before finishing."""
        self.channel.transport.registerProducer(producer, streaming)

    def unregister_producer(self) -> None:
        self.channel.transport.unregisterProducer()

    # The request is an IConsumer (Twisted's FileSender, a treq body can
    # write to it directly).
    registerProducer = register_producer
    unregisterProducer = unregister_producer

    def notify_finish(self) -> Deferred[None]:
        """A Deferred that fires when the response is complete, or fails if
        the connection is lost first."""
        d: Deferred[None] = Deferred()
        if self.state == FINISHED:
            if self.aborted:
                d.errback(Failure(ConnectionError("response aborted")))
            else:
                d.callback(None)
            return d
        if self._finish_waiters is None:
            self._finish_waiters = []
        self._finish_waiters.append(d)
        return d

    def when_lost(self, fn: Callable[[], object]) -> None:
        """Call ``fn()`` if the response ends aborted (the connection lost or
        the response cut): notify_finish().addErrback without a Deferred,
        for code that starts something per request (a CGI program)."""
        if self.state == FINISHED:
            if self.aborted:
                fn()
            return
        if self._finish_waiters is None:
            self._finish_waiters = []
        self._finish_waiters.append(fn)

    def watch(self, watcher: RequestWatcher) -> None:
        """Tell ``watcher`` (a RequestWatcher) of this response's end and of
        its client's half-close; at once of an end already past."""
        if self.state == FINISHED:
            watcher.request_ended()
            return
        if getattr(self.channel, "_read_closed", False):
            watcher.client_half_closed()
        if self._finish_waiters is None:
            self._finish_waiters = []
        self._finish_waiters.append(watcher)

    def when_ended(self, fn: Callable[[], object]) -> None:
        """Call ``fn()`` when the response ends, however it ends: finished
        (by the plugin, or by the engine answering in its place -- a body
        that broke or timed out) or aborted (``request.aborted``).  For
        work started per request that must stop with it (a CGI program)."""
        self.watch(_OnEnd(fn))

    def when_half_closed(self, fn: Callable[[], object]) -> None:
        """Call ``fn()`` when the client closes its sending side (a FIN)
        while this response is pending -- at once if it already has.  The
        client may still be reading (``nc -N``) or be gone: only a write
        can tell.  For work that would otherwise wait long in silence (a
        CGI program), to bound the wait."""
        self.watch(_OnHalfClose(fn))

    def _half_closed(self) -> None:
        """The connection saw the client's FIN: tell the watchers."""
        waiters = self._finish_waiters
        if waiters:
            for waiter in [w for w in waiters if isinstance(w, RequestWatcher)]:
                waiter.client_half_closed()

    def _finished(self) -> None:
        self.state = FINISHED
        self._body_pending = None
        waiters, self._finish_waiters = self._finish_waiters, None
        if waiters:
            for d in waiters:
                cls = d.__class__
                if cls is Deferred:
                    if self.aborted:
                        d.errback(Failure(ConnectionError("response aborted")))
                    else:
                        d.callback(None)
                elif isinstance(d, RequestWatcher):
                    d.request_ended()
                elif self.aborted:  # from when_lost
                    d()
        self.channel.response_finished(self)

    def _head(self) -> bytes:
        channel = self.channel
        keep_alive = (
            self.keep_alive
            and not channel.closing
            and not channel.factory.draining
            and not (self.continue_wanted and not self.body_complete)
        )
        status = self.status
        if status == 200 and self.notes and ERROR_STATUS in self.notes:
            # An ErrorDocument page answered 200: it goes out with the
            # error's status (Apache starts the page's request with it).
            status = self.status = self.notes[ERROR_STATUS]
            self.reason_text = None
        head, chunked, self.keep_alive = head_bytes(
            status,
            self.reason_text,
            self.response_headers._items,
            self._length,
            self.head_only,
            self.version,
            keep_alive,
        )
        if chunked:
            self.chunked = True
        self.state = STREAMING
        return head

    @property
    def reason(self) -> str:
        return reason(self.status)
