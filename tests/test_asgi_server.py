"""Plugin asgi end to end: a real server on 127.0.0.1, real sockets, a real
Starlette app run unchanged (lifespan state, streaming, background task)."""

import hashlib
import json

import treq
from twisted.internet import defer, reactor
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.trial.unittest import TestCase

from axkit.testing import http_pool, start_server

try:
    import starlette  # noqa: F401
except ImportError:
    starlette = None


class Reader(Protocol):
    """A raw client: ``until(text)`` fires once ``text`` has arrived."""

    def __init__(self, request):
        self.request = request
        self.data = b""
        self.waiting = []
        self.closed = defer.Deferred()

    def connectionMade(self):
        self.transport.write(self.request)

    def dataReceived(self, data):
        self.data += data
        for text, d in list(self.waiting):
            if text in self.data:
                self.waiting.remove((text, d))
                d.callback(self.data)

    def connectionLost(self, reason):
        self.closed.callback(self.data)

    def until(self, text, timeout=5):
        d = defer.Deferred()
        if text in self.data:
            d.callback(self.data)
        else:
            self.waiting.append((text, d))
        return d.addTimeout(timeout, reactor)


def connect(port, request):
    connected = defer.Deferred()
    factory = ClientFactory()

    def build(addr):
        protocol = Reader(request)
        reactor.callLater(0, connected.callback, protocol)
        return protocol

    factory.buildProtocol = build
    reactor.connectTCP("127.0.0.1", port, factory)
    return connected


class ServerTests(TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.server = yield start_server("""
            Plugin asgi
            ASGIAlias /hello tests.asgiapps.hello:app
            ASGIAlias /scope tests.asgiapps.probe:scope_app
            ASGIAlias /body tests.asgiapps.probe:body_app
            ASGIAlias /crash tests.asgiapps.probe:crash_app
            ASGIAlias /endless tests.asgiapps.probe:endless_app
        """)
        self.addCleanup(self.server.stop)
        self.pool = http_pool(self)

    @defer.inlineCallbacks
    def test_hello_keep_alive(self):
        conn = yield connect(self.server.port, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
        yield conn.until(b"Hello, world!\n")
        for _ in range(100):
            if conn.data.count(b"Hello, world!\n") == 3:
                break
            yield deferLater(0.02)
        self.assertEqual(conn.data.count(b"HTTP/1.1 200 OK"), 3)
        conn.transport.loseConnection()

    @defer.inlineCallbacks
    def test_scope_over_tcp(self):
        r = yield treq.get(self.server.url("/scope/a%2Fb?x=1"), pool=self.pool)
        scope = json.loads((yield r.content()))
        self.assertEqual(scope["client"][0], "127.0.0.1")
        self.assertEqual(scope["server"], ["127.0.0.1", self.server.port])
        self.assertEqual(scope["root_path"], "/scope")
        self.assertEqual(scope["query_string"], {"bytes": "x=1"})

    @defer.inlineCallbacks
    def test_upload_digest(self):
        body = bytes(range(256)) * 4096  # 1 MiB
        r = yield treq.post(self.server.url("/body"), data=body, pool=self.pool)
        sizes = json.loads((yield r.content()))
        self.assertEqual(sum(sizes), len(body))

    @defer.inlineCallbacks
    def test_crash_is_500_and_server_carries_on(self):
        r = yield treq.get(self.server.url("/crash"), pool=self.pool)
        self.assertEqual(r.code, 500)
        yield r.content()
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        r = yield treq.get(self.server.url("/hello"), pool=self.pool)
        self.assertEqual((yield r.content()), b"Hello, world!\n")

    @defer.inlineCallbacks
    def test_streaming_to_a_stalled_reader_is_bounded(self):
        """An app streaming to a client that reads nothing is held in send()."""
        from tests.asgiapps import probe

        probe.SEEN["events"].clear()
        conn = yield connect(self.server.port, b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
        conn.transport.pauseProducing()  # read nothing from now on
        yield deferLater(0.5)
        first = probe.SEEN["sent"]
        yield deferLater(0.3)
        # Held: no more is produced while the socket stays full, and what
        # was produced is what the kernel's buffers took plus HIGH_WATER.
        self.assertEqual(probe.SEEN["sent"], first)
        self.assertLess(first, 32 << 20, first)
        conn.transport.abortConnection()
        for _ in range(100):
            if probe.SEEN["events"]:
                break
            yield deferLater(0.02)
        self.assertEqual(probe.SEEN["events"], ["stopped: client gone"])


def deferLater(seconds):
    from twisted.internet.task import deferLater as later

    return later(reactor, seconds, lambda: None)


class StarletteTests(TestCase):
    if starlette is None:
        skip = "starlette is not installed (pip install -e '.[test]')"

    @defer.inlineCallbacks
    def setUp(self):
        self.server = yield start_server("""
            Plugin asgi
            ASGIAlias /star tests.asgiapps.starlette_app:app
            ASGILifespan on
        """)
        self.addCleanup(self.server.stop)
        self.pool = http_pool(self)

    @defer.inlineCallbacks
    def get(self, path):
        r = yield treq.get(self.server.url(path), pool=self.pool)
        body = yield r.content()
        return r.code, body

    @defer.inlineCallbacks
    def test_lifespan_state_and_root_path(self):
        code, body = yield self.get("/star/")
        self.assertEqual((code, body), (200, b"db=connected root=/star"))
        code, body = yield self.get("/star/nothing-here")
        self.assertEqual(code, 404)

    @defer.inlineCallbacks
    def test_stream_first_chunk_before_last_is_produced(self):
        conn = yield connect(self.server.port, b"GET /star/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        data = yield conn.until(b"first chunk\n")
        self.assertNotIn(b"last chunk", data)
        self.assertIn(b"Transfer-Encoding: chunked", data)
        code, body = yield self.get("/star/release")
        self.assertEqual(body, b"released")
        data = yield conn.until(b"0\r\n\r\n")
        self.assertIn(b"last chunk\n", data)
        conn.transport.loseConnection()

    @defer.inlineCallbacks
    def test_background_task_runs_after_the_response(self):
        code, body = yield self.get("/star/task")
        self.assertEqual((code, body), (200, b"accepted"))
        for _ in range(100):
            code, body = yield self.get("/star/tasks")
            if json.loads(body):
                break
            yield deferLater(0.02)
        self.assertEqual(json.loads(body), ["background done"])

    @defer.inlineCallbacks
    def test_post_body(self):
        payload = b"\x00\xff" * 300000
        r = yield treq.post(self.server.url("/star/digest"), data=payload, pool=self.pool)
        body = yield r.content()
        self.assertEqual(body.decode(), f"{len(payload)} {hashlib.sha256(payload).hexdigest()}")
