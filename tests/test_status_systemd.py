"""sd_notify around reloads (RELOADING=1, READY=1) and the watchdog (WATCHDOG=1)."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from axkit.systemd import (
    StatusReporter,
    Watchdog,
    monotonic_usec,
    notifying_reload,
    watchdog_interval,
)
from axkit.testing import TWISTD_COMMAND, free_port, twistd_env

from .test_systemd import NotifySocket


class NotifyTests(SynchronousTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.systemd = NotifySocket(self.dir)
        self.addCleanup(self.systemd.close)
        self.environ = {"NOTIFY_SOCKET": self.systemd.path}

    def test_reloading_then_ready(self):
        for outcome in (defer.succeed(True), defer.succeed(False)):
            before = monotonic_usec()
            d = notifying_reload(lambda outcome=outcome: outcome, self.environ)()
            first = self.systemd.receive().split("\n")
            self.assertEqual(first[0], "RELOADING=1")
            usec = int(first[1].removeprefix("MONOTONIC_USEC="))
            self.assertTrue(before <= usec <= monotonic_usec())
            self.assertEqual(self.systemd.receive(), "READY=1")
            self.assertIn(self.successResultOf(d), (True, False))

    def test_ready_after_a_failed_reload_too(self):
        d = notifying_reload(lambda: defer.fail(RuntimeError("x")), self.environ)()
        self.systemd.receive()
        self.assertEqual(self.systemd.receive(), "READY=1")
        self.failureResultOf(d, RuntimeError)

    def test_watchdog_interval(self):
        pid = str(os.getpid())
        self.assertEqual(watchdog_interval({"WATCHDOG_USEC": "10000000"}), 5.0)
        self.assertEqual(watchdog_interval({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": pid}), 1.5)
        self.assertIsNone(watchdog_interval({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"}))
        self.assertIsNone(watchdog_interval({}))
        self.assertIsNone(watchdog_interval({"WATCHDOG_USEC": "x"}))

    def test_watchdog_pings_while_running(self):
        clock = Clock()
        dog = Watchdog(clock, dict(self.environ, WATCHDOG_USEC="2000000"))
        dog.startService()
        self.assertEqual(self.systemd.receive(), "WATCHDOG=1")
        clock.advance(1.0)
        self.assertEqual(self.systemd.receive(), "WATCHDOG=1")
        dog.stopService()
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_no_watchdog_asked(self):
        clock = Clock()
        dog = Watchdog(clock, self.environ)
        dog.startService()
        self.assertEqual(clock.getDelayedCalls(), [])
        dog.stopService()

    def test_twistd_sighup_and_watchdog(self):
        port = free_port()
        config = os.path.join(self.dir, "site.conf")
        with open(config, "w") as f:
            f.write(f"Listen tcp:{port}:interface=127.0.0.1\nPlugin uri_to_file\n")
        env = twistd_env()
        env["NOTIFY_SOCKET"] = self.systemd.path
        env["WATCHDOG_USEC"] = "600000"  # a ping every 0.3 s
        proc = subprocess.Popen(
            TWISTD_COMMAND + ["-n", "--pidfile=", "axkit", "--config", config],
            cwd=self.dir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        seen = []

        def until(word):
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                message = self.systemd.receive()
                seen.append(message)
                if word in message.split("\n"):
                    return message
            self.fail(f"no {word} in {seen}")

        until("READY=1")
        until("WATCHDOG=1")
        proc.send_signal(signal.SIGHUP)
        self.assertTrue(until("RELOADING=1").split("\n")[1].startswith("MONOTONIC_USEC="))
        until("READY=1")
        proc.send_signal(signal.SIGTERM)
        until("STOPPING=1")
        self.assertEqual(proc.wait(timeout=20), 0)


class StatusLineTests(SynchronousTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.systemd = NotifySocket(self.dir)
        self.addCleanup(self.systemd.close)
        self.environ = {"NOTIFY_SOCKET": self.systemd.path}

    def test_live_figures_every_interval(self):
        clock = Clock()
        figures = [(3, 100)]
        reporter = StatusReporter(lambda: figures[0], clock, self.environ, interval=10)
        reporter.startService()
        clock.advance(10)
        self.assertEqual(
            self.systemd.receive(),
            "STATUS=serving: 3 connections, 0.0 requests/s, 100 requests since start",
        )
        figures[0] = (1, 150)
        clock.advance(10)
        self.assertEqual(
            self.systemd.receive(),
            "STATUS=serving: 1 connection, 5.0 requests/s, 150 requests since start",
        )
        reporter.stopService()
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_nothing_outside_systemd(self):
        clock = Clock()
        reporter = StatusReporter(lambda: (0, 0), clock, {})
        reporter.startService()
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_as_often_as_the_watchdog(self):
        self.assertEqual(StatusReporter(None, environ={"WATCHDOG_USEC": "4000000"}).interval, 2.0)
        self.assertEqual(StatusReporter(None, environ={}).interval, 10.0)

    def test_twistd_reports_connections_and_requests(self):
        port = free_port()
        config = os.path.join(self.dir, "site.conf")
        with open(config, "w") as f:
            f.write(
                f"Listen tcp:{port}:interface=127.0.0.1\nDocumentRoot .\n"
                "Plugin uri_to_file\nPlugin serve_file\n"
            )
        with open(os.path.join(self.dir, "a.txt"), "w") as f:
            f.write("a\n")
        env = twistd_env()
        env["NOTIFY_SOCKET"] = self.systemd.path
        env["WATCHDOG_USEC"] = "400000"  # STATUS= every 0.2 s
        proc = subprocess.Popen(
            TWISTD_COMMAND + ["-n", "--pidfile=", "axkit", "--config", config],
            cwd=self.dir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        seen = []
        deadline = time.monotonic() + 20
        while "READY=1" not in seen and time.monotonic() < deadline:
            seen.extend(self.systemd.receive().split("\n"))
        held = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.addCleanup(held.close)
        for _ in range(3):  # three requests on one kept-alive connection
            held.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertIn(b"200 OK", held.recv(4096))
        want = "STATUS=serving: 1 connection, "
        while time.monotonic() < deadline:
            lines = self.systemd.receive().split("\n")
            seen.extend(lines)
            status = [line for line in lines if line.startswith(want)]
            if status and status[0].endswith(", 3 requests since start"):
                break
        else:
            self.fail(f"no {want}... 3 requests since start in {seen}")
        proc.send_signal(signal.SIGTERM)
        held.close()
        self.assertEqual(proc.wait(timeout=20), 0)
