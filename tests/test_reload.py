"""SIGHUP reload: validate, swap for new requests, in-flight requests finish on
the old config, listeners opened/closed to match, nothing dropped; a bad
config is logged and the old one stays.  One test reloads under load."""

import http.client
import os
import signal
import threading
import time

import treq
from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase, TestCase

from axkit.testing import TwistdProcess, start_server
from tests.configplugins import Hold
from tests.rawclient import exchange_blocking

REPORT = """
Plugin tests.configplugins.Report
Color {color}
"""


class InProcessReloadTests(TestCase):
    @defer.inlineCallbacks
    def server(self, text):
        server = yield start_server(text)
        self.addCleanup(server.stop)
        return server

    @defer.inlineCallbacks
    def color(self, server):
        response = yield treq.get(server.url("/"), persistent=False)
        body = yield treq.json_content(response)
        return body["color"]

    @defer.inlineCallbacks
    def test_new_requests_use_new_config(self):
        server = yield self.server(REPORT.format(color="red"))
        self.assertEqual((yield self.color(server)), "red")
        ok = yield server.reload(REPORT.format(color="blue"))
        self.assertTrue(ok)
        self.assertEqual((yield self.color(server)), "blue")
        self.assertEqual(server.service.holder.generation, 2)

    @defer.inlineCallbacks
    def test_bad_config_keeps_old(self):
        server = yield self.server(REPORT.format(color="red"))
        ok = yield server.reload(REPORT.format(color="blue") + "NoSuchDirective 1\n")
        self.assertFalse(ok)
        self.assertEqual((yield self.color(server)), "red")
        self.assertEqual(server.service.holder.generation, 1)

    @defer.inlineCallbacks
    def test_reload_from_file_logs_errors(self):
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        path = os.path.join(folder, "site.conf")
        with open(path, "w") as f:
            f.write("Listen tcp:0:interface=127.0.0.1\n" + REPORT.format(color="red"))
        server = yield self.server(open(path).read())
        server.service.holder.path = path
        with open(path, "a") as f:
            f.write("Color\n")
        events = []
        from twisted.logger import globalLogPublisher

        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        ok = yield server.service.reload()
        self.assertFalse(ok)
        from twisted.logger import formatEvent

        texts = [formatEvent(e) for e in events]
        self.assertIn(
            f"reload refused: {path}:5: Color takes 1 argument, got 0 (usage: Color STRING)", texts
        )
        self.assertEqual((yield self.color(server)), "red")
        with open(path, "w") as f:
            f.write("Listen tcp:0:interface=127.0.0.1\n" + REPORT.format(color="green"))
        self.assertTrue((yield server.service.reload()))
        self.assertEqual((yield self.color(server)), "green")

    @defer.inlineCallbacks
    def test_in_flight_request_finishes_on_old_config(self):
        Hold.waiting = []
        text = "Plugin tests.configplugins.Hold\n" + REPORT.format(color="first")
        server = yield self.server(text)
        pending = treq.get(server.url("/"), persistent=False)
        while not Hold.waiting:
            yield deferLater(0.01)
        ok = yield server.reload(text.replace("first", "second"))
        self.assertTrue(ok)
        second = treq.get(server.url("/"), persistent=False)
        while len(Hold.waiting) < 2:
            yield deferLater(0.01)
        for d in Hold.waiting:
            d.callback(None)
        first_body = yield treq.text_content((yield pending))
        second_body = yield treq.text_content((yield second))
        self.assertEqual(first_body, "first\n")
        self.assertEqual(second_body, "second\n")

    @defer.inlineCallbacks
    def test_listeners_opened_and_closed(self):
        sock = os.path.join(short_tempdir(self), "extra.sock")
        base = "Listen tcp:0:interface=127.0.0.1\n" + REPORT.format(color="x")
        server = yield self.server(base)
        tcp_port = server.port
        self.assertTrue((yield server.reload(base + f"Listen unix:{sock}\n")))
        from twisted.internet.threads import deferToThread

        self.assertEqual((yield deferToThread(unix_get, sock))[0], 200)
        self.assertEqual(server.port, tcp_port)  # kept, not reopened
        self.assertTrue((yield server.reload(base)))
        yield deferLater(0.05)
        yield self.assertFailure(deferToThread(unix_get, sock), OSError)
        self.assertEqual((yield self.color(server)), "x")

    @defer.inlineCallbacks
    def test_listener_that_cannot_open_refuses_reload(self):
        base = "Listen tcp:0:interface=127.0.0.1\n" + REPORT.format(color="x")
        server = yield self.server(base)
        bad = "Listen unix:/nonexistent-dir-for-axkit/x.sock\n"
        ok = yield server.reload(base.replace("Color x", "Color y") + bad)
        self.assertFalse(ok)
        self.assertEqual((yield self.color(server)), "x")
        self.assertEqual(list(server.service.ports), ["tcp:0:interface=127.0.0.1"])


def short_tempdir(test):
    """A folder with a short path (AF_UNIX paths are limited to ~107 bytes)."""
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="axkit-")
    test.addCleanup(shutil.rmtree, folder, True)
    return folder


