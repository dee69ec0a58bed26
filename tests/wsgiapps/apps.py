"""Small WSGI applications for the wsgi plugin's tests.

Most are wrapped in wsgiref.validate.validator, which raises (a 500 in the
tests) on anything PEP 3333 forbids, from the application or the server.
``EVENTS`` records what the tests check afterwards (close() calls...).
"""

import hashlib
import json
import threading
import time
from wsgiref.validate import validator

EVENTS = []
GATE = threading.Event()  # what blocking apps wait for
STARTED = threading.Semaphore(0)  # released when a blocking app starts


def reset():
    EVENTS.clear()
    GATE.clear()
    global STARTED
    STARTED = threading.Semaphore(0)


def _text(start_response, body, status="200 OK", extra=()):
    body = body.encode("utf-8") if isinstance(body, str) else body
    start_response(
        status,
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), *extra],
    )
    return [body]


def _environ_view(environ):
    view = {k: v for k, v in environ.items() if isinstance(v, str)}
    view["wsgi.version"] = list(environ["wsgi.version"])
    for k in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once", "wsgi.input_terminated"):
        view[k] = environ.get(k)
    return view


@validator
def env(environ, start_response):
    """The environ's str values (and the wsgi.* flags) as JSON."""
    return _text(
        start_response, json.dumps(_environ_view(environ)), extra=[("Content-Type-Echo", "x")]
    )


@validator
def hello(environ, start_response):
    return _text(start_response, "hello\n")


def _read_all(stream):
    pieces = []
    while True:
        piece = stream.read(65536)
        if not piece:
            return b"".join(pieces)
        pieces.append(piece)


def echo(environ, start_response):
    """The body read with read() (or as the query asks), and its digest."""
    stream = environ["wsgi.input"]
    how = environ.get("QUERY_STRING") or "read"
    if how == "read":
        body = stream.read()
    elif how.startswith("n="):
        n = int(how[2:])
        pieces = []
        while True:
            piece = stream.read(n)
            if not piece:
                break
            assert len(piece) <= n
            pieces.append(piece)
        body = b"".join(pieces)
    elif how == "lines":
        body = b"".join(stream.readline() for _ in range(3)) + _read_all(stream)
    elif how == "iter":
        body = b"".join(list(stream))
    elif how == "length":
        body = stream.read(int(environ.get("CONTENT_LENGTH") or 0))
    # After the end: b"" again, at once.
    assert stream.read(10) == b"" and stream.readline() == b"" and stream.read(1) == b""
    digest = hashlib.sha256(body).hexdigest()
    return _text(start_response, f"{len(body)} {digest}\n")


validated_echo = validator(echo)  # (read() without a size is not PEP 3333's)


class Closing:
    """An iterable recording its close() calls in EVENTS."""

    def __init__(self, pieces, name, fail_at=None):
        self.pieces = pieces
        self.name = name
        self.fail_at = fail_at

    def __iter__(self):
        for i, piece in enumerate(self.pieces):
            if i == self.fail_at:
                raise RuntimeError(f"{self.name} failed at piece {i}")
            EVENTS.append((self.name, "piece", i))
            yield piece

    def close(self):
        EVENTS.append((self.name, "close"))


def closing(environ, start_response):
    """?name=..&pieces=N&size=S&length=L&fail=I&status=..."""
    from urllib.parse import parse_qs

    q = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
    size = int(q.get("size", 5))
    pieces = [bytes([97 + i % 26]) * size for i in range(int(q.get("pieces", 3)))]
    headers = [("Content-Type", "text/plain")]
    if "length" in q:
        headers.append(("Content-Length", q["length"]))
    start_response(q.get("status", "200 OK"), headers)
    return Closing(pieces, q.get("name", "c"), int(q["fail"]) if "fail" in q else None)


validated_closing = validator(closing)


@validator
def raises(environ, start_response):
    raise ValueError("the application broke")


