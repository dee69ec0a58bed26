"""SendTimeout (nginx's send_timeout): a client that stops reading in the
middle of a response is cut; a slow server-side producer is not."""

import os
import shutil
import socket
import tempfile
import time

from twisted.internet import defer, threads
from twisted.trial.unittest import TestCase

from axkit.testing import start_server

from .rawclient import exchange, request_bytes
from .static_support import REPO, STATIC_PLUGINS

BIG = 24 * 1024 * 1024


def read_after_pause(port, pause, rcvbuf=None, want=None):
    """GET /big.bin, read nothing for ``pause`` seconds, then read until the
    server ends the connection ("eof"/"reset"), ``want`` body bytes arrived
    ("complete") or nothing comes for 10 s ("timeout").  Runs in a thread."""
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
    time.sleep(pause)
    sock.settimeout(10)
    pieces, size, ended = [], 0, None
    try:
        while ended is None:
            data = sock.recv(1 << 20)
            if not data:
                ended = "eof"
            pieces.append(data)
            size += len(data)
            if (
                want is not None
                and b"\r\n\r\n" in pieces[0]
                and size - pieces[0].index(b"\r\n\r\n") - 4 >= want
            ):
                ended = "complete"
    except ConnectionResetError:
        ended = "reset"
    except TimeoutError:
        ended = "timeout"
    finally:
        sock.close()
    return b"".join(pieces), ended


class SendTimeoutTests(TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.root)
        with open(os.path.join(self.root, "big.bin"), "wb") as f:
            f.write(os.urandom(1024 * 1024) * (BIG // (1024 * 1024)))

    @defer.inlineCallbacks
    def _serve(self, extra):
        server = yield start_server(
            f'DocumentRoot "{self.root}"\n' + STATIC_PLUGINS.format(repo=REPO) + extra
        )
        self.addCleanup(server.stop)
        return server

    @defer.inlineCallbacks
    def test_a_client_that_reads_nothing_is_cut(self):
        server = yield self._serve("SendTimeout 1\nKeepAliveTimeout 60\n")
        # A small fixed receive window, then nothing read for a while: the
        # server's socket fills, its sendfile stops making progress.
        received, ended = yield threads.deferToThread(
            read_after_pause, server.port, 6.0, rcvbuf=16384
        )
        self.assertTrue(received.startswith(b"HTTP/1.1 200 OK\r\n"))
        head, _, body = received.partition(b"\r\n\r\n")
        self.assertIn(b"Content-Length: %d" % BIG, head)
        # Cut: the connection ended (not our read timeout) short of the file.
        self.assertIn(ended, ("eof", "reset"))
        self.assertLess(len(body), BIG)

    @defer.inlineCallbacks
    def test_a_client_that_reads_late_but_within_the_timeout_gets_everything(self):
        server = yield self._serve("SendTimeout 30\n")
        received, ended = yield threads.deferToThread(read_after_pause, server.port, 3.0, want=BIG)
        head, _, body = received.partition(b"\r\n\r\n")
        self.assertEqual(ended, "complete")
        self.assertEqual(len(body), BIG)

    @defer.inlineCallbacks
    def test_a_slow_producer_is_not_the_clients_fault(self):
        server = yield start_server("SendTimeout 1\nPlugin tests.httpplugins.Delay\n")
        self.addCleanup(server.stop)
        received = yield exchange(server.port, request_bytes("/delay/2.5"))
        self.assertTrue(received.startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertTrue(received.endswith(b"waited 2.5"))
