"""sd_notify: under systemd (Type=notify) twistd axkit says READY=1 once it
listens and STOPPING=1 when it begins to stop."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from axkit.systemd import activation_problem, notify
from axkit.testing import TWISTD_COMMAND, free_port, twistd_env

from .rawclient import read_until_closed


class NotifySocket:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    def __init__(self, folder):
        self.path = os.path.join(folder, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(20)

    def receive(self):
        return self.sock.recv(4096).decode()

    def close(self):
        self.sock.close()


class NotifyTests(SynchronousTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.systemd = NotifySocket(self.dir)
        self.addCleanup(self.systemd.close)

    def test_no_notify_socket_means_nothing_is_sent(self):
        self.assertFalse(notify("READY=1", environ={}))

    def test_state_reaches_the_socket(self):
        self.assertTrue(notify("READY=1", environ={"NOTIFY_SOCKET": self.systemd.path}))
        self.assertEqual(self.systemd.receive(), "READY=1")

    def test_twistd_says_ready_when_listening_and_stopping_on_sigterm(self):
        port = free_port()
        config = os.path.join(self.dir, "site.conf")
        with open(config, "w") as f:
            f.write(
                f"Listen tcp:{port}:interface=127.0.0.1\nPlugin uri_to_file\nPlugin serve_file\n"
            )
        env = twistd_env()
        env["NOTIFY_SOCKET"] = self.systemd.path
        proc = subprocess.Popen(
            TWISTD_COMMAND + ["-n", "--pidfile=", "axkit", "--config", config],
            cwd=self.dir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        ready = self.systemd.receive()
        self.assertIn("READY=1", ready.split("\n"))
        self.assertIn(f"MAINPID={proc.pid}", ready.split("\n"))
        # Ready means listening: a connection is accepted right away.
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.systemd.receive(), "STOPPING=1")
        self.assertEqual(proc.wait(timeout=20), 0)


class SocketActivationTests(SynchronousTestCase):
    """`Listen systemd:domain=INET:index=0` takes the socket systemd passes
    (systemd-socket-activate stands in for a .socket unit)."""

    def setUp(self):
        self.activate = shutil.which("systemd-socket-activate")
        if self.activate is None:
            raise SkipTest("systemd-socket-activate is not installed")
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        with open(os.path.join(self.dir, "a.txt"), "w") as f:
            f.write("activated\n")
        self.config = os.path.join(self.dir, "site.conf")
        with open(self.config, "w") as f:
            f.write(
                "Listen systemd:domain=INET:index=0\nDocumentRoot .\n"
                "Plugin uri_to_file\nPlugin serve_file\n"
            )

    def test_serves_on_the_inherited_socket(self):
        port = free_port()
        env = twistd_env()
        proc = subprocess.Popen(
            [self.activate, "-E", "PYTHONPATH", "--fdname=http", "-l", f"127.0.0.1:{port}"]
            + TWISTD_COMMAND
            + ["-n", "--pidfile=", "axkit", "--config", self.config],
            cwd=self.dir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        # The socket exists before axkit starts: the first request waits in
        # its backlog while axkit comes up, and is answered.
        import time

        deadline = time.monotonic() + 15
        while True:  # until systemd-socket-activate has bound the port
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=20)
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        with s:
            s.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = read_until_closed(s, 20, strict=True)
        self.assertTrue(data.startswith(b"HTTP/1.1 200 OK"), data)
        self.assertTrue(data.endswith(b"\r\n\r\nactivated\n"), data)

    def test_missing_fdnames_is_named_as_the_cause(self):
        # systemd-socket-activate without --fdname (or systemd before 227)
        # passes LISTEN_FDS but no LISTEN_FDNAMES: Twisted then takes over
        # nothing, and the error says so rather than "no socket".
        port = free_port()
        out = os.path.join(self.dir, "out.txt")
        with open(out, "wb") as f:
            proc = subprocess.Popen(
                [self.activate, "-E", "PYTHONPATH", "-l", f"127.0.0.1:{port}"]
                + TWISTD_COMMAND
                + ["-n", "--pidfile=", "axkit", "--config", self.config],
                cwd=self.dir,
                env=twistd_env(),
                stdout=f,
                stderr=subprocess.STDOUT,
            )
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        import time

        deadline = time.monotonic() + 15
        while True:  # the first connection makes it start axkit
            try:
                socket.create_connection(("127.0.0.1", port), timeout=20).close()
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.assertNotEqual(proc.wait(timeout=60), 0)
        with open(out) as f:
            text = f.read()
        self.assertIn(
            "cannot listen on systemd:domain=INET:index=0: systemd passed 1 socket(s) "
            "but no LISTEN_FDNAMES",
            text,
        )

    def test_missing_socket_is_a_clear_error(self):
        result = subprocess.run(
            TWISTD_COMMAND + ["-n", "--pidfile=", "axkit", "--config", self.config],
            cwd=self.dir,
            env=twistd_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(
            "cannot listen on systemd:domain=INET:index=0: no socket was passed by systemd "
            "(LISTEN_FDS is not set",
            result.stdout + result.stderr,
        )


class ActivationProblemTests(SynchronousTestCase):
    """Each way socket activation can go wrong, named."""

    def problem(self, endpoint="systemd:domain=INET:index=0", **environ):
        return activation_problem(endpoint, environ, pid=42)

    def test_causes(self):
        self.assertIn("LISTEN_FDS is not set", self.problem())
        self.assertIn(
            "for process 7, not this one (42)", self.problem(LISTEN_FDS="1", LISTEN_PID="7")
        )
        self.assertIn("but no LISTEN_FDNAMES", self.problem(LISTEN_FDS="1", LISTEN_PID="42"))
        self.assertIn(
            "names 1 socket(s) but LISTEN_FDS says 2",
            self.problem(LISTEN_FDS="2", LISTEN_PID="42", LISTEN_FDNAMES="http"),
        )
        self.assertIn(
            "index=3 but systemd passed 1 socket(s) (index 0 to 0",
            self.problem(
                "systemd:domain=INET:index=3", LISTEN_FDS="1", LISTEN_PID="42", LISTEN_FDNAMES="h"
            ),
        )
        self.assertIn(
            "no socket named 'https' (it passed: http)",
            self.problem(
                "systemd:domain=INET:name=https",
                LISTEN_FDS="1",
                LISTEN_PID="42",
                LISTEN_FDNAMES="http",
            ),
        )
