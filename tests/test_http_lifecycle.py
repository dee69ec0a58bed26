"""Graceful shutdown of a real `twistd -n axkit`: SIGTERM/SIGINT stop
accepting at once, close idle keep-alive connections, let responses in
progress finish (within GracefulShutdownTimeout), then exit 0."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from twisted.trial.unittest import SynchronousTestCase

from axkit.testing import TWISTD_COMMAND, free_port, parse_responses, twistd_env

from .rawclient import port_open, read_until_closed

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TWISTD = TWISTD_COMMAND


def _default_signals():
    # A job started in the background by a non-interactive shell (a CI
    # runner may start us so) inherits SIGINT ignored; Python then leaves it
    # ignored and Twisted installs no handler.  Give the server what a
    # terminal or systemd would: the default disposition.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def read_response(sock, timeout=10):
    """Read one whole response (head and Content-Length body)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
            while len(body) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                body += chunk
    return head + b"\r\n\r\n" + body


class GracefulShutdownTests(SynchronousTestCase):
    def start(self, extra=""):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.port = free_port()
        path = os.path.join(self.dir, "site.conf")
        with open(path, "w") as f:
            f.write(
                f"Listen tcp:{self.port}:interface=127.0.0.1\n"
                "Plugin tests.httpplugins.Delay\n"
                "Plugin tests.httpplugins.Echo\n" + extra
            )
        env = twistd_env()
        self.proc = subprocess.Popen(
            TWISTD + ["-n", "--pidfile=", "axkit", "--config", path],
            cwd=self.dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_default_signals,
        )
        self.addCleanup(self._kill)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if port_open(self.port, timeout=1):
                return
            time.sleep(0.05)
        self.fail("server did not start: " + self.proc.stdout.read().decode())

    def _kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def _drains(self, signum):
        self.start()
        # An idle keep-alive connection (one request answered).
        idle = self.connect()
        self.addCleanup(idle.close)
        idle.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        first = read_response(idle)
        self.assertTrue(first.startswith(b"HTTP/1.1 200 OK"), first)
        # A request in progress: its answer comes 1.5 s later.
        busy = self.connect()
        self.addCleanup(busy.close)
        busy.sendall(b"GET /delay/1.5 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        self.proc.send_signal(signum)
        time.sleep(0.3)
        # Not accepting any more.
        with self.assertRaises(OSError):
            late = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            late.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            late.settimeout(2)
            if not late.recv(100):
                raise ConnectionResetError("closed without an answer")
        # The idle connection is closed without another response.
        self.assertEqual(read_until_closed(idle), b"")
        # The busy one gets its whole answer, marked as the last one.
        [r] = parse_responses(read_until_closed(busy))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"waited 1.5")
        self.assertEqual(r.header("connection"), "close")
        self.assertEqual(self.proc.wait(timeout=20), 0)
        output = self.proc.stdout.read().decode()
        self.assertIn("graceful shutdown", output)

    def test_sigterm_drains_and_exits_0(self):
        self._drains(signal.SIGTERM)

    def test_sigint_drains_and_exits_0(self):
        self._drains(signal.SIGINT)

    def test_drain_deadline_cuts_what_is_left(self):
        self.start("GracefulShutdownTimeout 1\n")
        busy = self.connect()
        self.addCleanup(busy.close)
        busy.sendall(b"GET /delay/30 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(read_until_closed(busy), b"")
        self.assertEqual(self.proc.wait(timeout=20), 0)
        self.assertLess(time.monotonic() - started, 15)
        self.assertIn("cutting 1 connection", self.proc.stdout.read().decode())

    def test_second_signal_stops_waiting(self):
        self.start("GracefulShutdownTimeout 60\n")
        busy = self.connect()
        self.addCleanup(busy.close)
        busy.sendall(b"GET /delay/30 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        self.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        self.assertIsNone(self.proc.poll())  # still draining
        self.proc.send_signal(signal.SIGINT)
        self.assertEqual(read_until_closed(busy), b"")
        self.assertEqual(self.proc.wait(timeout=20), 0)
        output = self.proc.stdout.read().decode()
        self.assertIn("second signal, cutting 1 connection", output)
        self.assertNotIn("Traceback", output)
