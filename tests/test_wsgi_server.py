"""The wsgi plugin through a real server on 127.0.0.1, applications on
real threads: blocking apps, the queue and its 503, backpressure both ways,
clients that leave, Expect: 100-continue, chunked uploads."""

import hashlib
import os
import socket
import time

from twisted.internet import defer, threads
from twisted.trial.unittest import TestCase

from axkit.wsgi import pool as pools

from .cgi_support import request, wait_until
from .test_wsgi_protocol import APPS, plugin_line
from .wsgiapps import apps


def config(docroot, extra=""):
    return f"""
        DocumentRoot {docroot}
        Plugin {plugin_line()}
        Plugin uri_to_file
        Plugin serve_file
        WSGIScriptAlias /hello {APPS}:hello
        WSGIScriptAlias /block {APPS}:blocking
        WSGIScriptAlias /echo {APPS}:validated_echo
        WSGIScriptAlias /fire {APPS}:firehose
        WSGIScriptAlias /reader {APPS}:careful_reader
        WSGIScriptAlias /sleepy {APPS}:sleepy
        WSGIScriptAlias /fw {APPS}:file_wrapper
        WSGIScriptAlias / {APPS}:env
        WSGIScriptAlias /static off
        <Location /echo/streamed>
            WSGIChunkedRequest On
        </Location>
        {extra}
    """


def blocking_get(port, path, timeout=20):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            piece = s.recv(65536)
            if not piece:
                return data
            data += piece
    finally:
        s.close()


