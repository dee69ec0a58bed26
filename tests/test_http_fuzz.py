"""Random and mutated request bytes, split at random points, fed to the
protocol in memory: no exception escapes, every byte sent back is a
well-formed HTTP/1.1 response, and the connection ends closed or ready
(a connection left waiting for more input is closed by its timeouts)."""

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from axkit.http.states import IDLE
from tests.http_support import memory_site

VALID = [
    b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /b?q=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3;e=1\r\nabc\r\n0\r\nT: v\r\n\r\n",
    b"PUT /u HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
    b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET http://h.example/abs HTTP/1.1\r\nHost: x\r\n\r\n",
    b"DELETE /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /status/204 HTTP/1.1\r\nHost: x\r\n\r\n",
]
INTERESTING = [
    b"\r",
    b"\n",
    b"\r\n",
    b"\x00",
    b" ",
    b"\t",
    b":",
    b";",
    b",",
    b"0",
    b"9",
    b"f",
    b"-",
    b"+",
    b"\x7f",
    b"\xff",
    b"HTTP/1.1",
    b"chunked",
    b"Content-Length: 3\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Host: y\r\n",
    b"\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\n",
]

_STATUS = re.compile(rb"HTTP/1\.1 ([1-5][0-9][0-9]) [^\r\n]*\r\n")


def check_responses(test, data):
    """Every byte is part of a well-formed HTTP/1.1 response."""
    while data:
        m = _STATUS.match(data)
        test.assertIsNotNone(m, data[:200])
        status = int(m.group(1))
        end = data.find(b"\r\n\r\n")
        test.assertGreater(end, 0, data[:200])
        headers = {}
        for line in data[m.end() : end].split(b"\r\n"):
            if not line:
                continue
            name, sep, value = line.partition(b":")
            test.assertTrue(sep and re.fullmatch(rb"[A-Za-z0-9-]+", name), line)
            headers[name.lower()] = value.strip()
        data = data[end + 4 :]
        if status < 200 or status in (204, 304):
            test.assertNotIn(b"content-length", headers)
            continue
        if headers.get(b"transfer-encoding") == b"chunked":
            while True:
                line_end = data.find(b"\r\n")
                test.assertGreaterEqual(line_end, 0)
                size = int(data[:line_end], 16)
                data = data[line_end + 2 :]
                if size == 0:
                    test.assertEqual(data[:2], b"\r\n")
                    data = data[2:]
                    break
                test.assertEqual(data[size : size + 2], b"\r\n")
                data = data[size + 2 :]
        elif b"content-length" in headers:
            length = int(headers[b"content-length"])
            test.assertGreaterEqual(len(data), length)
            data = data[length:]
        else:
            # Close-delimited: must be the last response, and closing.
            test.assertEqual(headers.get(b"connection"), b"close")
            return


@st.composite
def request_bytes(draw):
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(min_size=1, max_size=300))
    data = b"".join(draw(st.lists(st.sampled_from(VALID), min_size=1, max_size=3)))
    for _ in range(draw(st.integers(0, 4))):
        pos = draw(st.integers(0, len(data)))
        kind = draw(st.integers(0, 3))
        if kind == 0:  # insert
            data = data[:pos] + draw(st.sampled_from(INTERESTING)) + data[pos:]
        elif kind == 1:  # delete
            data = data[:pos] + data[pos + draw(st.integers(1, 8)) :]
        elif kind == 2:  # replace one byte
            data = data[:pos] + draw(st.binary(min_size=1, max_size=1)) + data[pos + 1 :]
        else:  # duplicate a stretch
            data = data[:pos] + data[pos : pos + draw(st.integers(1, 40))] + data[pos:]
    return data


@st.composite
def split(draw):
    data = draw(request_bytes())
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    pieces, last = [], 0
    for cut in cuts + [len(data)]:
        pieces.append(data[last:cut])
        last = cut
    return [p for p in pieces if p]


class FuzzTests(SynchronousTestCase):
    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(split())
    def test_no_exception_well_formed_answers_closed_or_ready(self, pieces):
        site = memory_site(self)
        conn = site.connect()
        for piece in pieces:
            conn.send(piece)  # an escaping exception fails the test
        internal = [e for e in site.events if e.get("log_failure") is not None]
        self.assertEqual(internal, [], pieces)
        check_responses(self, conn.transport.value())
        if conn.closed:
            return
        protocol = conn.protocol
        if protocol.state == IDLE and protocol.active is None:
            # Ready: a fresh request is answered.
            before = len(conn.transport.value())
            conn.send(b"GET /fresh HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertIn(b"GET /fresh", conn.transport.value()[before:])
            check_responses(self, conn.transport.value())
        else:
            # Waiting for more input: the timeouts end it.
            site.clock.advance(61)
            site.clock.advance(61)
            self.assertTrue(conn.closed, (pieces, protocol.state))
            check_responses(self, conn.transport.value())
