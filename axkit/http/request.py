"""One HTTP request and the writing of its response.

A plugin reads the request (``method``, ``path``, ``headers``, ``query`` ...)
and answers with one of:

* ``request.send(status, body, content_type=...)`` -- a whole response;
* ``request.start_response(status, length)`` then ``write()``/``finish()``
  -- a streamed one (chunked on HTTP/1.1 when the length is not known);
* ``request.send_error(status)`` -- the core's error page.

Response headers go in ``request.response_headers`` before the head is sent.
"""

import re
from time import time as _time
from urllib.parse import unquote_to_bytes

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from axkit import SERVER_SOFTWARE

from axkit.notes import ERROR_HEADERS, HANDLER_FIELDS

from .dates import http_date
from .headers import Headers, normalise_host
from .status import STATUS_LINES, error_body, has_no_body, reason, status_line
from .timers import Deadline

SERVER_HEADER = b"Server: " + SERVER_SOFTWARE.encode("ascii") + b"\r\n"

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Headers the engine writes from the response's own state, never a plugin's.
_FRAMING = frozenset(("content-length", "transfer-encoding", "connection"))

# Request body bytes kept while no plugin consumes them; past it, reading pauses.
BODY_BUFFER = 65536

# Response states.
HEAD_PENDING = 0   # nothing sent yet
STREAMING = 1      # head sent, body in progress
FINISHED = 2       # complete (or aborted)


# Encoded and checked header lines, by (name, value): the same few lines
# (Content-Type, Cache-Control, a file's ETag...) recur response after response.
_LINES = {}
_LINES_MAX = 4096
# The lines of a whole set of fields, by the fields (a tuple of pairs).
_BLOCKS = {}
# The Date and Server lines, and the time (a whole second) they change.
_DATE_LINE = [0, b""]


def _header_line(item):
    """``Name: value\r\n`` for a response header, checked once: a name
    that is not a token or a value with CR, LF or NUL raises
    HeaderInjection (never sent); framing headers give b"" (the engine
    writes those from the response's own state)."""
    name, value = item
    value = str(value)
    if _BAD_VALUE.search(value) is not None or _HEADER_NAME.match(name) is None:
        raise HeaderInjection(f"refusing to send header {name!r}: {value!r}")
    if name.lower() in _FRAMING:
        line = b""
    else:
        line = f"{name}: {value}\r\n".encode("latin-1")
    try:
        if len(_LINES) >= _LINES_MAX:
            _LINES.clear()
        _LINES[item] = line
    except TypeError:
        pass                      # an unhashable value: not cached
    return line


def _header_block(items, key):
    """The lines of all ``items`` (each checked and encoded once, see
    _header_line), kept under ``key`` when it is not None: the same fields
    (a file's ETag, Last-Modified, type...) recur response after response."""
    lines = []
    cache = _LINES
    for item in items:
        try:
            line = cache.get(item)
        except TypeError:                 # an unhashable value
            line = None
        if line is None:
            line = _header_line(item)
        lines.append(line)
    block = b"".join(lines)
    if key is not None:
        if len(_BLOCKS) >= _LINES_MAX:
            _BLOCKS.clear()
        _BLOCKS[key] = block
    return block


class BadTarget(Exception):
    """The request target cannot be mapped to a path (400)."""


class HeaderInjection(Exception):
    """A plugin set a header name or value that would break framing."""


def normalize_path(raw_path):
    """Percent-decode a URL path and remove dot segments (RFC 3986 §5.2.4).

    Raises BadTarget for a NUL, an invalid UTF-8 sequence, or ``..``
    climbing above the root.  Returns the decoded, normalised path.
    """
    if "%" in raw_path:
        if _BAD_PERCENT.search(raw_path) is not None:
            raise BadTarget("malformed percent-encoding in path")
        decoded = unquote_to_bytes(raw_path)
        try:
            path = decoded.decode("utf-8")
        except UnicodeDecodeError:
            raise BadTarget("path is not valid UTF-8")
    else:
        path = raw_path
    if "\x00" in path:
        raise BadTarget("NUL in path")
    if not path.startswith("/"):
        raise BadTarget("path must start with '/'")
    if "/." not in path and "//" not in path:
        return path
    out = []
    segments = path.split("/")
    for seg in segments[1:]:
        if seg == "..":
            if not out:
                raise BadTarget("path climbs above the root")
            out.pop()
        elif seg == "." or seg == "":
            continue
        else:
            out.append(seg)
    trailing = segments[-1] in ("", ".", "..") and len(segments) > 1
    result = "/" + "/".join(out)
    if trailing and out:
        result += "/"
    return result


