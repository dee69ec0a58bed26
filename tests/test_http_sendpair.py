"""Request.send of a large body: head and body leave by one sendmsg,
uncopied (axkit.http.sending.Sending.write_pair); what the kernel does not
take at once is queued in order, and a slow client gets every byte."""

import hashlib
import os
import socket
import time

from twisted.internet import defer, threads
from twisted.trial.unittest import SynchronousTestCase, TestCase

from axkit.hooks import DONE
from axkit.http import sending
from axkit.testing import parse_responses, start_server

BODY = os.urandom(6 * 1024 * 1024)
SMALL = b"s" * 100


class BigBody:
    """Answers /big with BODY and anything else with SMALL, through send()."""

    name = "big_body"

    def hook_response(self, request, conf):
        request.send(200, BODY if request.path == "/big" else SMALL, "application/octet-stream")
        return DONE


def slow_get(port, paths):
    """Ask for ``paths`` pipelined, wait before reading (the server's first
    sendmsg cannot take it all), then read slowly until the server closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    try:
        last = len(paths) - 1
        s.sendall(
            b"".join(
                f"GET {p} HTTP/1.1\r\nHost: x\r\n{'Connection: close' if i == last else 'X: y'}"
                f"\r\n\r\n".encode()
                for i, p in enumerate(paths)
            )
        )
        time.sleep(0.3)
        data = b""
        end = time.monotonic() + 20
        while time.monotonic() < end:
            piece = s.recv(65536)
            if not piece:
                break
            data += piece
            if len(data) < 1024 * 1024:
                time.sleep(0.001)  # slow at first: several partial sends
        return data
    finally:
        s.close()


class SendPairOverSocketTests(TestCase):
    @defer.inlineCallbacks
    def test_a_large_body_reaches_a_slow_client_whole_and_in_order(self):
        server = yield start_server("Plugin tests.test_http_sendpair.BigBody\n")
        self.addCleanup(server.stop)
        data = yield threads.deferToThread(slow_get, server.port, ["/big", "/small", "/big"])
        responses = parse_responses(data, ["GET", "GET", "GET"])
        self.assertEqual([r.status for r in responses], [200, 200, 200])
        digest = hashlib.sha256(BODY).hexdigest()
        self.assertEqual(hashlib.sha256(responses[0].body).hexdigest(), digest)
        self.assertEqual(responses[1].body, SMALL)
        self.assertEqual(hashlib.sha256(responses[2].body).hexdigest(), digest)


class WritePairTests(SynchronousTestCase):
    """Which way a head and body go, on a fake connection."""

    class Sock:
        def __init__(self, takes):
            self.takes, self.calls = takes, []

        def sendmsg(self, parts):
            self.calls.append(("sendmsg", b"".join(parts)))
            return min(self.takes, sum(len(p) for p in parts))

        def send(self, data, flags=0):
            self.calls.append(("send", data))
            return min(self.takes, len(data))

    class Transport:
        def __init__(self):
            self.out = []
            self.producer = None

        def write(self, data):
            self.out.append(data)

        def writeSequence(self, parts):
            self.out.extend(parts)

    class Conn(sending.Sending):
        def __init__(self, sock, transport):
            self._sock, self.transport = sock, transport

    def conn(self, takes):
        self.patch(sending, "can_send_now", lambda transport: True)
        sock, transport = self.Sock(takes), self.Transport()
        return self.Conn(sock, transport), sock, transport

    def test_small_bodies_are_joined(self):
        c, sock, transport = self.conn(10**9)
        c.write_pair(b"HEAD", b"x" * 10)
        self.assertEqual(sock.calls, [("send", b"HEAD" + b"x" * 10)])

    def test_a_large_body_goes_by_one_sendmsg(self):
        body = b"b" * 100000
        c, sock, transport = self.conn(10**9)
        c.write_pair(b"HEAD", body)
        self.assertEqual(sock.calls, [("sendmsg", b"HEAD" + body)])
        self.assertEqual(transport.out, [])

    def test_what_the_kernel_did_not_take_is_queued_in_order(self):
        body = bytes(range(256)) * 400
        for takes in (0, 2, 4, 5000):
            c, sock, transport = self.conn(takes)
            c.write_pair(b"HEAD", body)
            self.assertEqual(b"".join(transport.out), (b"HEAD" + body)[takes:], takes)