def deferLater(seconds):
    from twisted.internet import reactor
    from twisted.internet.task import deferLater as later

    return later(reactor, seconds, lambda: None)


def unix_get(path):
    data = exchange_blocking(
        path, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=5, strict=True
    )
    return int(data.split(b" ", 2)[1]), data


CONFIG = """\
Listen tcp:0:interface=127.0.0.1
{extra}
Plugin uri_to_file
Plugin serve_file
Plugin error_log
DocumentRoot {root}
"""


class ReloadUnderLoadTests(SynchronousTestCase):
    """A real twistd process, two client threads (keep-alive and a new
    connection per request) and SIGHUP several times: zero failed requests."""

    RELOADS = 6
    MAX_REQUESTS = 3000  # per client: a bound whatever happens
    MAX_SECONDS = 60

    def test_reload_under_load(self):
        folder = os.path.abspath(self.mktemp())
        sock = os.path.join(short_tempdir(self), "b.sock")
        for name in ("a", "b"):
            os.makedirs(os.path.join(folder, name))
            with open(os.path.join(folder, name, "index.html"), "w") as f:
                f.write(name.upper() + "\n")
        path = os.path.join(folder, "site.conf")

        def write(version):
            extra = f"Listen unix:{sock}" if version == "b" else ""
            with open(path, "w") as f:
                f.write(CONFIG.format(extra=extra, root=version))

        write("a")
        server = TwistdProcess(path)
        self.addCleanup(server.stop)
        port = server.port

        failures, bodies, counts = [], set(), {"keepalive": 0, "fresh": 0}
        stop = threading.Event()
        deadline = time.monotonic() + self.MAX_SECONDS

        def client(kind):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            while (
                not stop.is_set()
                and counts[kind] < self.MAX_REQUESTS
                and time.monotonic() < deadline
            ):
                if kind == "fresh":
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                try:
                    conn.request("GET", "/")
                    response = conn.getresponse()
                    body = response.read()
                    if response.status != 200:
                        failures.append((kind, response.status, body))
                    else:
                        bodies.add(body)
                except Exception as e:  # every failure counts, whatever it is
                    failures.append((kind, repr(e)))
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                counts[kind] += 1
                if kind == "fresh":
                    conn.close()
            conn.close()

        threads = [threading.Thread(target=client, args=(k,)) for k in counts]
        for t in threads:
            t.start()
        # Serving (as systemd's READY=1 waits for): the "listening" line comes
        # before the signal handlers are installed, and a SIGHUP in between
        # would end the process.
        ready = time.monotonic() + 10
        while not bodies and time.monotonic() < ready:
            time.sleep(0.01)
        self.assertTrue(bodies, server.output()[-2000:])
        try:
            for generation in range(2, self.RELOADS + 2):
                version = "b" if generation % 2 == 0 else "a"
                before = len(server.output())
                write(version)
                server.signal(signal.SIGHUP)
                self.assertTrue(
                    server.wait_for_output(f"reloaded (generation {generation})", after=before),
                    server.output()[-2000:],
                )
                # Listeners follow the config: the UNIX socket exists only in "b".
                if version == "b":
                    self.assertEqual(unix_get(sock)[0], 200)
                else:
                    self.assertTrue(
                        server.wait_for_output("stopped listening on unix:", after=before)
                    )
                    self.assertRaises(OSError, unix_get, sock)
                time.sleep(0.2)  # let both clients run on this generation
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        self.assertEqual(failures, [], f"{counts} requests")
        self.assertEqual(bodies, {b"A\n", b"B\n"})
        if os.environ.get("AXKIT_TEST_VERBOSE"):
            print(f"reload under load: {counts} requests, {self.RELOADS} reloads, 0 failed")
        self.assertGreater(counts["keepalive"], self.RELOADS)
        self.assertGreater(counts["fresh"], self.RELOADS)


class SignalHandlersBeforeListeningTests(SynchronousTestCase):
    """twistd logs "axkit listening" as each port is bound, in
    privilegedStartService, before startService runs: a SIGHUP sent on
    seeing that line (a test, a deploy script) must find the handler
    installed, not end the process."""

    def test_handlers_installed_before_ports_are_bound(self):
        from twisted.internet import reactor

        from axkit.server import AxKitService
        from axkit.testing import load_config

        service = AxKitService(
            load_config("Listen tcp:0:interface=127.0.0.1\n"), reactor=reactor, handle_signals=True
        )
        seen = {}
        listen = service.listen

        def listen_and_look(endpoint):
            seen[endpoint] = signal.getsignal(signal.SIGHUP), signal.getsignal(signal.SIGUSR1)
            return listen(endpoint)

        service.listen = listen_and_look
        before = signal.getsignal(signal.SIGHUP)
        try:
            service.privilegedStartService()
        finally:
            for port in service.ports.values():
                port.stopListening()
            service.restore_signal_handlers()
        self.assertEqual(list(seen), ["tcp:0:interface=127.0.0.1"])
        hup, usr1 = seen["tcp:0:interface=127.0.0.1"]
        self.assertTrue(callable(hup) and hup is not before, hup)
        self.assertTrue(callable(usr1), usr1)
        self.assertIs(signal.getsignal(signal.SIGHUP), before)
