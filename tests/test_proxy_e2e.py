"""The proxy end to end: a real axkit on 127.0.0.1 in front of Twisted
backends written here, which record what they received."""

import json
import os
import socket
import time

from twisted.internet import defer, reactor, task, threads
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase
from twisted.web import resource, server

from axkit.proxy import client
from tests.rawclient import connect, exchange, request_bytes


class Recorder(resource.Resource):
    """Answers by path; keeps every request it saw."""

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.seen = []
        self.hanging = []

    def render(self, req):
        body = req.content.read()
        headers = [
            (k.decode(), v.decode()) for k, vs in req.requestHeaders.getAllRawHeaders() for v in vs
        ]
        self.seen.append(
            {
                "method": req.method.decode(),
                "uri": req.uri.decode(),
                "headers": headers,
                "body": len(body),
            }
        )
        path = req.path.decode()
        if path.endswith("/never"):
            self.hanging.append(req)
            return server.NOT_DONE_YET
        if path.endswith("/redirect"):
            req.setResponseCode(302)
            req.setHeader(b"location", b"http://127.0.0.1:%d/b/there" % self.port)
            return b""
        if path.endswith("/hop"):
            req.responseHeaders.addRawHeader(b"connection", b"X-Secret")
            req.responseHeaders.addRawHeader(b"x-secret", b"1")
            req.responseHeaders.addRawHeader(b"keep-alive", b"timeout=5")
            req.responseHeaders.addRawHeader(b"proxy-connection", b"keep-alive")
            req.responseHeaders.addRawHeader(b"x-open", b"2")
            return b"hop"
        if path.endswith("/cached"):
            req.setHeader(b"etag", b'"v1"')
            req.setHeader(b"cache-control", b"max-age=60")
            if req.getHeader(b"if-none-match") == b'"v1"':
                req.setResponseCode(304)
                return b""
            return b"cached body"
        if path.endswith("/sendfile"):
            req.setHeader(b"x-sendfile", req.args[b"f"][0])
            req.setHeader(b"content-type", b"text/x-report")
            return b"never sent"
        if path.endswith("/stall"):
            req.setHeader(b"content-length", b"100")
            req.write(b"first")
            self.hanging.append(req)
            return server.NOT_DONE_YET
        if path.endswith("/cut"):
            req.setHeader(b"content-length", b"100")
            req.write(b"first")
            reactor.callLater(0.05, req.transport.abortConnection)
            return server.NOT_DONE_YET
        if path.endswith("/big"):
            n = int(req.args[b"n"][0])
            req.setHeader(b"content-length", b"%d" % n)
            req.registerProducer(_Chunks(req, n), False)
            self.big = req
            return server.NOT_DONE_YET
        return json.dumps(self.seen[-1]).encode()


class _Chunks:
    """A pull producer of ``n`` bytes for a twisted.web request."""

    def __init__(self, req, n):
        self.req, self.left = req, n
        req.sent = 0

    def resumeProducing(self):
        size = min(65536, self.left)
        self.left -= size
        self.req.sent += size
        self.req.write(b"x" * size)
        if not self.left:
            self.req.unregisterProducer()
            self.req.finish()

    def stopProducing(self):
        self.left = 0


class CountingSite(server.Site):
    connections = 0

    def buildProtocol(self, addr):
        self.connections += 1
        return super().buildProtocol(addr)


class ProxyCase(TestCase):
    extra = ""

    @defer.inlineCallbacks
    def setUp(self):
        from axkit.testing import start_server

        self.backend = Recorder()
        self.site = CountingSite(self.backend)
        self.site.log = lambda request: None
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.backend.port = bport = self.port.getHost().port
        self.files = os.path.abspath(self.mktemp())
        os.makedirs(self.files)
        with open(os.path.join(self.files, "report.txt"), "wb") as f:
            f.write(b"0123456789")
        conf = f"""
Plugin proxy
{self.extra}
ProxyPass /a/ http://127.0.0.1:{bport}/b/ timeout=1 max=4
ProxyPass /dead/ http://127.0.0.1:1/
ProxyPassReverse /a/ http://127.0.0.1:{bport}/b/
XSendFile On
XSendFilePath {self.files}
"""
        self.server = yield start_server(conf)
        self.addCleanup(self.server.stop)
        self.addCleanup(client.close_all)
        self.addCleanup(self._release)

    def _release(self):
        for req in self.backend.hanging:
            if not req.finished and not req._disconnected:
                req.finish()

    def ask(self, path, headers=(), method="GET", body=b"", close=True, **kw):
        data = request_bytes(path, headers, method, body=body)
        if not close:
            data = data.replace(b"Connection: close\r\n", b"")
            data = data.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
        return exchange(self.server.port, data, **kw)


