"""Workers N through a real ``twistd axkit``: a supervisor and its workers.

The plugin below (loaded by dotted path in each worker) answers /pid with
the worker's pid and the config's ``WorkerTestAnswer``, /slow after a
while, and /log by logging long lines -- so a test can tell the workers
apart, see which config they serve, and check what they write.
"""

import http.client
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time

from twisted.internet import reactor as _reactor
from twisted.internet.task import deferLater
from twisted.trial import unittest
from twisted.trial.unittest import SynchronousTestCase

from axkit.config import ANY, Directive, string
from axkit.hooks import DECLINED, DONE
from axkit.log import PluginLogger
from axkit.testing import TwistdProcess

LINE_LENGTH = 6000  # longer than a pipe's atomic write (PIPE_BUF, 4096)


class WorkerProbe:
    """/pid: "PID ANSWER"; /slow: the same, a second later; /log: logs
    three long lines (each a single character repeated) and answers."""

    name = "worker_probe"
    log = PluginLogger("worker_probe")
    directives = [Directive("WorkerTestAnswer", string, scopes=ANY, default="one")]

    def hook_response(self, request, conf):
        if request.path in ("/server-status", "/metrics"):
            return DECLINED  # (tests.test_workers_status)
        text = f"{os.getpid()} {conf.worker_test_answer}"
        if request.path == "/slow":
            d = deferLater(_reactor, 1.0, request.send, 200, text, "text/plain")
            return d.addCallback(lambda _: DONE)
        if request.path == "/log":
            mark = "abcdefghijklmnopqrstuvwxyz"[os.getpid() % 26]
            for _ in range(3):
                self.log.warn("{line}", line=mark * LINE_LENGTH)
        request.send(200, text, "text/plain")
        return DONE


