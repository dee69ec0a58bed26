"""The public handler API (docs/hooks.md, "Writing a handler"): what CGI,
WSGI, a proxy or an XSLT stage use instead of the connection's insides."""

import os
import socket

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase, TestCase

from axkit.http.timers import Deadline
from axkit.testing import MemorySite, start_server

from . import handlerplugins


def _site(test, plugin, extra="", root=None):
    site = MemorySite(
        f"""
        Plugin tests.handlerplugins.{plugin}
        {extra}
    """,
        base_dir=root,
    )
    test.addCleanup(site.close)
    return site


class SendFileTests(SynchronousTestCase):
    def setUp(self):
        self.root = self.mktemp()
        os.makedirs(self.root)
        self.body = bytes(range(256)) * 400  # 100 KiB: not a cached file
        with open(os.path.join(self.root, "f.bin"), "wb") as f:
            f.write(self.body)
        handlerplugins.seen.clear()

    def site(self, plugin):
        return _site(self, plugin, f'SendRoot "{self.root}"')

    def test_a_path_gets_serve_files_answer(self):
        r = self.site("SendPath").get("/send/f.bin")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, self.body)
        self.assertEqual(r.header("content-length"), str(len(self.body)))
        self.assertTrue(r.header("etag").startswith('"'))
        self.assertIsNotNone(r.header("last-modified"))
        # Fields the handler set first are kept.
        self.assertEqual(r.header("content-type"), "text/plain")
        self.assertEqual(r.header("cache-control"), "max-age=60")
        self.assertIs(handlerplugins.seen["completed"], True)

    def test_validators_and_ranges(self):
        site = self.site("SendPath")
        etag = site.get("/send/f.bin").header("etag")
        r = site.get("/send/f.bin", [("If-None-Match", etag)])
        self.assertEqual((r.status, r.body), (304, b""))
        r = site.get("/send/f.bin", [("Range", "bytes=10-19")])
        self.assertEqual(r.status, 206)
        self.assertEqual(r.body, self.body[10:20])
        self.assertEqual(r.header("content-range"), f"bytes 10-19/{len(self.body)}")
        r = site.get("/send/f.bin", [("Range", "bytes=999999-")])
        self.assertEqual(r.status, 416)

    def test_head_has_the_length_and_no_body(self):
        r = self.site("SendPath").request("HEAD", "/send/f.bin")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-length"), str(len(self.body)))
        self.assertEqual(r.body, b"")

    def test_a_missing_file_is_404(self):
        r = self.site("SendPath").get("/send/nothing.bin")
        self.assertEqual(r.status, 404)

    def test_an_open_file_from_its_position_with_the_handlers_status(self):
        r = self.site("SendObject").request("GET", "/object/f.bin?1000")
        self.assertEqual(r.status, 203)
        self.assertEqual(r.body, self.body[1000:])
        self.assertEqual(r.header("x-handler"), "object")
        self.assertIsNone(r.header("etag"))  # unconditional: no validators
        f = handlerplugins.seen["file"]
        self.assertFalse(f.closed)  # its owner's to close
        f.close()


class HandlerFieldsTests(SynchronousTestCase):
    def test_header_operations_apply_over_a_handlers_fields(self):
        site = _site(self, "Fields", "Plugin headers\nHeader set X-Mine config")
        r = site.get("/")
        self.assertEqual(r.header("x-mine"), "config")
        self.assertEqual(r.header("x-other"), "kept")

    def test_without_header_operations_the_fields_are_added(self):
        r = _site(self, "Fields").get("/")
        self.assertEqual(r.header("x-mine"), "handler")


class RawTests(SynchronousTestCase):
    def test_raw_bytes_go_out_as_they_are_and_the_connection_closes(self):
        site = _site(self, "Raw")
        conn = site.connect()
        conn.request("GET", "/")
        self.assertEqual(
            conn.transport.value(), b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nraw body"
        )
        self.assertTrue(conn.closed)