def head_and_body(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:]]
    return lines[0], fields, body


def names(fields):
    return {n.lower() for n, _ in fields}


class Forwarding(ProxyCase):
    @defer.inlineCallbacks
    def test_get_with_query_and_forwarded_fields(self):
        raw = yield self.ask("/a/x%20y?q=1&r=2")
        status, fields, body = head_and_body(raw)
        self.assertEqual(status, "HTTP/1.1 200 OK")
        seen = json.loads(body)
        self.assertEqual(seen["uri"], "/b/x%20y?q=1&r=2")
        got = dict((k.lower(), v) for k, v in seen["headers"])
        self.assertEqual(got["host"], f"127.0.0.1:{self.backend.port}")
        self.assertEqual(got["x-forwarded-for"], "127.0.0.1")
        self.assertEqual(got["x-forwarded-host"], "localhost")
        self.assertEqual(got["x-forwarded-proto"], "http")

    @defer.inlineCallbacks
    def test_post_body_streamed_chunked_upstream(self):
        pieces = [b"5\r\nhello\r\n", b"6\r\n world\r\n", b"0\r\n\r\n"]
        data = request_bytes("/a/up", [("Transfer-Encoding", "chunked")], "POST")
        raw = yield exchange(self.server.port, data, pieces=pieces, gap=0.05)
        seen = json.loads(head_and_body(raw)[2])
        self.assertEqual((seen["method"], seen["body"]), ("POST", 11))

    @defer.inlineCallbacks
    def test_hop_by_hop_request_fields_never_reach_the_backend(self):
        raw = yield self.ask(
            "/a/h",
            [
                ("Connection", "X-Forwarded-For, X-Secret"),
                ("Connection", "Authorization"),
                ("X-Forwarded-For", "6.6.6.6"),
                ("Authorization", "Basic eDp5"),
                ("X-Secret", "s"),
                ("Keep-Alive", "timeout=5"),
                ("Proxy-Connection", "keep-alive"),
                ("TE", "trailers"),
                ("Upgrade", "h2c"),
                ("X-Open", "o"),
            ],
            close=False,
        )
        seen = json.loads(head_and_body(raw)[2])
        got = {k.lower(): v for k, v in seen["headers"]}
        for name in (
            "authorization",
            "x-secret",
            "keep-alive",
            "proxy-connection",
            "te",
            "upgrade",
        ):
            self.assertNotIn(name, got)
        self.assertEqual(got["x-forwarded-for"], "127.0.0.1")  # not 6.6.6.6
        self.assertEqual(got["x-open"], "o")

    @defer.inlineCallbacks
    def test_hop_by_hop_response_fields_never_reach_the_client(self):
        status, fields, body = head_and_body((yield self.ask("/a/hop")))
        self.assertEqual(body, b"hop")
        self.assertNotIn("x-secret", names(fields))
        self.assertNotIn("keep-alive", names(fields))
        self.assertNotIn("proxy-connection", names(fields))
        self.assertIn(("X-Open", "2"), fields)

    @defer.inlineCallbacks
    def test_target_and_host_never_choose_the_backend(self):
        for target, host in (
            ("http://127.0.0.2:9/a/abs", "127.0.0.2:9"),
            ("//127.0.0.2:9/a/x", "evil.example"),
        ):
            data = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
            raw = yield exchange(self.server.port, data)
            status = head_and_body(raw)[0]
            if status.startswith("HTTP/1.1 200"):
                seen = json.loads(head_and_body(raw)[2])
                self.assertTrue(seen["uri"].startswith("/b/"), seen["uri"])
        # Every request that got through went to our backend, none elsewhere.
        self.assertGreaterEqual(len(self.backend.seen), 1)

    @defer.inlineCallbacks
    def test_connect_refused(self):
        data = b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n"
        raw = yield exchange(self.server.port, data)
        self.assertRegex(head_and_body(raw)[0], r"HTTP/1.1 501")
        self.assertEqual(self.backend.seen, [])

    @defer.inlineCallbacks
    def test_reverse_rewrites_location(self):
        status, fields, _ = head_and_body((yield self.ask("/a/redirect")))
        self.assertEqual(status, "HTTP/1.1 302 Found")
        self.assertIn(("Location", "http://localhost/a/there"), fields)

    @defer.inlineCallbacks
    def test_validators_and_304_pass_through(self):
        status, fields, body = head_and_body((yield self.ask("/a/cached")))
        self.assertIn(("ETag", '"v1"'), fields)
        self.assertIn(("Cache-Control", "max-age=60"), fields)
        raw = yield self.ask("/a/cached", [("If-None-Match", '"v1"')])
        status, fields, body = head_and_body(raw)
        self.assertEqual(status, "HTTP/1.1 304 Not Modified")
        self.assertEqual(body, b"")
        self.assertIn(("ETag", '"v1"'), fields)

    @defer.inlineCallbacks
    def test_keep_alive_pool(self):
        for _ in range(50):
            raw = yield self.ask("/a/k")
            self.assertTrue(raw.startswith(b"HTTP/1.1 200"))
        self.assertEqual(len(self.backend.seen), 50)
        self.assertEqual(self.site.connections, 1)


