"""RemoteIPProxyProtocol: the PROXY protocol (v1, v2) before HTTP on a connection."""

import json
import socket
import struct
import time

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import defer
from twisted.trial import unittest

from axkit.http.proxy_header import V2_PREFIX, header_length, parse_header
from axkit.testing import start_server
from tests.rawclient import exchange, request_bytes


def v2(command=0x1, family=0x11, addresses=b""):
    """A v2 header: PROXY (0x1) or LOCAL (0x0); TCP4 (0x11), TCP6 (0x21), UNSPEC (0x00)."""
    return (
        V2_PREFIX + bytes([0x20 | command, family]) + struct.pack("!H", len(addresses)) + addresses
    )


def v2_tcp4(src, dst, sport, dport):
    return v2(
        addresses=socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    )


def v2_tcp6(src, dst, sport, dport):
    addresses = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
    return v2(family=0x21, addresses=addresses + struct.pack("!HH", sport, dport))


V1_TCP4 = b"PROXY TCP4 203.0.113.9 127.0.0.1 5555 80\r\n"


class FramingTests(unittest.SynchronousTestCase):
    def test_lengths(self):
        self.assertEqual(header_length(V1_TCP4 + b"GET"), len(V1_TCP4))
        self.assertEqual(header_length(b"PRO"), 0)
        self.assertEqual(header_length(b"PROXY TCP4 1.2"), 0)
        self.assertEqual(header_length(b"GET / HTTP/1.1\r\n"), -1)
        self.assertEqual(header_length(b"PROXY " + b"x" * 200), -1)
        self.assertEqual(header_length(V2_PREFIX[:5]), 0)
        h = v2_tcp4("203.0.113.9", "127.0.0.1", 5555, 80)
        self.assertEqual(header_length(h[:15]), 0)
        self.assertEqual(header_length(h + b"GET"), len(h))
        self.assertEqual(header_length(b"\r\n\r\nX" + V2_PREFIX), -1)

    def test_parse(self):
        self.assertEqual(parse_header(V1_TCP4), ("203.0.113.9", 5555))
        self.assertEqual(
            parse_header(b"PROXY TCP6 2001:db8::1 ::1 5555 80\r\n"), ("2001:db8::1", 5555)
        )
        self.assertIsNone(parse_header(b"PROXY UNKNOWN\r\n"))
        self.assertIsNone(parse_header(b"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n"))
        self.assertEqual(
            parse_header(v2_tcp4("203.0.113.9", "127.0.0.1", 5555, 80)), ("203.0.113.9", 5555)
        )
        self.assertEqual(parse_header(v2_tcp6("2001:db8::9", "::1", 7, 80)), ("2001:db8::9", 7))
        self.assertIsNone(parse_header(v2(command=0x0)))  # LOCAL (a health check)
        self.assertIsNone(parse_header(v2(family=0x00)))  # UNSPEC
        for bad in (
            b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 x 2\r\n",
            v2(addresses=b"\x01\x02"),  # TCP4 with its addresses cut short
            V2_PREFIX + b"\x31\x11\x00\x00",  # version 3
        ):
            with self.assertRaises(ValueError, msg=bad):
                parse_header(bad)

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=300))
    def test_fuzz_framing_and_parsing(self, data):
        # Whatever arrives: a length, a wait, or a refusal -- and a complete
        # header parses to an address, None, or ValueError; nothing else.
        size = header_length(data)
        self.assertIsInstance(size, int)
        self.assertGreaterEqual(size, -1)
        if 0 < size <= len(data):
            try:
                peer = parse_header(data[:size])
            except ValueError:
                return
            if peer is not None:
                host, port = peer
                self.assertIsInstance(host, str)
                self.assertIsInstance(port, int)

    @settings(max_examples=200, deadline=None)
    @given(
        st.sampled_from([b"PROXY TCP4 ", b"PROXY TCP6 ", b"PROXY UNKNOWN", b"PROXY "]),
        st.binary(max_size=120),
    )
    def test_fuzz_v1_lines(self, start, rest):
        data = start + rest + b"\r\n"
        size = header_length(data)
        if 0 < size <= len(data):
            try:
                parse_header(data[:size])
            except ValueError:
                pass

    @settings(max_examples=200, deadline=None)
    @given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=300))
    def test_fuzz_v2_headers(self, vc, family, addresses):
        data = V2_PREFIX + bytes([vc, family]) + struct.pack("!H", len(addresses)) + addresses
        self.assertEqual(header_length(data), len(data))
        try:
            parse_header(data)
        except ValueError:
            pass


class ServerTests(unittest.TestCase):
    """A real listener with RemoteIPProxyProtocol On."""

    @defer.inlineCallbacks
    def setUp(self):
        self.server = yield start_server(
            """
            Plugin remoteip
            Plugin tests.test_remoteip_header.Echo
            RemoteIPProxyProtocol On
            RequestHeaderTimeout 1
            """
        )
        self.addCleanup(self.server.stop)

    def body(self, raw):
        head, _, body = raw.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), raw)
        return json.loads(body)

    @defer.inlineCallbacks
    def test_v1(self):
        raw = yield exchange(self.server.port, V1_TCP4 + request_bytes("/"))
        self.assertEqual(self.body(raw)["client"], "203.0.113.9")
        self.assertEqual(self.body(raw)["cgi"], "203.0.113.9")

    @defer.inlineCallbacks
    def test_v2_in_pieces(self):
        h = v2_tcp6("2001:db8::9", "::1", 7, 80)
        raw = yield exchange(
            self.server.port,
            b"",
            pieces=[
                h[:3],
                h[3:20],
                h[20:] + b"GE",
                b"T / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            ],
            gap=0.01,
        )
        self.assertEqual(self.body(raw)["client"], "2001:db8::9")

    @defer.inlineCallbacks
    def test_local_and_unknown_keep_the_peer(self):
        for header in (v2(command=0x0), b"PROXY UNKNOWN\r\n"):
            raw = yield exchange(self.server.port, header + request_bytes("/"))
            self.assertEqual(self.body(raw)["client"], "127.0.0.1")

    @defer.inlineCallbacks
    def test_missing_or_malformed_header_closes(self):
        for data in (
            request_bytes("/"),
            b"PROXY TCP4 1.2.3.4\r\n" + request_bytes("/"),
            b"PROXY " + b"1" * 200,
        ):
            raw = yield exchange(self.server.port, data, timeout=5)
            self.assertEqual(raw, b"", data)

    @defer.inlineCallbacks
    def test_header_that_never_completes_is_closed(self):
        # RequestHeaderTimeout (1 s here, on a 1 s wheel) covers the header.
        started = time.monotonic()
        raw = yield exchange(self.server.port, b"PROXY TCP4 203.0.113.9", timeout=10)
        self.assertEqual(raw, b"")
        self.assertLess(time.monotonic() - started, 5)

    @defer.inlineCallbacks
    def test_off_by_default(self):
        other = yield start_server("Plugin tests.test_remoteip_header.Echo\n")
        self.addCleanup(other.stop)
        raw = yield exchange(other.port, V1_TCP4 + request_bytes("/"))
        self.assertRegex(raw, rb"^HTTP/1.1 (400|501) ")  # "PROXY" is no method
        raw = yield exchange(other.port, request_bytes("/"))
        self.assertEqual(self.body(raw)["client"], "127.0.0.1")