class ServerTests(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        from axkit.testing import start_server

        apps.reset()
        self.docroot = self.mktemp()
        os.makedirs(os.path.join(self.docroot, "static"))
        with open(os.path.join(self.docroot, "static", "file.txt"), "wb") as f:
            f.write(b"static file\n")
        self.server = yield start_server(config(self.docroot, self.extra))
        self.addCleanup(self.server.stop)
        self.addCleanup(apps.GATE.set)  # never leave a thread blocked
        self.port = self.server.port

    extra = "WSGIThreads 2\nWSGIQueueLimit 1"

    @defer.inlineCallbacks
    def test_static_beside_and_below(self):
        r = yield request(self.port, path="/static/file.txt")
        self.assertEqual((r.status, r.body), (200, b"static file\n"))
        r = yield request(self.port, path="/hello")
        self.assertEqual((r.status, r.body), (200, b"hello\n"))
        r = yield request(self.port, path="/anything/else")
        self.assertIn(b'"PATH_INFO": "/anything/else"', r.body)

    @defer.inlineCallbacks
    def test_blocked_threads_block_nothing_else(self):
        blocked = [threads.deferToThread(blocking_get, self.port, "/block") for _ in range(2)]
        for _ in range(2):
            got = yield threads.deferToThread(apps.STARTED.acquire, True, 10)
            self.assertTrue(got)
        pool = pools.current()
        self.assertEqual(pool.busy, 2)
        # Every application thread is busy: files and the engine still answer at once.
        started = time.monotonic()
        r = yield request(self.port, path="/static/file.txt")
        self.assertEqual(r.status, 200)
        self.assertLess(time.monotonic() - started, 0.5)
        # One more request waits in the queue (WSGIQueueLimit 1)...
        queued = threads.deferToThread(blocking_get, self.port, "/hello")
        ok = yield wait_until(lambda: pool.depth == 1, 5)
        self.assertTrue(ok)
        # ...and the next one is refused.
        r = yield request(self.port, path="/hello")
        self.assertEqual((r.status, r.header("Retry-After")), (503, "1"))
        self.assertFalse(queued.called)
        apps.GATE.set()
        for d in blocked + [queued]:
            data = yield d
            self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:100])
        self.assertEqual(pool.depth, 0)
        self.flushLoggedErrors()

    @defer.inlineCallbacks
    def test_a_request_whose_client_left_while_queued_is_not_run(self):
        blocked = [threads.deferToThread(blocking_get, self.port, "/block") for _ in range(2)]
        for _ in range(2):
            got = yield threads.deferToThread(apps.STARTED.acquire, True, 10)
            self.assertTrue(got)
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
        ok = yield wait_until(lambda: pools.current().depth == 1, 5)
        self.assertTrue(ok)
        # Gone for good (a reset: after a FIN alone a client may still read).
        import struct

        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        yield wait_until(lambda: False, 0.2)
        apps.GATE.set()
        yield defer.gatherResults(blocked)
        yield wait_until(lambda: pools.current().depth == 0 and pools.current().busy == 0, 5)
        # Only the two that were running started: the third never ran.
        self.assertFalse(apps.STARTED.acquire(False))

    @defer.inlineCallbacks
    def test_slow_reader_pauses_the_generator(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.settimeout(10)
        yield threads.deferToThread(s.connect, ("127.0.0.1", self.port))
        s.sendall(b"GET /fire?256 HTTP/1.1\r\nHost: x\r\n\r\n")
        got = 0
        while got < 1 << 20:
            got += len((yield threads.deferToThread(s.recv, 65536)))
        yield wait_until(lambda: False, 0.5)  # the client stops reading
        produced = apps.Produced.count
        # Produced, but not read: what the transport, the exchange and the
        # kernel's buffers hold -- not 256 MiB.
        self.assertLess(produced - got, 16 << 20, (produced, got))
        yield wait_until(lambda: False, 0.3)
        self.assertLess(apps.Produced.count - produced, 1 << 20)
        # The client leaves: the generator is closed, once.
        s.close()
        ok = yield wait_until(lambda: ("firehose", "close") in apps.EVENTS, 5)
        self.assertTrue(ok)
        yield wait_until(lambda: False, 0.1)
        self.assertEqual(apps.EVENTS.count(("firehose", "close")), 1)
        self.assertEqual(apps.EVENTS.count(("firehose", "finally")), 1)

    @defer.inlineCallbacks
    def test_streamed_pieces_arrive_as_produced(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.addCleanup(s.close)
        s.sendall(b"GET /sleepy?3 HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while b"tick 0" not in first:
            piece = yield threads.deferToThread(s.recv, 65536)
            self.assertTrue(piece)
            first += piece
        # The first piece came while the application was still producing.
        self.assertIn(b"Transfer-Encoding: chunked", first)
        self.assertNotIn(b"tick 2", first)

    @defer.inlineCallbacks
    def test_expect_100_continue_at_the_first_read(self):
        body = os.urandom(300000)

        def upload(path):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            try:
                s.sendall(
                    f"POST {path} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                )
                first = s.recv(65536)
                if first.startswith(b"HTTP/1.1 100 "):
                    s.sendall(body)
                data = first
                while True:
                    piece = s.recv(65536)
                    if not piece:
                        break
                    data += piece
                return data
            finally:
                s.close()

        data = yield threads.deferToThread(upload, "/echo?n=1000")
        self.assertTrue(data.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 "), data)
        self.assertTrue(
            data.endswith(f"{len(body)} {hashlib.sha256(body).hexdigest()}\n".encode()), data[-200:]
        )
        # An application answering without reading: no 100, and the
        # connection closes after the answer.
        data = yield threads.deferToThread(upload, "/hello")
        self.assertTrue(data.startswith(b"HTTP/1.1 200 OK"), data)
        self.assertIn(b"Connection: close", data)

    @defer.inlineCallbacks
    def test_chunked_upload_whole_first_or_streamed(self):
        pieces = [os.urandom(70000) for _ in range(5)]
        body = b"".join(pieces)

        def upload(path):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            try:
                s.sendall(
                    f"POST {path} HTTP/1.1\r\nHost: x\r\n".encode()
                    + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                )
                for p in pieces:
                    s.sendall(b"%x\r\n%s\r\n" % (len(p), p))
                    time.sleep(0.02)
                s.sendall(b"0\r\n\r\n")
                data = b""
                while True:
                    piece = s.recv(65536)
                    if not piece:
                        return data
                    data += piece
            finally:
                s.close()

        # The default: received whole (spooled), then read with its length;
        # WSGIChunkedRequest On: read as it arrives, to its last chunk.
        for path in ("/echo?length", "/echo/streamed?n=4096"):
            data = yield threads.deferToThread(upload, path)
            self.assertTrue(
                data.endswith(f"{len(body)} {hashlib.sha256(body).hexdigest()}\n".encode()),
                (path, data[-300:]),
            )

    @defer.inlineCallbacks
    def test_client_leaving_mid_body_is_not_an_end(self):
        def half():
            s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            s.sendall(
                b"POST /reader HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
                + b"x" * 100000
            )
            time.sleep(0.2)
            s.close()

        yield threads.deferToThread(half)
        ok = yield wait_until(lambda: any(e[0] == "reader" for e in apps.EVENTS), 5)
        self.assertTrue(ok)
        [event] = [e for e in apps.EVENTS if e[0] == "reader"]
        self.assertEqual(event[:2], ("reader", "ClientDisconnected"))
        self.flushLoggedErrors()

    @defer.inlineCallbacks
    def test_file_wrapper_zero_copy(self):
        path = os.path.abspath(self.mktemp())
        data = os.urandom(5 << 20)
        with open(path, "wb") as f:
            f.write(data)
        r = yield request(self.port, path=f"/fw?path={path}&skip=7")
        self.assertEqual(r.status, 200)
        self.assertEqual(int(r.header("Content-Length")), len(data) - 7)
        self.assertEqual(hashlib.sha256(r.body).digest(), hashlib.sha256(data[7:]).digest())
        ok = yield wait_until(lambda: apps.EVENTS == [("file", "close")], 5)
        self.assertTrue(ok, apps.EVENTS)

    @defer.inlineCallbacks
    def test_reload_mounts_the_new_config(self):
        r = yield request(self.port, path="/hello")
        self.assertEqual(r.body, b"hello\n")
        ok = yield self.server.reload(f"""
            Plugin {plugin_line()}
            WSGIThreads 3
            WSGIScriptAlias /hello {APPS}:generator
        """)
        self.assertTrue(ok)
        r = yield request(self.port, path="/hello?2")
        self.assertEqual(r.body, b"piece 0\npiece 1\n")
        self.assertEqual(pools.current().size, 3)