class Framing(ProxyCase):
    # (ProxyPass: the first match in config order, so the exclusion first)
    extra = "Plugin headers\nHeader set X-Via axkit\nHeader unset X-Open\nProxyPass /a/local !"

    @defer.inlineCallbacks
    def test_smuggling_framing_never_reaches_the_backend(self):
        data = (
            b"POST /a/s HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        )
        raw = yield exchange(self.server.port, data)
        self.assertTrue(raw.startswith(b"HTTP/1.1 400"), raw[:40])
        self.assertEqual(self.backend.seen, [])

    @defer.inlineCallbacks
    def test_head_keeps_the_length_and_sends_no_body(self):
        raw = yield self.ask("/a/hop", method="HEAD")
        status, fields, body = head_and_body(raw)
        self.assertEqual(status, "HTTP/1.1 200 OK")
        self.assertIn(("Content-Length", "3"), fields)
        self.assertEqual(body, b"")

    @defer.inlineCallbacks
    def test_header_operations_apply_to_backend_fields(self):
        status, fields, body = head_and_body((yield self.ask("/a/hop")))
        self.assertIn(("X-Via", "axkit"), fields)
        self.assertNotIn("x-open", names(fields))

    @defer.inlineCallbacks
    def test_excluded_path_is_not_proxied(self):
        status = head_and_body((yield self.ask("/a/local/x")))[0]
        self.assertEqual(status, "HTTP/1.1 404 Not Found")
        self.assertEqual(self.backend.seen, [])


class Failures(ProxyCase):
    @defer.inlineCallbacks
    def test_refused_is_502_and_one_log_line(self):
        raw = yield self.ask("/dead/x")
        self.assertEqual(head_and_body(raw)[0], "HTTP/1.1 502 Bad Gateway")

    @defer.inlineCallbacks
    def test_no_answer_is_504_and_a_post_is_sent_once(self):
        started = reactor.seconds()
        raw = yield self.ask("/a/never", method="POST", body=b"pay")
        self.assertEqual(head_and_body(raw)[0], "HTTP/1.1 504 Gateway Timeout")
        self.assertLess(reactor.seconds() - started, 4)
        self.assertEqual([s["method"] for s in self.backend.seen], ["POST"])


class FailureLogs(ProxyCase):
    def setUp(self):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        return super().setUp()

    def proxy_lines(self):
        return [formatEvent(e) for e in self.events if e.get("plugin") == "proxy"]

    @defer.inlineCallbacks
    def test_one_line_per_failure_naming_the_backend(self):
        yield self.ask("/dead/x")
        yield self.ask("/a/never")
        lines = self.proxy_lines()
        self.assertEqual(len(lines), 2, lines)
        self.assertIn("http://127.0.0.1:1/", lines[0])
        self.assertIn(f"http://127.0.0.1:{self.backend.port}/b/", lines[1])
        self.assertIn("no answer within 1s", lines[1])

    @defer.inlineCallbacks
    def test_stall_after_the_head_cuts_the_connection(self):
        started = reactor.seconds()
        raw = yield self.ask("/a/stall")
        status, fields, body = head_and_body(raw)
        self.assertEqual(status, "HTTP/1.1 200 OK")
        self.assertIn(("Content-Length", "100"), fields)
        self.assertEqual(body, b"first")  # cut: 5 of 100 bytes, then closed
        self.assertLess(reactor.seconds() - started, 4)
        self.assertEqual(len(self.proxy_lines()), 1)

    @defer.inlineCallbacks
    def test_backend_cut_after_the_head_cuts_the_client(self):
        raw = yield self.ask("/a/cut")
        status, fields, body = head_and_body(raw)
        self.assertIn(("Content-Length", "100"), fields)
        self.assertEqual(body, b"first")
        lines = self.proxy_lines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("answer cut", lines[0])

    @defer.inlineCallbacks
    def test_client_gone_drops_the_backend_connection(self):
        n = 64 * 1024 * 1024

        def client():
            s = connect(self.server.port, timeout=10, rcvbuf=65536)
            s.sendall(request_bytes(f"/a/big?n={n}"))
            s.recv(65536)
            s.close()

        yield threads.deferToThread(client)
        for _ in range(40):
            if self.backend.big._disconnected:
                break
            yield task.deferLater(reactor, 0.05, lambda: None)
        self.assertTrue(self.backend.big._disconnected)
        self.assertLess(self.backend.big.sent, n)

    @defer.inlineCallbacks
    def test_1000_sequential_requests_one_backend_connection(self):
        def run():
            s = connect(self.server.port, timeout=10)
            f = s.makefile("rb")
            for _ in range(1000):
                s.sendall(b"GET /a/n HTTP/1.1\r\nHost: x\r\n\r\n")
                length = None
                while True:
                    line = f.readline()
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                    if line == b"\r\n":
                        break
                f.read(length)
            s.close()

        yield threads.deferToThread(run)
        self.assertEqual(len(self.backend.seen), 1000)
        self.assertLessEqual(self.site.connections, 4)  # max=4


class SendFile(ProxyCase):
    @defer.inlineCallbacks
    def test_x_sendfile_sends_the_file_with_the_backends_fields(self):
        path = os.path.join(self.files, "report.txt")
        status, fields, body = head_and_body((yield self.ask(f"/a/sendfile?f={path}")))
        self.assertEqual(status, "HTTP/1.1 200 OK")
        self.assertEqual(body, b"0123456789")
        self.assertIn(("Content-Type", "text/x-report"), fields)
        self.assertNotIn("x-sendfile", names(fields))
        self.assertIn("etag", names(fields))

    @defer.inlineCallbacks
    def test_x_sendfile_ranges(self):
        path = os.path.join(self.files, "report.txt")
        raw = yield self.ask(f"/a/sendfile?f={path}", [("Range", "bytes=2-4")])
        status, fields, body = head_and_body(raw)
        self.assertEqual((status, body), ("HTTP/1.1 206 Partial Content", b"234"))

    @defer.inlineCallbacks
    def test_x_sendfile_outside_the_folders_is_404(self):
        link = os.path.join(self.files, "escape")
        os.symlink("/etc", link)
        for target in ("/etc/passwd", f"{link}/passwd", f"{self.files}/../x", "report.txt"):
            raw = yield self.ask(f"/a/sendfile?f={target}")
            status, fields, body = head_and_body(raw)
            self.assertEqual(status, "HTTP/1.1 404 Not Found", target)
            self.assertNotIn(b"root:", body)
            self.assertNotIn("x-sendfile", names(fields))


class Backpressure(ProxyCase):
    @defer.inlineCallbacks
    def test_slow_client_pauses_the_backend(self):
        """A client that reads nothing for a while: the backend is paused
        after a bounded amount (socket buffers plus one Twisted buffer),
        then everything arrives once it reads."""
        n = 48 * 1024 * 1024
        sent_while_stalled = []

        def client():
            s = connect(self.server.port, timeout=30, rcvbuf=65536)
            s.sendall(request_bytes(f"/a/big?n={n}"))
            time.sleep(1.0)
            sent_while_stalled.append(self.backend.big.sent)
            got = 0
            while True:
                data = s.recv(1 << 20)
                if not data:
                    break
                got += len(data)
            s.close()
            return got

        got = yield threads.deferToThread(client)
        self.assertLess(sent_while_stalled[0], 12 * 1024 * 1024)
        self.assertGreater(got, n)
        self.assertEqual(self.backend.big.sent, n)


class _Stuck(Protocol):
    """A backend that reads the head and then stops reading."""

    def dataReceived(self, data):
        self.factory.received += len(data)
        self.transport.pauseProducing()
        self.factory.conns.append(self.transport)


class UploadBackpressure(ProxyCase):
    @defer.inlineCallbacks
    def test_a_backend_that_reads_nothing_stops_the_upload(self):
        """The client's body is read only as fast as the backend takes it."""
        factory = Factory.forProtocol(_Stuck)
        factory.received, factory.conns = 0, []
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.addCleanup(lambda: [t.abortConnection() for t in factory.conns])
        yield self.server.stop()
        from axkit.testing import start_server

        bport = port.getHost().port
        self.server = yield start_server(f"Plugin proxy\nProxyPass / http://127.0.0.1:{bport}/\n")
        self.addCleanup(self.server.stop)
        n = 64 * 1024 * 1024

        def client():
            s = connect(self.server.port, timeout=1.5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
            s.sendall(request_bytes("/up", method="POST", headers=[("Content-Length", str(n))]))
            sent, piece = 0, b"u" * 65536
            try:
                while sent < n:
                    sent += s.send(piece)
            except OSError:
                pass
            s.close()
            return sent

        sent = yield threads.deferToThread(client)
        self.assertLess(sent, 16 * 1024 * 1024)
        self.assertGreater(sent, 0)
