"""A WebSocket tunnel's backpressure, both ways, through a real `twistd
axkit`: one side writes as fast as it can while the other reads nothing;
the writer must stall after the sockets' buffers are full (nothing piles
up in axkit: its RSS stays put), and every byte arrives once read."""

import os
import shutil
import socket
import tempfile
import threading
import time

from twisted.trial.unittest import SynchronousTestCase

from axkit.testing import TwistdProcess

CHUNK = 256 * 1024
GOAL = 400 * 1024 * 1024  # what a writer would send if nothing held it back
# Loopback socket buffers on the path (backend send, axkit receive, axkit
# send, client receive) hold at most ~4-6 MiB each with Linux's defaults.
BOUND = 48 * 1024 * 1024
UPGRADE = (
    b"GET /t/x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
SWITCH = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"


def flood(sock, stall=1.0, limit=20.0):
    """Send until GOAL, or until nothing could be sent for ``stall``
    seconds (bounded by ``limit``); the bytes sent."""
    sock.setblocking(False)
    block = b"z" * CHUNK
    sent = 0
    last = time.monotonic()
    end = last + limit
    while sent < GOAL and time.monotonic() < end:
        try:
            n = sock.send(block)
        except BlockingIOError:
            if time.monotonic() - last > stall:
                break
            time.sleep(0.01)
            continue
        sent += n
        last = time.monotonic()
    sock.setblocking(True)
    return sent


def drain(sock, count, limit=60.0):
    sock.settimeout(limit)
    got = 0
    while got < count:
        piece = sock.recv(1 << 20)
        if not piece:
            break
        got += len(piece)
    return got


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class RawBackend:
    """Accepts one connection, reads the upgrade head, answers 101."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.listener.settimeout(20)
        self.port = self.listener.getsockname()[1]
        self.conn = None
        self.head = b""
        self.ready = threading.Event()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        conn, _ = self.listener.accept()
        conn.settimeout(20)
        while b"\r\n\r\n" not in self.head:
            piece = conn.recv(4096)
            if not piece:
                break
            self.head += piece
        conn.sendall(SWITCH)
        self.conn = conn
        self.ready.set()

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


class RawTunnelCase(SynchronousTestCase):
    """A raw client, through twistd, tunnelled to a raw backend."""

    def setUp(self):
        self.backend = RawBackend()
        self.addCleanup(self.backend.close)
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder, True)
        path = os.path.join(folder, "site.conf")
        with open(path, "w") as f:
            f.write(
                "Listen tcp:0:interface=127.0.0.1\nPlugin proxy\n"
                f"ProxyPass /t/ http://127.0.0.1:{self.backend.port}/ upgrade=websocket\n"
            )
        self.server = TwistdProcess(path)
        self.addCleanup(self.server.stop)
        self.client = socket.create_connection(("127.0.0.1", self.server.port), timeout=20)
        self.addCleanup(self.client.close)
        self.client.sendall(UPGRADE)
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.client.recv(1)
        self.assertTrue(head.startswith(b"HTTP/1.1 101 "), head)
        self.assertTrue(self.backend.ready.wait(20))
        self.before = rss(self.server.process.pid)


class BackpressureTests(RawTunnelCase):
    def check(self, writer, reader):
        sent = flood(writer)
        grown = rss(self.server.process.pid) - self.before
        self.assertLess(sent, BOUND, "the writer was never held back")
        self.assertLess(grown, 64 * 1024 * 1024)
        # Nothing was lost: once read, every byte arrives.
        self.assertEqual(drain(reader, sent), sent)

    def test_a_client_reading_nothing_pauses_the_backend(self):
        self.check(self.backend.conn, self.client)

    def test_a_backend_reading_nothing_pauses_the_client(self):
        self.check(self.client, self.backend.conn)


def read_to_end(sock):
    got = b""
    while True:
        piece = sock.recv(65536)
        if not piece:
            return got
        got += piece


class HalfCloseTests(RawTunnelCase):
    """A FIN is passed on; the tunnel closes once both sides sent theirs."""

    def test_the_client_s_fin_reaches_the_backend(self):
        self.client.sendall(b"last words")
        self.client.shutdown(socket.SHUT_WR)
        self.assertEqual(read_to_end(self.backend.conn), b"last words")
        # The other way is still open until the backend closes too.
        self.backend.conn.sendall(b"a reply")
        self.backend.conn.shutdown(socket.SHUT_WR)
        self.assertEqual(read_to_end(self.client), b"a reply")

    def test_the_backend_s_fin_reaches_the_client(self):
        self.backend.conn.sendall(b"bye")
        self.backend.conn.shutdown(socket.SHUT_WR)
        self.assertEqual(read_to_end(self.client), b"bye")
        self.client.sendall(b"late")
        self.client.shutdown(socket.SHUT_WR)
        self.assertEqual(read_to_end(self.backend.conn), b"late")

    def test_a_lost_backend_closes_the_client(self):
        self.backend.conn.close()
        self.backend.conn = None
        self.assertEqual(read_to_end(self.client), b"")
