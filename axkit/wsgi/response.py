"""The application side of PEP 3333: start_response, write(), the iterable.

``run(exchange)`` is the job an application thread runs for one request.
PEP 3333's rules, and what servers are known to get wrong:

* the head goes out with the first non-empty body piece (or at the end),
  so ``start_response(..., exc_info)`` may still replace the status until
  then; after it, exc_info is re-raised and the connection is cut;
* the application's Content-Length is honoured: extra output is cut (and
  the iteration stopped), a short body closes the connection; without one,
  a list or tuple gets its length, anything else is chunked (HTTP/1.1);
* hop-by-hop fields (Connection, Transfer-Encoding, ...) are dropped (PEP
  3333 forbids them; logged once per mount and name), so are Date and
  Server (the engine sends its own); names and values are checked here,
  on the application's thread, so a bad one is the application's error;
* ``close()`` of the iterable is called exactly once, whatever happens:
  normal end, an exception while iterating, the client gone, HEAD (the
  iteration stops after the head), the Content-Length reached.
"""

import re
from functools import partial

from twisted.python.failure import Failure

from axkit.http.headers import BAD_FIELD_VALUE, FIELD_NAME
from axkit.http.headers import HOP_BY_HOP as HEADERS_HOP_BY_HOP

from .exchange import ClientGone
from .filewrapper import FileWrapper, send_file

_TOKEN = FIELD_NAME
_BAD_VALUE = BAD_FIELD_VALUE
_STATUS = re.compile(r"([1-9][0-9][0-9])(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?\Z")

HOP_BY_HOP = HEADERS_HOP_BY_HOP | frozenset(
    ("proxy-authenticate", "proxy-authorization", "trailers")
)
ENGINE_OWN = frozenset(("date", "server"))

_statuses = {}
_checked = {}
_CACHE_MAX = 4096


def parse_status(status):
    """'200 OK' -> (200, None); a reason other than the standard one is kept."""
    found = _statuses.get(status) if status.__class__ is str else None
    if found is not None:
        return found
    if not isinstance(status, str):
        raise TypeError(f"WSGI status must be a str, got {status!r}")
    m = _STATUS.match(status)
    if m is None:
        raise ValueError(f"malformed WSGI status {status!r} (expected '200 OK')")
    code = int(m.group(1))
    if code < 200:
        raise ValueError(f"WSGI status {status!r}: an application cannot send 1xx")
    from axkit.http.status import REASONS

    text = m.group(2)
    reason = None if text is None or REASONS.get(code) == text else text
    if reason is not None:
        reason.encode("latin-1")
    found = (code, reason)
    if len(_statuses) < _CACHE_MAX:
        _statuses[status] = found
    return found


def check_header(item):
    """The lower-cased name of a valid (name, value) pair; raises otherwise."""
    try:
        lowered = _checked.get(item)
    except TypeError:
        lowered = None
    if lowered is not None:
        return lowered
    if not isinstance(item, tuple) or len(item) != 2:
        raise TypeError(f"WSGI header must be a (name, value) tuple, got {item!r}")
    name, value = item
    if not isinstance(name, str) or not isinstance(value, str):
        raise TypeError(f"WSGI header name and value must be str, got {item!r}")
    if _TOKEN.match(name) is None:
        raise ValueError(f"invalid WSGI header name {name!r}")
    if _BAD_VALUE.search(value) is not None:
        raise ValueError(
            f"WSGI header {name} has a control character (CR, LF...) in its value {value!r}"
        )
    value.encode("latin-1")  # UnicodeEncodeError: not bytes-as-latin-1
    lowered = name.lower()
    if len(_checked) < _CACHE_MAX:
        _checked[item] = lowered
    return lowered


