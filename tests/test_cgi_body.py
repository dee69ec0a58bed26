"""Request bodies into CGI programs: Content-Length streamed, chunked spooled."""

import json
import os

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from axkit.testing import parse_responses

from .cgi_support import base_config, request, serve
from .rawclient import exchange, read_until_closed


def chunked(body, size=1000):
    out = b""
    for i in range(0, len(body), size):
        piece = body[i : i + size]
        out += b"%x\r\n%s\r\n" % (len(piece), piece)
    return out + b"0\r\n\r\n"


class BodyTests(TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.docroot = self.mktemp()
        os.makedirs(self.docroot)
        self.server = yield serve(self, base_config(self.docroot))

    @defer.inlineCallbacks
    def test_post_echo_reads_exactly_content_length(self):
        body = bytes(range(256)) * 40
        response = yield request(self.server.port, "POST", "/cgi-bin/echo.pl", body=body)
        self.assertEqual(response.status, 200)
        self.assertEqual(response.header("X-Length-Seen"), str(len(body)))
        self.assertEqual(response.body, body)

    @defer.inlineCallbacks
    def test_a_get_gives_the_program_an_empty_stdin(self):
        # No body, no pipe: stdin is /dev/null, so cat ends at once (a stdin
        # left open would hang it until CGITimeout: a 504).
        response = yield request(self.server.port, "GET", "/cgi-bin/cat.sh")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, b"")

    @defer.inlineCallbacks
    def test_a_small_post_streams_into_a_script_reading_until_eof(self):
        response = yield request(self.server.port, "POST", "/cgi-bin/cat.sh", body=b"abc")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, b"abc")

    @defer.inlineCallbacks
    def test_large_post_streams_through_a_script_reading_until_eof(self):
        # 6 MiB in, 6 MiB out, through cat: both pipes fill up, so this only
        # completes if the body is throttled to the pipe and not buffered whole.
        body = os.urandom(6 * 1024 * 1024)
        response = yield request(self.server.port, "POST", "/cgi-bin/cat.sh", body=body)
        self.assertEqual(response.status, 200)
        self.assertEqual(response.header("Transfer-Encoding"), "chunked")
        self.assertEqual(len(response.body), len(body))
        self.assertEqual(response.body, body)

    @defer.inlineCallbacks
    def test_a_script_not_reading_pauses_the_client(self):
        # 8 MiB to a script that reads nothing for a second: the server must
        # stop reading from the client rather than buffer the body itself.
        from twisted.internet import task

        from axkit.cgi.slots import SLOTS

        most = [0]

        def measure():
            for run in list(SLOTS.running):
                writer = run.process.pipes.get(0) if run.process else None
                if writer is not None:
                    buffered = len(writer.dataBuffer) + writer._tempDataLen
                    most[0] = max(most[0], buffered)

        poll = task.LoopingCall(measure)
        poll.start(0.005)
        body = b"b" * (8 * 1024 * 1024)
        try:
            response = yield request(
                self.server.port, "POST", "/cgi-bin/slowread.sh", body=body, timeout=30
            )
        finally:
            poll.stop()
        self.assertEqual(response.body.split(), [b"read", str(len(body)).encode()])
        self.assertLess(most[0], 1024 * 1024)

    @defer.inlineCallbacks
    def test_chunked_post_is_dechunked_with_content_length_set(self):
        body = b"field=" + b"x" * 5000
        raw = (
            b"POST /cgi-bin/env.py HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + chunked(body)
        )
        data = yield exchange(self.server.port, raw)
        response = parse_responses(data, ["POST"])[0]
        self.assertEqual(response.status, 200)
        seen = json.loads(response.body)
        self.assertEqual(seen["env"]["CONTENT_LENGTH"], str(len(body)))
        self.assertNotIn("HTTP_TRANSFER_ENCODING", seen["env"])
        self.assertEqual(seen["body"], body.decode())

    @defer.inlineCallbacks
    def test_large_chunked_post_is_spooled_to_a_file(self):
        body = os.urandom(3 * 1024 * 1024 + 17)
        raw = (
            b"POST /cgi-bin/echo.pl HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + chunked(body, 65536)
        )
        data = yield exchange(self.server.port, raw)
        response = parse_responses(data, ["POST"])[0]
        self.assertEqual(response.status, 200)
        self.assertEqual(response.header("X-Length-Seen"), str(len(body)))
        self.assertEqual(response.body, body)

    @defer.inlineCallbacks
    def test_keep_alive_after_a_script_that_ignores_the_body(self):
        # hello.sh never reads stdin; the next request on the connection
        # must still be answered.
        body = b"y" * 100000
        raw = (
            b"POST /cgi-bin/hello.sh HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Length: %d\r\n\r\n"
            % len(body)
            + body
            + b"GET /cgi-bin/hello.sh?two HTTP/1.1\r\nHost: localhost\r\n"
            b"Connection: close\r\n\r\n"
        )
        data = yield exchange(self.server.port, raw)
        responses = parse_responses(data, ["POST", "GET"])
        self.assertEqual([r.status for r in responses], [200, 200])
        self.assertEqual(responses[1].body, b"Hello, world!\n")

    @defer.inlineCallbacks
    def test_expect_100_continue_then_body(self):
        import socket

        from twisted.internet import threads

        def client():
            s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
            s.sendall(
                b"POST /cgi-bin/echo.pl HTTP/1.1\r\nHost: localhost\r\n"
                b"Connection: close\r\nExpect: 100-continue\r\n"
                b"Content-Length: 5\r\n\r\n"
            )
            interim = s.recv(1024)
            s.sendall(b"hello")
            rest = read_until_closed(s, 10, strict=True)
            s.close()
            return interim, rest

        interim, rest = yield threads.deferToThread(client)
        self.assertEqual(interim, b"HTTP/1.1 100 Continue\r\n\r\n")
        response = parse_responses(rest, ["POST"])[0]
        self.assertEqual(response.body, b"hello")