class DeadlineTests(SynchronousTestCase):
    def test_a_deadline_fires_once_it_passed_and_body_pieces_move_it(self):
        site = _site(self, "Timed", "TimedSeconds 3")
        conn = site.connect()
        conn.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
        site.advance(2)
        conn.send(b"cd")  # moves it to 2 + 3
        site.advance(2)
        self.assertEqual(conn.responses(), [])
        site.advance(2)
        [r] = conn.responses()
        self.assertEqual(r.status, 504)

    def test_extend_later_cancel(self):
        from twisted.internet.task import Clock

        from axkit.http.deadlines import DeadlineWheel

        clock = Clock()
        fired = []
        d = Deadline(DeadlineWheel(clock), clock.seconds, lambda: fired.append(clock.seconds()))
        d.extend(5)  # unarmed: nothing
        self.assertFalse(d.armed)
        d.after(2)
        d.extend(4)
        clock.advance(3)
        self.assertEqual(fired, [])
        clock.advance(3)
        self.assertEqual(len(fired), 1)
        self.assertFalse(d.armed)
        d.after(1)
        d.cancel()
        clock.advance(5)
        self.assertEqual(len(fired), 1)

    def test_extend_to_sooner_refiles(self):
        from twisted.internet.task import Clock

        from axkit.http.deadlines import DeadlineWheel

        clock = Clock()
        fired = []
        d = Deadline(DeadlineWheel(clock), clock.seconds, lambda: fired.append(1))
        d.after(100)
        d.extend(1)
        clock.advance(1)
        clock.advance(1)
        self.assertEqual(fired, [1])


class ConsumerTests(TestCase):
    @defer.inlineCallbacks
    def test_twisted_file_sender_writes_into_the_request(self):
        # A pull producer (FileSender) over a real socket: the transport
        # asks it for more each time it drained.
        root = self.mktemp()
        os.makedirs(root)
        data = os.urandom(2 * 1024 * 1024)
        with open(os.path.join(root, "big.txt"), "wb") as f:
            f.write(data)
        server = yield start_server(f"""
            Plugin tests.handlerplugins.Consumer
            SendRoot "{root}"
        """)
        self.addCleanup(server.stop)
        from twisted.internet.threads import deferToThread

        got = yield deferToThread(_fetch, server.port, b"/")
        head, _, body = got.partition(b"\r\n\r\n")
        self.assertIn(b"200 OK", head)
        self.assertEqual(body, data)


class BodyLimitTests(SynchronousTestCase):
    def test_a_consumer_never_sees_a_byte_past_limit_request_body(self):
        handlerplugins.seen.clear()
        site = _site(self, "BodyRecorder", "LimitRequestBody 10")
        conn = site.connect()
        conn.send(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n"
        )
        conn.send(b"6\r\nghijkl\r\n0\r\n\r\n")
        [r] = conn.responses()
        self.assertEqual(r.status, 413)
        self.assertEqual(b"".join(handlerplugins.seen["body"]), b"abcdef")


class InternalRedirectTests(SynchronousTestCase):
    def test_answered_as_the_other_path(self):
        root = self.mktemp()
        os.makedirs(root)
        with open(os.path.join(root, "there.txt"), "wb") as f:
            f.write(b"over there")
        site = MemorySite(f"""
            DocumentRoot "{root}"
            Plugin tests.handlerplugins.Redirector
            Plugin uri_to_file
            Plugin serve_file
        """)
        self.addCleanup(site.close)
        r = site.get("/go?/there.txt")
        self.assertEqual((r.status, r.body), (200, b"over there"))


class ZeroCopyTests(TestCase):
    """send_file over a real socket: the sendfile path."""

    @defer.inlineCallbacks
    def test_a_big_file_arrives_whole(self):
        root = self.mktemp()
        os.makedirs(root)
        body = os.urandom(3 * 1024 * 1024)
        with open(os.path.join(root, "f.bin"), "wb") as f:
            f.write(body)
        server = yield start_server(f"""
            Plugin tests.handlerplugins.SendPath
            SendRoot "{root}"
        """)
        self.addCleanup(server.stop)
        from twisted.internet.threads import deferToThread

        data = yield deferToThread(_fetch, server.port, b"/send/f.bin")
        head, _, got = data.partition(b"\r\n\r\n")
        self.assertIn(b"200 OK", head)
        self.assertEqual(got, body)


def _fetch(port, path):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)