_KEEP_ON_ERROR = frozenset(("allow", "location", "www-authenticate", "retry-after",
                            "content-range", "vary", "cache-control", "expires",
                            "etag", "last-modified", "set-cookie"))
_KEEP_ON_5XX = _KEEP_ON_ERROR - {"cache-control", "expires"}


def slash_redirect(request):
    """Answer a folder named without its trailing slash: 301 to the URL
    with it, query kept (Apache's mod_dir).  Returns the status."""
    from urllib.parse import quote
    location = quote(request.path, safe="/:@!$&'()*+,;=~") + "/"
    if request.query is not None:
        location += "?" + request.query
    request.response_headers.set("Location", location)
    return 301


class RequestWatcher:
    """Told of a request's end and of its client's half-close: register
    with ``request.watch(watcher)``.  (A CGI run is one; ``when_ended``
    and ``when_half_closed`` wrap a function in one.)"""
    __slots__ = ()

    def request_ended(self):
        """The response ended, however (finished, or ``request.aborted``)."""

    def client_half_closed(self):
        """The client closed its sending side while the response is pending."""


class _OnEnd(RequestWatcher):
    __slots__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn

    def request_ended(self):
        self.fn()


class _OnHalfClose(RequestWatcher):
    __slots__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn

    def client_half_closed(self):
        self.fn()