class SlowBodyTests(TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        from .cgi_support import LogCapture

        self.docroot = self.mktemp()
        os.makedirs(self.docroot)
        self.logs = LogCapture()
        self.addCleanup(self.logs.stop)
        self.server = yield serve(
            self,
            "CGIMaxProcesses 1\n"
            + base_config(
                self.docroot,
                """
            <Location /cgi-bin/echo.pl>
                CGITimeout 1
            </Location>
            """,
            ),
        )

    @defer.inlineCallbacks
    def test_an_upload_still_arriving_is_not_a_silent_program(self):
        # echo.pl reads its whole body before writing a byte; the client
        # sends for about 3 s, CGITimeout is 1 s: the upload is progress
        # (16 KiB or more per timeout: not a trickle).
        pieces = [b"p" * 20000] * 6
        head = (
            b"POST /cgi-bin/echo.pl HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            b"Content-Length: 120000\r\n\r\n"
        )
        data = yield exchange(self.server.port, head, pieces=pieces, gap=0.5)
        [response] = parse_responses(data, ["POST"])
        self.assertEqual(response.status, 200, self.logs.lines())
        self.assertEqual(response.body, b"p" * 120000)

    @defer.inlineCallbacks
    def test_a_trickled_upload_does_not_keep_the_program_alive(self):
        # A few bytes per CGITimeout is not progress (a client holding a
        # CGIMaxProcesses slot with a trickle): 504 at CGITimeout.
        import socket

        from twisted.internet import threads

        def trickle():
            # One byte every 0.5 s for up to 8 s; how many were sent when
            # the answer came.
            s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
            try:
                s.sendall(
                    b"POST /cgi-bin/echo.pl HTTP/1.1\r\nHost: localhost\r\n"
                    b"Connection: close\r\nContent-Length: 100\r\n\r\n"
                )
                s.settimeout(0.5)
                for sent in range(16):
                    try:
                        data = s.recv(65536)
                        return sent, data
                    except TimeoutError:
                        s.sendall(b"t")
                return None, b""
            finally:
                s.close()

        sent, data = yield threads.deferToThread(trickle)
        self.assertIsNotNone(sent)
        self.assertLess(sent, 8)  # CGITimeout (1 s), not the trickle's end
        self.assertTrue(data.startswith(b"HTTP/1.1 504 "), data)

    @defer.inlineCallbacks
    def test_a_chunked_body_still_arriving_holds_no_process_slot(self):
        # CGIMaxProcesses 1: while one client sends a chunked body slowly
        # (kept whole before its program starts), another's program runs.
        head = (
            b"POST /cgi-bin/echo.pl HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n"
        )
        slow = exchange(self.server.port, head, pieces=[b"6\r\nsecond\r\n", b"0\r\n\r\n"], gap=0.75)
        from .cgi_support import sleep

        yield sleep(0.3)
        other = yield request(self.server.port, "GET", "/cgi-bin/hello.sh")
        self.assertEqual(other.status, 200)
        [response] = parse_responses((yield slow), ["POST"])
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, b"firstsecond")


class UnreadBodyTests(TestCase):
    @defer.inlineCallbacks
    def test_an_answer_before_a_large_unread_body_reaches_the_client_cleanly(self):
        # hello.sh reads nothing of a 4 MB body: past the 1 MiB the server
        # reads and drops to keep the connection, it closes -- lingering
        # (its side shut, the rest read and dropped), not with a reset that
        # fails the client's sending and can destroy the answer.
        docroot = self.mktemp()
        os.makedirs(docroot)
        server = yield serve(self, base_config(docroot))
        body = b"q" * (4 * 1024 * 1024)
        head = b"POST /cgi-bin/hello.sh HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(
            body
        )
        # strict: a failed send or a reset raises (the test fails).
        data = yield exchange(server.port, head + body, half_close=True, strict=True)
        [response] = parse_responses(data, ["POST"])
        self.assertEqual((response.status, response.body), (200, b"Hello, world!\n"))
