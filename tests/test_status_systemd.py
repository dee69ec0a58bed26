"""sd_notify around reloads (RELOADING=1, READY=1) and the watchdog (WATCHDOG=1)."""

import os
import shutil
import signal
import subprocess
import tempfile
import time

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from axkit.systemd import Watchdog, monotonic_usec, notifying_reload, watchdog_interval
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
