"""Strict framing (RFC 9112): every malformed request gets its 4xx/5xx
answer with Connection: close, and the connection is closed.

Each case runs twice: in memory (the protocol alone) and against a real
server over a raw socket."""

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase, TestCase

from axkit.testing import parse_responses, start_server
from tests.http_support import ECHO_CONFIG, memory_site
from tests.rawclient import exchange

H = b"Host: example.com\r\n"

# (name, request bytes, expected status)
CASES = [
    ("fragment_in_the_target", b"GET /a#frag HTTP/1.1\r\n" + H + b"\r\n", 400),
    (
        "content_length_with_transfer_encoding",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n",
        400,
    ),
    (
        "two_differing_content_lengths",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        400,
    ),
    (
        "two_equal_content_lengths",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        400,
    ),
    ("content_length_list", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5, 5\r\n\r\nhello", 400),
    ("signed_content_length", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\nhello", 400),
    ("negative_content_length", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400),
    (
        "non_numeric_content_length",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5x\r\n\r\nhello",
        400,
    ),
    (
        "overflowing_content_length",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 999999999999999999999999\r\n\r\n",
        400,
    ),
    (
        "transfer_coding_not_ending_in_chunked",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\nxxxx",
        400,
    ),
    (
        "chunked_then_gzip",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunked_twice",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "unsupported_coding_before_chunked",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
    ),
    (
        "transfer_encoding_in_http_1_0",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "bad_chunk_size",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    (
        "negative_chunk_size",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    (
        "overflowing_chunk_size",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
        b"FFFFFFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk_size_with_space",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
        400,
    ),
    (
        "missing_crlf_after_chunk",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
        400,
    ),
    (
        "bare_lf_after_chunk_size",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
        400,
    ),
    ("bare_cr_in_header_block", b"GET / HTTP/1.1\r\n" + b"Host: a\rX-A: b\r\n\r\n", 400),
    ("bare_cr_after_request_line", b"GET / HTTP/1.1\rHost: a\r\n\r\n", 400),
    ("bare_lf_line_ends", b"GET / HTTP/1.1\nHost: a\n\n", 400),
    ("nul_in_target", b"GET /a\x00b HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("control_char_in_target", b"GET /a\x01b HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("del_in_target", b"GET /a\x7fb HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("nul_in_header_name", b"GET / HTTP/1.1\r\n" + H + b"X-A\x00b: c\r\n\r\n", 400),
    ("nul_in_header_value", b"GET / HTTP/1.1\r\n" + H + b"X-A: b\x00c\r\n\r\n", 400),
    ("control_char_in_header_value", b"GET / HTTP/1.1\r\n" + H + b"X-A: b\x01c\r\n\r\n", 400),
    ("space_before_colon", b"GET / HTTP/1.1\r\n" + H + b"X-A : b\r\n\r\n", 400),
    ("tab_before_colon", b"GET / HTTP/1.1\r\n" + H + b"X-A\t: b\r\n\r\n", 400),
    (
        "space_before_colon_of_transfer_encoding",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    ("obs_fold", b"GET / HTTP/1.1\r\n" + H + b"X-A: b\r\n c\r\n\r\n", 400),
    ("obs_fold_with_tab", b"GET / HTTP/1.1\r\n" + H + b"X-A: b\r\n\tc\r\n\r\n", 400),
    ("space_before_first_header", b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
    ("header_line_without_colon", b"GET / HTTP/1.1\r\n" + H + b"NoColon\r\n\r\n", 400),
    ("http_1_1_without_host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two_host_headers", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("malformed_host", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    ("garbage_request_line", b"GARBAGE\r\n\r\n", 400),
    ("binary_garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 20, 400),
    ("unknown_version", b"GET / HTTP/1.2\r\n" + H + b"\r\n", 400),
    ("lower_case_protocol_name", b"GET / http/1.1\r\n" + H + b"\r\n", 400),
    ("http_0_9_request", b"GET /\r\n\r\n", 400),
    ("space_after_version", b"GET / HTTP/1.1 \r\n" + H + b"\r\n", 400),
    ("http_2_0_request_line", b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505),
    ("http_2_connection_preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    ("unknown_method", b"FROB / HTTP/1.1\r\n" + H + b"\r\n", 501),
    ("lower_case_method", b"get / HTTP/1.1\r\n" + H + b"\r\n", 501),
    ("asterisk_target_for_get", b"GET * HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("absolute_form_with_bad_scheme", b"GET ftp://a/b HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("relative_target", b"GET a/b HTTP/1.1\r\n" + H + b"\r\n", 400),
    (
        "content_length_in_trailer",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
        b"0\r\nContent-Length: 5\r\n\r\nhello",
        400,
    ),
]


def _check(test, data, status):
    responses = parse_responses(data)
    test.assertEqual(len(responses), 1, data)
    test.assertEqual(responses[0].status, status, data)
    test.assertEqual(responses[0].header("connection"), "close", data)


class _Memory:
    def make_site(self):
        return memory_site(self)

    def _case(self, payload, status):
        site = self.make_site()
        conn = site.connect()
        conn.send(payload)
        _check(self, conn.transport.value(), status)
        self.assertTrue(conn.closed, "the connection must be closed")
        # Nothing more is read: a following valid request gets no answer.
        before = conn.transport.value()
        conn.send(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
        self.assertEqual(conn.transport.value(), before)


class _Socket:
    @defer.inlineCallbacks
    def _case(self, payload, status):
        data = yield exchange(self.server.port, payload)
        _check(self, data, status)


class FramingInMemoryTests(_Memory, SynchronousTestCase):
    """The protocol alone, on an in-memory transport."""


class FramingOverSocketTests(_Socket, TestCase):
    """The real server, raw bytes over TCP (the exchange ends when the server
    closes; a connection left open fails the test by timeout)."""

    @defer.inlineCallbacks
    def setUp(self):
        self.server = yield start_server(ECHO_CONFIG)
        self.addCleanup(self.server.stop)


# Where no plugin reads request bodies (the static plugins answer POST with
# 405): a body that breaks the framing in the read that brought the head must
# still get its 400/501, not the 405 a plugin would give to a good request.
STATIC_CONFIG = """
    Listen tcp:0:interface=127.0.0.1
    Plugin uri_to_file
    Plugin serve_dir
    Plugin serve_file
"""


class FramingUnreadBodyInMemoryTests(_Memory, SynchronousTestCase):
    """The cases again, with no plugin reading bodies, in memory."""

    def make_site(self):
        from axkit.testing import MemorySite

        site = MemorySite(STATIC_CONFIG, route_logs=False)
        self.addCleanup(site.close)
        return site


class FramingUnreadBodyOverSocketTests(_Socket, TestCase):
    """The cases again, with no plugin reading bodies, over a real socket."""

    @defer.inlineCallbacks
    def setUp(self):
        self.server = yield start_server(STATIC_CONFIG)
        self.addCleanup(self.server.stop)


def _add_cases():
    for name, payload, status in CASES:

        def test(self, payload=payload, status=status):
            return self._case(payload, status)

        test.__name__ = f"test_{name}"
        test.__doc__ = f"{name.replace('_', ' ')} -> {status} and close"
        for cls in (
            FramingInMemoryTests,
            FramingOverSocketTests,
            FramingUnreadBodyInMemoryTests,
            FramingUnreadBodyOverSocketTests,
        ):
            setattr(cls, test.__name__, test)


_add_cases()


class FramingOrderTests(SynchronousTestCase):
    def test_good_requests_before_a_bad_one_are_answered_first(self):
        site = memory_site(self)
        conn = site.connect()
        conn.send(
            b"GET /one HTTP/1.1\r\n" + H + b"\r\n"
            b"GET /two HTTP/1.1\r\n" + H + b"\r\n"
            b"GET /three HTTP/1.1\r\n" + H + b"X : y\r\n\r\n"
            b"GET /four HTTP/1.1\r\n" + H + b"\r\n"
        )
        responses = conn.responses()
        self.assertEqual([r.status for r in responses], [200, 200, 400])
        self.assertIn(b"GET /one", responses[0].body)
        self.assertIn(b"GET /two", responses[1].body)
        self.assertTrue(conn.closed)

    def test_bad_request_behind_a_slow_one_waits_for_it(self):
        from tests import httpplugins

        site = memory_site(self)
        conn = site.connect()
        conn.send(b"GET /slow HTTP/1.1\r\n" + H + b"\r\nGET / HTTP/1.1\r\n\r\n")
        self.assertEqual(conn.transport.value(), b"")
        httpplugins.pending.pop().callback(None)
        responses = conn.responses()
        self.assertEqual([r.status for r in responses], [200, 400])
        self.assertIsNone(responses[0].header("connection"))
        self.assertEqual(responses[1].header("connection"), "close")
        self.assertTrue(conn.closed)

    def test_broken_body_of_a_queued_request_is_answered_after_the_slow_one(self):
        # The queued POST's chunked body breaks: it can never complete, so it
        # must not be dispatched later and left waiting for that body.
        from tests import httpplugins

        site = memory_site(self)
        conn = site.connect()
        conn.send(
            b"GET /slow HTTP/1.1\r\n" + H + b"\r\n"
            b"POST /p HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
            b"\r\n3\r\nabc\r\n0\r\n\r\n"
        )
        httpplugins.pending.pop().callback(None)
        responses = conn.responses()
        self.assertEqual([r.status for r in responses], [200, 400])
        self.assertTrue(conn.closed)

    def test_smuggled_request_in_a_body_is_never_parsed(self):
        # A body the server knows the length of stays a body.
        site = memory_site(self)
        conn = site.connect()
        smuggled = b"GET /smuggled HTTP/1.1\r\n" + H + b"\r\n"
        conn.send(
            b"POST /post HTTP/1.1\r\n"
            + H
            + b"Content-Length: %d\r\n\r\n" % len(smuggled)
            + smuggled
        )
        responses = conn.responses()
        self.assertEqual(len(responses), 1)
        self.assertIn(b"/smuggled", responses[0].body)
        self.assertIn(b"POST /post", responses[0].body)

    def test_upgrade_with_a_body_closes_instead_of_reading_the_body_as_a_request(self):
        site = memory_site(self)
        conn = site.connect()
        smuggled = b"GET /smuggled HTTP/1.1\r\n" + H + b"\r\n"
        conn.send(
            b"POST /up HTTP/1.1\r\n"
            + H
            + b"Connection: upgrade\r\nUpgrade: foo\r\n"
            + b"Content-Length: %d\r\n\r\n" % len(smuggled)
            + smuggled
        )
        conn.methods = ["POST", "GET"]
        responses = conn.responses()
        self.assertEqual(len(responses), 1, conn.transport.value())
        self.assertNotIn(b"GET /smuggled", conn.transport.value())
        self.assertTrue(conn.closed)

    def test_upgrade_without_a_body_is_answered_as_http_1_1_and_keeps_going(self):
        site = memory_site(self)
        conn = site.connect()
        conn.send(
            b"GET /up HTTP/1.1\r\n" + H + b"Connection: upgrade\r\nUpgrade: h2c\r\n\r\n"
            b"GET /next HTTP/1.1\r\n" + H + b"\r\n"
        )
        responses = conn.responses()
        self.assertEqual([r.status for r in responses], [200, 200])
        self.assertIn(b"GET /next", responses[1].body)
        self.assertFalse(conn.closed)