def get(port, path="/pid", timeout=10.0):
    """``(status, body)`` of one request on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def config_text(workers=2, answer="one", extra=""):
    return (
        "Listen tcp:0:interface=127.0.0.1\n"
        f"Workers {workers}\n"
        "Plugin tests.test_workers.WorkerProbe\n"
        f"WorkerTestAnswer {answer}\n"
        "GracefulShutdownTimeout 10\n"
        f"{extra}"
    )


class WorkersProcess:
    """A twistd axkit with Workers, and what a test asks of it."""

    def start(self, text, watch=None):
        self.dir = tempfile.mkdtemp(prefix="axkit-workers-test-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.conf = os.path.join(self.dir, "site.conf")
        self.write(text)
        self.server = TwistdProcess(self.conf, watch=watch and os.path.join(self.dir, watch))
        self.addCleanup(self.server.stop)
        return self.server

    def write(self, text):
        with open(self.conf + ".new", "w") as f:
            f.write(text)
        os.replace(self.conf + ".new", self.conf)

    def pids_answering(self, want, answer=None, limit=300, deadline=15.0):
        """Distinct pids seen (answering ``answer``), until ``want`` of them."""
        seen = set()
        end = time.monotonic() + deadline
        for _ in range(limit):
            status, body = get(self.server.port)
            self.assertEqual(status, 200)
            pid, said = body.split()
            if answer is None or said == answer:
                seen.add(int(pid))
            if len(seen) >= want or time.monotonic() > end:
                break
        return seen

    def worker_pids(self):
        """The supervisor's children (its workers), from /proc."""
        found = set()
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    with open(f"/proc/{name}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                if ppid == self.server.process.pid:
                    found.add(int(name))
        return found

    def wait_workers(self, n, timeout=15.0, exclude=()):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            pids = self.worker_pids() - set(exclude)
            if len(pids) == n:
                return pids
            time.sleep(0.05)
        self.fail(f"not {n} workers: {self.worker_pids()}\n{self.server.output()}")


class WorkersTests(WorkersProcess, SynchronousTestCase):
    def test_two_workers_serve_and_a_killed_one_is_replaced(self):
        self.start(config_text(workers=2))
        first = self.wait_workers(2)
        self.assertTrue(self.server.wait_for_output("2 workers accepting"))
        self.assertEqual(self.pids_answering(2), first)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        # The port keeps answering, and a new worker takes the dead one's place.
        for _ in range(20):
            self.assertEqual(get(self.server.port)[0], 200)
        now = self.wait_workers(2, exclude=[victim])
        self.assertNotIn(victim, now)
        self.assertEqual(self.pids_answering(2, limit=300), now)
        self.assertIn(f"worker {victim} (slot ", self.server.output())
        self.assertIn("exited unasked (signal SIGKILL); starting another", self.server.output())

    def test_sighup_replaces_workers_with_no_failed_request(self):
        self.start(config_text(workers=2, answer="one"))
        old = self.wait_workers(2)
        self.assertTrue(self.server.wait_for_output("2 workers accepting"))
        failures, answers, stop = [], [], threading.Event()

        def load():
            # Fresh connections and one keep-alive connection, in turn.
            keep = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
            end = time.monotonic() + 30
            for i in range(100_000):
                if stop.is_set() or time.monotonic() > end:
                    break
                try:
                    if i % 2:
                        keep.request("GET", "/pid")
                        response = keep.getresponse()
                        status, body = response.status, response.read().decode()
                        if response.will_close:
                            keep.close()
                    else:
                        status, body = get(self.server.port)
                    answers.append(body)
                    if status != 200:
                        failures.append(status)
                except Exception as e:
                    failures.append(repr(e))
                    keep.close()
            keep.close()

        loader = threading.Thread(target=load)
        loader.start()
        self.addCleanup(loader.join)
        self.addCleanup(stop.set)
        time.sleep(0.3)
        self.write(config_text(workers=2, answer="two"))
        self.server.signal(signal.SIGHUP)
        self.assertTrue(self.server.wait_for_output("reloaded: 2 workers", timeout=20))
        new = self.wait_workers(2, exclude=old)
        self.assertEqual(self.wait_workers(2), new)  # the old ones drained and exited
        since = len(answers)
        time.sleep(0.3)
        stop.set()
        loader.join()
        self.assertEqual(failures, [])
        self.assertGreater(len(answers), since)
        self.assertEqual({a.split()[1] for a in answers[since:]}, {"two"})
        self.assertEqual(self.pids_answering(2, answer="two"), new)
        # A bad config: refused with file:line, the workers keep serving.
        self.write(config_text(workers=2, answer="three", extra="NoSuchDirective 1\n"))
        after = len(self.server.output())
        self.server.signal(signal.SIGHUP)
        self.assertTrue(self.server.wait_for_output("keep serving the old one", after=after))
        self.assertRegex(
            self.server.output()[after:], rf"{re.escape(self.conf)}:6: unknown directive"
        )
        self.assertEqual(get(self.server.port)[1].split()[1], "two")
        self.assertEqual(self.worker_pids(), new)
        # Fewer workers: the slot gone receives no more connections (its
        # SO_REUSEPORT socket closes once its worker has drained).
        self.write(config_text(workers=1, answer="four"))
        after = len(self.server.output())
        self.server.signal(signal.SIGHUP)
        self.assertTrue(self.server.wait_for_output("reloaded: 1 workers", 20, after))
        self.wait_workers(1)
        time.sleep(0.3)
        for _ in range(30):
            self.assertEqual(get(self.server.port, timeout=5)[1].split()[1], "four")

    def test_sigterm_drains_an_inflight_request(self):
        self.start(config_text(workers=2))
        self.wait_workers(2)
        self.assertTrue(self.server.wait_for_output("2 workers accepting"))
        result = []
        slow = threading.Thread(target=lambda: result.append(get(self.server.port, "/slow")))
        slow.start()
        time.sleep(0.4)  # the request is being answered
        self.server.signal(signal.SIGTERM)
        slow.join(20)
        self.assertEqual(result[0][0], 200)
        self.assertEqual(self.server.process.wait(20), 0)
        self.assertIn("graceful shutdown complete", self.server.output())
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", self.server.port), timeout=2).close()

    def logging_at_once(self, extra, watch=None):
        """Many requests at once, each making its worker log long lines."""
        self.start(config_text(workers=4, extra=extra), watch)
        self.wait_workers(4)
        end = time.monotonic() + 15
        while "4 workers accepting" not in self.server.output() + self.server.watched():
            self.assertLess(time.monotonic(), end, "the workers did not start")
            time.sleep(0.05)
        threads = [
            threading.Thread(target=lambda: [get(self.server.port, "/log") for _ in range(10)])
            for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)

    def assertWholeLines(self, text):
        lines = [line for line in text.splitlines() if "worker_probe" in line]
        self.assertGreaterEqual(len(lines), 8 * 10 * 3)
        for line in lines:
            message = line.rsplit("] ", 1)[1]
            self.assertEqual(len(message), LINE_LENGTH, line[:200])
            self.assertEqual(len(set(message)), 1, line[:200])

    def test_log_lines_of_many_workers_never_interleave_in_a_file(self):
        # Each worker appends to the file (O_APPEND), a line per write().
        self.logging_at_once("Plugin error_log\nErrorLog error.log\n", "error.log")
        path = os.path.join(self.dir, "error.log")
        with open(path) as f:
            self.assertWholeLines(f.read())
        # SIGUSR1 (logrotate): the supervisor and every worker reopen it.
        os.rename(path, path + ".1")
        self.server.signal(signal.SIGUSR1)
        end = time.monotonic() + 15
        while self.server.watched().count("log files reopened") < 5:
            self.assertLess(time.monotonic(), end, self.server.watched())
            time.sleep(0.05)
        rotated = os.path.getsize(path + ".1")
        for _ in range(20):
            get(self.server.port, "/log")
        self.assertIn("worker_probe", self.server.watched())
        self.assertEqual(os.path.getsize(path + ".1"), rotated)

    def test_log_lines_of_many_workers_never_interleave_on_stderr(self):
        # No log file: the workers' stderr comes through the supervisor.
        self.logging_at_once("")
        self.server.stop()
        self.assertWholeLines(self.server.output())


class WorkersDirectiveTests(SynchronousTestCase):
    def test_a_number_or_auto(self):
        from axkit.config.loader import load_string

        conf = load_string("Workers 3\n").global_resolved.conf
        self.assertEqual(conf.workers, 3)
        conf = load_string("Workers auto\n").global_resolved.conf
        self.assertEqual(conf.workers, len(os.sched_getaffinity(0)))
        self.assertEqual(load_string("").global_resolved.conf.workers, 1)

    def test_bad_values_name_the_line(self):
        from axkit.config.errors import ConfigErrors
        from axkit.config.loader import load_string

        for word in ("0", "many", "-2"):
            with self.assertRaises(ConfigErrors) as caught:
                load_string(f"\nWorkers {word}\n", "site.conf")
            self.assertRegex(str(caught.exception), r"^site.conf:2: .*Workers|^site.conf:2: ")


class WorkersSystemdTests(WorkersProcess, SynchronousTestCase):
    def test_systemd_hears_the_supervisor(self):
        from .test_systemd import NotifySocket

        folder = tempfile.mkdtemp(prefix="axkit-notify-")
        self.addCleanup(shutil.rmtree, folder, True)
        systemd = NotifySocket(folder)
        self.addCleanup(systemd.close)
        os.environ["NOTIFY_SOCKET"] = systemd.path
        self.addCleanup(os.environ.pop, "NOTIFY_SOCKET", None)
        os.environ["WATCHDOG_USEC"] = "600000"  # pings (and STATUS=) every 0.3 s
        self.addCleanup(os.environ.pop, "WATCHDOG_USEC", None)
        self.start(config_text(workers=2))
        seen = []

        def until(word):
            while True:
                message = systemd.receive()  # (a 20 s timeout)
                seen.append(message)
                if word in message.split("\n"):
                    return message

        def until_prefix(prefix):
            while True:
                message = systemd.receive()
                seen.append(message)
                if message.startswith(prefix):
                    return message

        ready = until("READY=1")
        # Once every worker accepts, from the supervisor (the main PID).
        self.assertIn(f"MAINPID={self.server.process.pid}", ready)
        self.assertEqual(len(self.worker_pids()), 2)
        self.assertIn("2 workers accepting", self.server.output())
        until("WATCHDOG=1")
        for _ in range(5):
            self.assertEqual(get(self.server.port)[0], 200)
        # STATUS= adds up the workers' figures (written once a second).
        while True:
            status = until_prefix("STATUS=")
            found = re.search(r"(\d+) requests since start", status)
            if found and int(found.group(1)) >= 5:
                break
        self.server.signal(signal.SIGHUP)
        until("RELOADING=1")
        until("READY=1")
        self.assertIn("reloaded: 2 workers", self.server.output())
        self.server.signal(signal.SIGTERM)
        until("STOPPING=1")
        self.assertEqual(self.server.process.wait(20), 0)


class WorkersPrivilegeTests(WorkersProcess, SynchronousTestCase):
    def test_workers_drop_privileges_after_opening_logs(self):
        import grp
        import pwd

        if os.getuid() != 0:
            raise unittest.SkipTest("needs root (twistd -u/-g)")
        user = pwd.getpwnam("nobody")
        group = "nogroup" if "nogroup" in {g.gr_name for g in grp.getgrall()} else "nobody"
        self.dir = tempfile.mkdtemp(prefix="axkit-workers-test-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        os.chmod(self.dir, 0o755)  # the config readable by nobody; logs/ is root's
        os.makedirs(os.path.join(self.dir, "logs"))
        self.conf = os.path.join(self.dir, "site.conf")
        self.write(
            config_text(
                workers=2,
                extra="Plugin error_log\nPlugin access_log\nErrorLog logs/error.log\n"
                'AccessLog logs/access.log "%P %U"\n',
            )
        )
        errors = os.path.join(self.dir, "logs", "error.log")
        access = os.path.join(self.dir, "logs", "access.log")
        self.server = TwistdProcess(
            self.conf, watch=errors, twistd_args=["-u", str(user.pw_uid), "-g", group]
        )
        self.addCleanup(self.server.stop)
        workers = self.wait_workers(2)
        end = time.monotonic() + 15
        while "2 workers accepting" not in self.server.watched():
            self.assertLess(time.monotonic(), end, self.server.watched())
            time.sleep(0.05)
        self.assertEqual(get(self.server.port)[0], 200)

        def uids(pid):
            with open(f"/proc/{pid}/status") as f:
                return {x for line in f if line.startswith("Uid:") for x in line.split()[1:]}

        # The supervisor stays root (it serves nothing); the workers do not.
        self.assertEqual(uids(self.server.process.pid), {"0"})
        for pid in workers:
            self.assertEqual(uids(pid), {str(user.pw_uid)})
        # logrotate: every worker reopens the root-owned files after SIGUSR1.
        os.rename(access, access + ".1")
        self.server.signal(signal.SIGUSR1)
        end = time.monotonic() + 15
        while self.server.watched().count("log files reopened") < 3:
            self.assertLess(time.monotonic(), end, self.server.watched())
            time.sleep(0.05)
        seen = set()
        for i in range(200):
            get(self.server.port, f"/after/{i}")
            if i >= 20:
                with open(access) if os.path.exists(access) else open(os.devnull) as f:
                    seen = {line.split()[0] for line in f if " /after/" in line}
                if seen == {str(pid) for pid in workers}:
                    break
            time.sleep(0.02)
        self.assertEqual(seen, {str(pid) for pid in workers})
        self.assertNotIn("cannot reopen", self.server.watched())
        self.assertNotIn("Traceback", self.server.watched() + self.server.output())