class Request:
    """A parsed request plus the state of its response."""

    __slots__ = (
        "channel", "method", "target", "version", "headers", "raw_path", "path",
        "query", "_host", "keep_alive", "server", "resolved", "conf", "chains",
        "filename", "path_info", "mime_type", "status", "response_headers",
        "state", "bytes_sent", "chunked", "head_only", "started", "notes",
        "body_complete", "body_length", "_body_pending", "_body_consumer",
        "_body_buffered",
        "_finish_waiters", "aborted", "_length", "user", "auth_type",
        "content_length", "error", "finfo", "trailers", "body_limit", "reason_text",
        "expect_failed", "continue_wanted", "continue_sent", "handler",
        "client_address", "client_port",
    )

    def __init__(self, channel, method, target, version, headers, keep_alive, started):
        self.channel = channel
        # The client, as the connection sees it (a plugin such as RemoteIP
        # may put the real one behind a proxy here).
        self.client_address = channel.peer_host
        self.client_port = channel.peer_port
        self.method = method            # "GET"
        self.target = target            # the raw request target, as sent
        self.version = version          # "1.1" or "1.0"
        self.headers = headers          # Headers (names lower-case)
        self.keep_alive = keep_alive
        self.started = started          # time the request began (seconds)
        path, _, query = target.partition("?")
        self.raw_path = path            # still percent-encoded
        self.query = query if _ else None
        self.path = None                # decoded, normalised (set by the engine)
        self._host = None               # see host
        self.server = None              # the ServerConfig answering
        self.resolved = None            # its merged scope
        self.conf = None
        self.chains = None
        self.filename = None            # set by uri_translation
        self.path_info = ""
        self.mime_type = None
        self.status = 200
        self.response_headers = Headers()
        self.state = HEAD_PENDING
        self.bytes_sent = 0             # body bytes written
        self.chunked = False
        self.head_only = method == "HEAD"
        self.notes = {}                 # free space for plugins
        self.body_complete = False
        self.body_length = 0
        self.content_length = None
        self._body_pending = None
        self._body_consumer = None
        self._body_buffered = 0
        self._finish_waiters = None
        self.aborted = False
        self._length = None
        self.user = None
        self.auth_type = None
        self.error = None
        self.finfo = None               # os.stat_result of filename, when known
        self.trailers = None            # Headers of a chunked body's trailer
        self.body_limit = channel.limits.body if channel.limits is not None else 0
        self.reason_text = None         # a reason phrase instead of the standard one
        self.expect_failed = False      # Expect: something other than 100-continue
        self.continue_wanted = False    # Expect: 100-continue, not answered yet
        self.continue_sent = False
        # Who answers, when not the file handlers (Apache's r->handler): set
        # by a plugin that claims the request before fixup ("cgi-script");
        # file-oriented plugins (compress, expires) leave such requests alone.
        self.handler = None

    def __repr__(self):
        return f"<Request {self.method} {self.target} HTTP/{self.version}>"

    # -- reading ---------------------------------------------------------

    @property
    def reactor(self):
        """The reactor serving this request (a fake clock under axkit.testing):
        what a plugin schedules its slow work on (deferLater, callLater)."""
        return self.channel.factory.reactor

    @property
    def host(self):
        """The host the request is for, as virtual hosts compare it: the
        Host field (an absolute-form target's authority replaced it),
        lower-cased, port and trailing dot stripped; '' when there is none."""
        host = self._host
        if host is None:
            host = self._host = normalise_host(self.headers.get("host") or "")
        return host

    @host.setter
    def host(self, value):
        self._host = value


    @property
    def secure(self):
        return self.channel.secure

    def read_body(self):
        """A Deferred firing with the whole request body (bytes).

        Only a plugin that asks gets the body collected in memory; its size
        is bounded by LimitRequestBody.
        """
        d = Deferred()
        pieces = []
        self.stream_body(pieces.append, lambda: d.callback(b"".join(pieces)))
        return d

    def stream_body(self, on_data, on_end):
        """Take the request body as it arrives: ``on_data(bytes)`` per piece,
        then ``on_end()``.  Use pause_body()/resume_body() for backpressure.

        Until a plugin calls this (or read_body), at most BODY_BUFFER bytes
        are kept and reading from the client pauses; when the response ends
        first, the body is read and dropped.
        """
        pending, self._body_pending = self._body_pending, None
        self._body_consumer = (on_data, on_end)
        if pending:
            for data in pending:
                on_data(data)
        self.channel.want_body(self)
        if self.body_complete:
            self._body_consumer = None
            on_end()

    def pause_body(self):
        self.channel.pause_body()

    def resume_body(self):
        self.channel.resume_body()

    def _body_arrived(self, data):
        self.body_length += len(data)
        consumer = self._body_consumer
        if consumer is not None:
            consumer[0](data)
            return
        if self.state == FINISHED:
            return
        if self._body_pending is None:
            self._body_pending = [data]
            self._body_buffered = len(data)
        else:
            self._body_pending.append(data)
            self._body_buffered += len(data)
        if self._body_buffered > BODY_BUFFER:
            self.channel.pause_body()

    def _body_done(self):
        self.body_complete = True
        consumer, self._body_consumer = self._body_consumer, None
        if consumer is not None:
            consumer[1]()

    # -- responding ------------------------------------------------------

    @property
    def headers_sent(self):
        return self.state != HEAD_PENDING

    @property
    def finished(self):
        return self.state == FINISHED

    def send(self, status=200, body=b"", content_type=None):
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
            self.channel.write(head + body)
            self.bytes_sent = len(body)
        self._finished()

    def send_error(self, status, detail=None):
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
            [(k, v) for k, v in self.response_headers if k.lower() in keep])
        decorate = self.notes.get(ERROR_HEADERS) if self.notes else None
        if decorate is not None:
            decorate(self.response_headers)
        if status >= 400 and not self.body_complete and self.channel.body_unread(self):
            # The rest of the body would be read as the next request: close.
            self.keep_alive = False
        body = b"" if has_no_body(status) else error_body(status, detail)
        self.send(status, body, "text/html; charset=utf-8" if body else None)

    def start_response(self, status=None, length=None):
        """Send the head.  ``length=None``: chunked (HTTP/1.1) or close-delimited."""
        if status is not None:
            self.status = status
        self._length = length
        self.channel.write(self._head())
        self.state = STREAMING
        if has_no_body(self.status):
            self._length = 0

    def write(self, data):
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

    def finish(self):
        """End the response (sends the head first if nothing was written)."""
        if self.state == FINISHED:
            return
        if self.state == HEAD_PENDING:
            self._length = 0 if self._length is None else self._length
            self.start_response()
        if self.chunked and not self.head_only:
            self.channel.write(b"0\r\n\r\n")
        elif self._length is not None and self.bytes_sent < self._length \
                and not self.head_only and not has_no_body(self.status):
            # Fewer bytes than promised: the client must not take this as complete.
            self.keep_alive = False
        self._finished()

    def abort(self):
        """Cut the connection: the response cannot be completed."""
        if self.state == FINISHED:
            return
        self.keep_alive = False
        self.aborted = True
        self.channel.abort_response(self)

    def register_producer(self, producer, streaming):
        """Twisted's producer/consumer contract: a push producer
        (``streaming=True``) is paused while the client's socket is full and
        resumed when it drains; a pull producer is asked for more each time
        it drained.  One producer at a time; unregister it before finishing."""
        self.channel.transport.registerProducer(producer, streaming)

    def unregister_producer(self):
        self.channel.transport.unregisterProducer()

    # The request is an IConsumer (Twisted's FileSender, a treq body can
    # write to it directly).
    registerProducer = register_producer
    unregisterProducer = unregister_producer

    # -- the handler API ----------------------------------------------------
    # What a handler (CGI, WSGI, a proxy, an XSLT stage) needs beyond the
    # response methods above; docs/hooks.md, "Writing a handler".

    def send_file(self, source, *, conditional=True, offset=0, length=None):
        """Answer with a file: ``source`` is a path or an open binary file.

        ``conditional`` (a path or file sent whole with status 200): the
        same answer serve_file gives -- ETag and Last-Modified, 304/412,
        ranges (206/416), HEAD, the file cache, zero-copy sendfile; fields
        already set (Content-Type, Cache-Control) are kept.  Otherwise the
        bytes from ``offset`` (a file object: its current position) for
        ``length`` (to the end) are sent as the body of ``self.status``
        with the fields already set, zero-copy where the socket allows.
        A file object handed in stays open (it is its owner's to close).
        Returns a Deferred firing with True when the response completed,
        False when it was cut."""
        from axkit.files.respond import send_file
        return send_file(self, source, conditional, offset, length)

    def add_handler_fields(self, fields):
        """Add the response fields a handler produced after the fixup phase
        (a CGI program's head, a WSGI start_response, a backend's answer):
        the scope's ``Header`` operations apply over them, as Apache runs
        mod_headers after the handler."""
        merge = self.notes.get(HANDLER_FIELDS) if self.notes else None
        if merge is not None:
            merge(self, fields)
        else:
            self.response_headers.extend(fields)

    def write_raw(self, data):
        """Send bytes as they are, no framing: for a handler that speaks
        HTTP itself (an nph- program).  The first call counts as the head;
        the connection closes after the response (its end cannot be seen)."""
        if self.state == FINISHED:
            return
        if self.state == HEAD_PENDING:
            self.keep_alive = False
            self.state = STREAMING
        self.bytes_sent += len(data)
        self.channel.write(data)

    def internal_redirect(self, location):
        """Answer this request as a GET of ``location`` (a local path with an
        optional query) through the phases again -- Apache's internal
        redirect (a CGI local redirect, X-Accel-Redirect).  Request headers
        are kept minus those of its body; HEAD stays HEAD; nothing of the
        first answer's head survives."""
        self.channel.handler.internal_redirect(self, location)

    def resolve_file(self):
        """Merge the <Files> sections that match ``self.filename`` into this
        request's scope (``conf``), as the engine does after uri_translation:
        for a handler that maps the URL to a file itself."""
        self.channel.handler.resolve_file(self)

    def deadline(self, on_expire):
        """A ``Deadline`` (axkit.http.timers) on the server's timer wheel,
        unarmed: ``d.after(seconds)`` arms it, ``d.extend(seconds)`` moves it
        on, ``d.cancel()``.  ``on_expire()`` runs once it has passed."""
        factory = self.channel.factory
        return Deadline(factory.wheel, factory.now, on_expire)

    def send_queue(self):
        """Bytes sent to the client and not yet acknowledged by it (the
        kernel's send queue), or None where that cannot be read (TLS).  It
        falls as a slow reader reads, long before the transport has room."""
        return self.channel.unsent()

    def client_read_since(self, mark):
        """Whether the client took at least MIN_DRAIN bytes of its send queue
        since ``mark`` (an earlier ``send_queue()``): a slow reader counts as
        reading, one taking a few bytes a minute to hold a slot does not."""
        from .connection import drained
        return drained(mark, self.channel.unsent())

    def zero_copy_transport(self):
        """The transport to ``os.sendfile`` into (axkit.files.producers), or
        None when there is none to use (TLS, memory transports)."""
        return self.channel.transport

    @property
    def local_address(self):
        """(host, port) of the socket the request arrived on; (None, None)
        where the transport has no such address (UNIX sockets)."""
        host = self.channel.transport.getHost()
        return getattr(host, "host", None), getattr(host, "port", None)

    @property
    def connection_notes(self):
        """Free space for plugins, per connection (kept across its requests)."""
        return self.channel.notes

    @property
    def connection_requests(self):
        """Requests this connection carried before this one (keep-alive)."""
        return max(0, self.channel.requests - 1)

    def notify_finish(self):
        """A Deferred that fires when the response is complete, or fails if
        the connection is lost first."""
        d = Deferred()
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

    def when_lost(self, fn):
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

    def watch(self, watcher):
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

    def when_ended(self, fn):
        """Call ``fn()`` when the response ends, however it ends: finished
        (by the plugin, or by the engine answering in its place -- a body
        that broke or timed out) or aborted (``request.aborted``).  For
        work started per request that must stop with it (a CGI program)."""
        self.watch(_OnEnd(fn))

    def when_half_closed(self, fn):
        """Call ``fn()`` when the client closes its sending side (a FIN)
        while this response is pending -- at once if it already has.  The
        client may still be reading (``nc -N``) or be gone: only a write
        can tell.  For work that would otherwise wait long in silence (a
        CGI program), to bound the wait."""
        self.watch(_OnHalfClose(fn))

    def _half_closed(self):
        """The connection saw the client's FIN: tell the watchers."""
        waiters = self._finish_waiters
        if waiters:
            for waiter in [w for w in waiters if isinstance(w, RequestWatcher)]:
                waiter.client_half_closed()

    def _finished(self):
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
                elif self.aborted:          # from when_lost
                    d()
        self.channel.response_finished(self)

    def _head(self):
        status = self.status
        parts = [STATUS_LINES.get(status) or status_line(status, self.reason_text)
                 if self.reason_text is None else status_line(status, self.reason_text)]
        append = parts.append
        items = tuple(self.response_headers._items)
        try:
            block = _BLOCKS.get(items)
        except TypeError:                 # an unhashable value
            block = None
            items = None
        if block is None:
            block = _header_block(self.response_headers._items, items)
        append(block)
        if _time() >= _DATE_LINE[0]:
            # A new second: the Date (and Server) line again.
            now = _time()
            _DATE_LINE[0] = int(now) + 1
            _DATE_LINE[1] = b"Date: " + http_date(now).encode("ascii") + b"\r\n" + SERVER_HEADER
        append(_DATE_LINE[1])
        if status >= 200 and status != 204 and status != 304:     # may have a body
            if self._length is not None:
                append(b"Content-Length: %d\r\n" % self._length)
            elif self.head_only:
                # A HEAD whose GET length is unknown: no framing at all (a
                # Content-Length: 0 would be a lie a cache keeps; nginx and
                # Apache send neither header).
                pass
            elif self.version == "1.1":
                self.chunked = True
                append(b"Transfer-Encoding: chunked\r\n")
            else:
                self.keep_alive = False   # the body is delimited by closing
        channel = self.channel
        if not self.keep_alive or channel.closing or channel.factory.draining or (
                self.continue_wanted and not self.body_complete):
            self.keep_alive = False
            append(b"Connection: close\r\n")
        elif self.version == "1.0":
            append(b"Connection: keep-alive\r\n")
        append(b"\r\n")
        self.state = STREAMING
        return b"".join(parts)

    @property
    def reason(self):
        return reason(self.status)