def late_error(environ, start_response):
    """Starts, then fails with exc_info: before output (status replaced)
    or after (?after: the connection is cut)."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    if "after" in environ["QUERY_STRING"]:
        write(b"partial ")
    try:
        raise KeyError("late")
    except KeyError:
        import sys

        start_response(
            "503 Busy Here",
            [("Content-Type", "text/plain"), ("Content-Length", "5")],
            sys.exc_info(),
        )
    return [b"oops\n"]


@validator
def writer(environ, start_response):
    """PEP 3333's write() callable, then an iterable."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"one ")
    write(b"two ")
    return [b"three"]


def hop_by_hop(environ, start_response):
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/plain"),
            ("Connection", "close"),
            ("Transfer-Encoding", "chunked"),
            ("Keep-Alive", "5"),
            ("X-Fine", "yes"),
            ("Content-Length", "3"),
        ],
    )
    return [b"ok\n"]


def bad_header(environ, start_response):
    start_response("200 OK", [("X-Bad", "a\r\nSet-Cookie: evil=1")])
    return [b"never"]


def custom_reason(environ, start_response):
    start_response("299 Very Fine", [("Content-Type", "text/plain")])
    return [b"fine"]


def generator(environ, start_response):
    """?n=pieces: chunked without a length."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    n = int(environ["QUERY_STRING"] or 3)
    for i in range(n):
        yield b"piece %d\n" % i


def blocking(environ, start_response):
    """Waits for GATE (a slow database)."""
    STARTED.release()
    GATE.wait(30)
    return _text(start_response, "unblocked\n")


class Produced:
    count = 0


def firehose(environ, start_response):
    """?mb=N megabytes in 64 KiB pieces, counting what it has produced."""
    Produced.count = 0
    total = int(environ["QUERY_STRING"] or 64) * 1024 * 1024
    start_response(
        "200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(total))]
    )
    piece = b"x" * 65536

    def gen():
        try:
            while Produced.count < total:
                Produced.count += len(piece)
                yield piece
        finally:
            EVENTS.append(("firehose", "finally"))

    return _Firehose(gen())


class _Firehose:
    def __init__(self, gen):
        self.gen = gen

    def __iter__(self):
        return self.gen

    def close(self):
        EVENTS.append(("firehose", "close"))
        self.gen.close()


def sleepy(environ, start_response):
    """Streams a piece every 50 ms (?n pieces)."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    n = int(environ["QUERY_STRING"] or 3)

    def gen():
        for i in range(n):
            yield b"tick %d\n" % i
            time.sleep(0.05)

    return _Firehose(gen())


def file_wrapper(environ, start_response):
    """Sends ?path with wsgi.file_wrapper (from offset ?skip)."""
    from urllib.parse import parse_qs

    q = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
    f = open(q["path"], "rb")
    f.seek(int(q.get("skip", 0)))
    start_response("200 OK", [("Content-Type", "application/octet-stream")])

    class Tracked:
        def __init__(self, f):
            self.f = f

        def read(self, *a):
            return self.f.read(*a)

        def fileno(self):
            return self.f.fileno()

        def tell(self):
            return self.f.tell()

        def close(self):
            EVENTS.append(("file", "close"))
            self.f.close()

    return environ["wsgi.file_wrapper"](Tracked(f), 8192)


validated_file_wrapper = validator(file_wrapper)


def careful_reader(environ, start_response):
    """Reads the whole body; records how reading ended in EVENTS."""
    stream = environ["wsgi.input"]
    total = 0
    try:
        while True:
            piece = stream.read(65536)
            if not piece:
                break
            total += len(piece)
        EVENTS.append(("reader", "complete", total))
    except OSError as e:
        EVENTS.append(("reader", type(e).__name__, total))
        raise
    return _text(start_response, f"{total}\n")


def empty_for_head(environ, start_response):
    """As Werkzeug answers HEAD: no length, no body."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    if environ["REQUEST_METHOD"] == "HEAD":
        return ()
    return (b"x" for _ in range(3))