class Responder:
    """start_response and write() of one request (application thread)."""

    __slots__ = (
        "exchange",
        "status",
        "reason",
        "headers",
        "length",
        "head_sent",
        "sent",
        "complete",
        "head_only",
    )

    def __init__(self, exchange):
        self.exchange = exchange
        self.status = None
        self.reason = None
        self.headers = None
        self.length = None  # the application's Content-Length
        self.head_sent = False
        self.sent = 0
        self.complete = False  # Content-Length reached (or HEAD's head out)
        self.head_only = exchange.request.head_only

    def start_response(self, status, headers, exc_info=None):
        if exc_info is not None:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response() called again without exc_info")
        found = _statuses.get(status) if status.__class__ is str else None
        code, reason = found if found is not None else parse_status(status)
        kept = []
        length = None
        mount = self.exchange.mount
        checked = _checked
        for item in headers:
            try:
                lowered = checked.get(item)  # (check_header's cache, inlined)
            except TypeError:  # (unhashable: check_header says why)
                lowered = None
            if lowered is None:
                lowered = check_header(item)
            if lowered == "content-length":
                value = item[1].strip()
                if not value.isdigit() or (length is not None and int(value) != length):
                    raise ValueError(f"invalid Content-Length {item[1]!r}")
                length = int(value)
            elif lowered in HOP_BY_HOP:
                mount.dropped(lowered, self.exchange)
            elif lowered not in ENGINE_OWN:
                kept.append(item)
        self.status, self.reason, self.headers, self.length = code, reason, kept, length
        return self.write

    def write(self, data):
        """PEP 3333's write(): sent at once (waiting while the client is slow)."""
        if data.__class__ is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"WSGI body data must be bytes, got {type(data).__name__}")
            data = bytes(data)
        if data:
            self.piece(data)

    def piece(self, data):
        """One non-empty body piece; False once nothing more is wanted."""
        if self.complete:
            return False
        if self.status is None:
            raise AssertionError("the application sent body data before start_response()")
        exchange = self.exchange
        length = self.length
        last = False
        if length is not None:
            room = length - self.sent
            if len(data) >= room:
                data = data[:room]
                last = True
        if not self.head_sent:
            self.head_sent = True
            if last:
                self.complete = True
                exchange.emit(
                    partial(exchange.whole, self.status, self.reason, self.headers, data, length)
                )
                return False
            exchange.emit(partial(exchange.head, self.status, self.reason, self.headers, length))
            if self.head_only:
                self.complete = True
                return False
        exchange.emit(data, len(data))
        self.sent += len(data)
        if last:
            self.complete = True
            return False
        return True

    def end(self):
        """The iteration is over: the response ends."""
        exchange = self.exchange
        if not self.head_sent:
            if self.status is None:
                raise AssertionError("the application returned without calling start_response()")
            self.head_sent = True
            length = self.length
            if length is None and not self.head_only:
                length = 0  # (HEAD: unknown -- frameworks send no body for it)
            exchange.emit(
                partial(exchange.whole, self.status, self.reason, self.headers, b"", length)
            )
        else:
            exchange.emit(exchange.finish)

    def whole(self, body):
        """The body known in full (a list or tuple returned)."""
        length = self.length
        if length is None:
            # A HEAD answered with no body says nothing of the GET's length
            # (Werkzeug returns () for HEAD): no Content-Length then.
            length = len(body) if body or not self.head_only else None
        elif len(body) > length:
            body = body[:length]
        self.head_sent = self.complete = True
        exchange = self.exchange
        exchange.emit(partial(exchange.whole, self.status, self.reason, self.headers, body, length))


def consume(responder, result):
    """Send what the application returned.  True when ``result``'s close()
    was handed on (a file sent by the engine closes it when done)."""
    cls = result.__class__
    if (cls is list or cls is tuple) and not responder.head_sent:
        if responder.status is None:
            raise AssertionError("the application returned without calling start_response()")
        for chunk in result:
            if chunk.__class__ is not bytes:
                raise TypeError(f"WSGI body data must be bytes, got {type(chunk).__name__}")
        responder.whole(result[0] if len(result) == 1 else b"".join(result))
        return False
    if cls is FileWrapper and not responder.head_sent and responder.status is not None:
        if send_file(responder, result):
            return True
    for chunk in result:
        if chunk.__class__ is not bytes:
            raise TypeError(f"WSGI body data must be bytes, got {type(chunk).__name__}")
        if chunk and responder.piece(chunk) is False:
            break
    responder.end()
    return False


def run(exchange):
    """The job for one request, on an application thread."""
    if exchange.gone:  # the client left while it waited
        exchange.finished_with_input()
        return
    mount = exchange.mount
    try:
        app = mount.app or mount.application()
    except BaseException:
        exchange.emit(lambda f=Failure(): exchange.fail(f, "could not be loaded"))  # noqa: B008 (the failure now)
        exchange.finished_with_input()
        return
    responder = Responder(exchange)
    result = None
    handed_on = False
    try:
        result = app(exchange.environ, responder.start_response)
        handed_on = consume(responder, result)
    except ClientGone:
        pass
    except BaseException:
        exchange.emit(lambda f=Failure(): exchange.fail(f))  # noqa: B008 (the failure now)
    finally:
        if result is not None and not handed_on and hasattr(result, "close"):
            try:
                result.close()
            except BaseException:
                exchange.emit(lambda f=Failure(): exchange.fail(f, "failed in close()"))  # noqa: B008 (the failure now)
        if exchange.input is not None:
            exchange.finished_with_input()
