"""A client that half-closes (sends its FIN after its requests, as
`printf ... | nc -N` or shutdown(SHUT_WR) do) still gets every answer, in
order, then the connection closes (RFC 9112 §9.6).  A request the FIN cuts
short can never complete: 400.  In memory, then over a real socket."""

import os

from twisted.internet import defer, threads
from twisted.trial.unittest import SynchronousTestCase, TestCase

from axkit.testing import parse_responses, start_server
from tests import httpplugins
from tests.http_support import memory_site
from tests.rawclient import send_then_half_close

H = b"Host: example.com\r\n"


class HalfCloseTests(SynchronousTestCase):
    def test_pending_answers_are_sent_then_the_connection_closes(self):
        conn = memory_site(self).connect()
        conn.send(b"GET /slow HTTP/1.1\r\n" + H + b"\r\nGET /second HTTP/1.1\r\n" + H + b"\r\n")
        conn.half_close()
        self.assertFalse(conn.closed)
        httpplugins.pending.pop().callback(None)
        responses = parse_responses(conn.transport.value(), ["GET", "GET"])
        self.assertEqual([r.status for r in responses], [200, 200])
        self.assertIn(b"GET /second", responses[1].body)
        # The last answer says it is the last.
        self.assertIsNone(responses[0].header("connection"))
        self.assertEqual(responses[1].header("connection"), "close")
        self.assertTrue(conn.closed)

    def test_an_answer_already_sent_closes_at_once(self):
        conn = memory_site(self).connect()
        conn.send(b"GET /x HTTP/1.1\r\n" + H + b"\r\n")
        self.assertFalse(conn.closed)
        conn.half_close()
        self.assertTrue(conn.closed)
        self.assertEqual([r.status for r in conn.responses()], [200])

    def test_an_idle_connection_closes_silently(self):
        conn = memory_site(self).connect()
        conn.half_close()
        self.assertTrue(conn.closed)
        self.assertEqual(conn.transport.value(), b"")

    def test_a_request_head_cut_short_is_400(self):
        conn = memory_site(self).connect()
        conn.send(b"GET /x HTTP/1.1\r\nHost: exa")
        conn.half_close()
        [response] = parse_responses(conn.transport.value(), ["GET"])
        self.assertEqual(response.status, 400)
        self.assertTrue(conn.closed)

    def test_a_body_cut_short_is_400(self):
        conn = memory_site(self).connect()
        conn.send(b"POST /p HTTP/1.1\r\n" + H + b"Content-Length: 10\r\n\r\nabc")
        conn.half_close()
        [response] = parse_responses(conn.transport.value(), ["POST"])
        self.assertEqual(response.status, 400)
        self.assertTrue(conn.closed)

    def test_a_complete_post_is_answered(self):
        conn = memory_site(self).connect()
        conn.send(b"POST /p HTTP/1.1\r\n" + H + b"Content-Length: 3\r\n\r\nabc")
        conn.half_close()
        [response] = conn.responses()
        self.assertEqual(response.status, 200)
        self.assertIn(b"body=abc", response.body)
        self.assertTrue(conn.closed)


class HalfCloseOverSocketTests(TestCase):
    @defer.inlineCallbacks
    def test_a_large_file_reaches_a_half_closed_client(self):
        # Sent over many reactor turns: the FIN, read meanwhile, must not
        # drop it (it did: Twisted took the end of input as a lost connection).
        root = os.path.abspath(self.mktemp())
        os.makedirs(root)
        content = os.urandom(3 * 1024 * 1024)
        with open(os.path.join(root, "big.bin"), "wb") as f:
            f.write(content)
        server = yield start_server(f"""
            DocumentRoot {root}
            Plugin uri_to_file
            Plugin serve_file
        """)
        self.addCleanup(server.stop)
        data = yield threads.deferToThread(
            send_then_half_close,
            server.port,
            b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        responses = parse_responses(data, ["GET", "GET"])
        self.assertEqual([r.status for r in responses], [200, 200])
        self.assertEqual(responses[1].body, content)
