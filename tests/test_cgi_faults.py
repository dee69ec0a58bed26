"""Every way a CGI program can fail: a clear status, one log line naming the
script, no zombies, no leaked descriptors."""

import os
import socket
import time

from twisted.internet import defer, threads
from twisted.trial.unittest import TestCase

from axkit.cgi.slots import SLOTS
from axkit.testing import parse_responses

from .cgi_support import (
    CGI_BIN,
    LogCapture,
    alive,
    base_config,
    children,
    open_fds,
    request,
    serve,
    wait_until,
)
from .rawclient import exchange


class FaultTests(TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.docroot = self.mktemp()
        os.makedirs(self.docroot)
        self.hang_pidfile = os.path.abspath(self.mktemp())
        self.stall_pidfile = os.path.abspath(self.mktemp())
        self.logs = LogCapture()
        self.addCleanup(self.logs.stop)
        self.server = yield serve(
            self,
            base_config(
                self.docroot,
                f"""
            SetEnv HANG_PIDFILE {self.hang_pidfile}
            SetEnv STALL_PIDFILE {self.stall_pidfile}
            <Location /cgi-bin/hang.sh>
                CGITimeout 1
            </Location>
            <Location /cgi-bin/stall.sh>
                CGITimeout 1
            </Location>
        """,
            ),
        )

    def get(self, path, method="GET", **kw):
        return request(self.server.port, method, path, **kw)

    @defer.inlineCallbacks
    def check_fault(self, path, status, script, words):
        response = yield self.get(path)
        self.assertEqual(response.status, status)
        lines = [line for line in self.logs.lines() if script in line and words in line]
        self.assertEqual(len(lines), 1, self.logs.lines())
        return response

    def test_crash_before_head_is_502(self):
        return self.check_fault("/cgi-bin/crash.sh", 502, "crash.sh", "exit status 3")

    @defer.inlineCallbacks
    def test_crash_stderr_goes_to_the_log(self):
        yield self.get("/cgi-bin/crash.sh")
        self.assertIn(f"{CGI_BIN}/crash.sh: about to crash", self.logs.lines())

    def test_garbage_header_is_502(self):
        return self.check_fault("/cgi-bin/garbage.sh", 502, "garbage.sh", "malformed header line")

    def test_invalid_status_is_502(self):
        return self.check_fault("/cgi-bin/badstatus.sh", 502, "badstatus.sh", "invalid Status")

    def test_unfinished_header_block_is_502(self):
        return self.check_fault(
            "/cgi-bin/nohead.sh", 502, "nohead.sh", "ended before the end of its header block"
        )

    def test_missing_script_is_404(self):
        return self.check_fault("/cgi-bin/nope.cgi", 404, "nope.cgi", "no such script")

    def test_not_executable_is_403(self):
        return self.check_fault("/cgi-bin/noexec.sh", 403, "noexec.sh", "not executable")

    def test_directory_is_403(self):
        return self.check_fault("/cgi-bin/sub/", 403, "sub", "is a directory")

    @defer.inlineCallbacks
    def test_directory_without_its_slash_is_redirected(self):
        response = yield self.get("/cgi-bin/sub?x=1")
        self.assertEqual(response.status, 301)
        self.assertEqual(response.header("Location"), "/cgi-bin/sub/?x=1")

    @defer.inlineCallbacks
    def test_hang_is_504_and_the_whole_group_is_killed(self):
        response = yield self.check_fault("/cgi-bin/hang.sh", 504, "hang.sh", "CGITimeout")
        self.assertIn(b"504", response.body)
        with open(self.hang_pidfile) as f:
            background = int(f.read())
        # The script's own child (same process group) dies too.
        gone = yield wait_until(lambda: not alive(background), timeout=5)
        self.assertTrue(gone, f"background child {background} survived")

    @defer.inlineCallbacks
    def test_each_program_leads_a_process_group_in_the_servers_session(self):
        # Its own group: what a timeout or a disconnect signals.  The
        # server's session, as under Apache and lighttpd (no setsid).
        response = yield self.get("/cgi-bin/ids.py")
        self.assertEqual(response.status, 200)
        pid, pgid, sid = map(int, response.body.split())
        self.assertEqual(pgid, pid)
        self.assertNotEqual(pgid, os.getpgid(0))
        self.assertEqual(sid, os.getsid(0))

    @defer.inlineCallbacks
    def test_stall_after_head_cuts_the_response(self):
        raw = b"GET /cgi-bin/stall.sh HTTP/1.1\r\nHost: localhost\r\n\r\n"
        data = yield exchange(self.server.port, raw, timeout=10)
        self.assertIn(b"first part\n", data)
        # Cut: no terminating chunk, connection closed.
        self.assertFalse(data.endswith(b"0\r\n\r\n"))
        lines = [
            line for line in self.logs.lines() if "stall.sh" in line and "response cut" in line
        ]
        self.assertEqual(len(lines), 1)

    @defer.inlineCallbacks
    def test_stderr_flood_is_logged_line_by_line_never_in_the_response(self):
        response = yield self.get("/cgi-bin/flood.sh")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, b"clean\n")
        # (Logged a batch per reactor turn: the last lines may follow the answer.)

        def noise_lines():
            return [line for line in self.logs.lines() if "flood.sh: noise line" in line]

        yield wait_until(lambda: len(noise_lines()) >= 2000)
        noise = noise_lines()
        self.assertEqual(len(noise), 2000)
        self.assertEqual(noise[0], f"{CGI_BIN}/flood.sh: noise line 0")
        self.assertEqual(noise[-1], f"{CGI_BIN}/flood.sh: noise line 1999")

    @defer.inlineCallbacks
    def test_client_disconnect_terminates_the_script(self):
        def connect_and_leave():
            s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
            s.sendall(b"GET /cgi-bin/stall.sh HTTP/1.1\r\nHost: localhost\r\n\r\n")
            data = b""
            while b"first part" not in data:
                piece = s.recv(4096)
                if not piece:
                    break
                data += piece
            s.close()
            return data

        data = yield threads.deferToThread(connect_and_leave)
        self.assertIn(b"first part", data)
        with open(self.stall_pidfile) as f:
            pid = int(f.read())
        ended = yield wait_until(lambda: not SLOTS.running, timeout=5)
        self.assertTrue(ended)
        self.assertFalse(alive(pid))
        self.assertTrue(
            any("client went away" in line and "stall.sh" in line for line in self.logs.lines())
        )

    @defer.inlineCallbacks
    def test_client_leaving_a_writing_script_leaves_no_zombie_and_frees_its_slot(self):
        # The script fills the pipe faster than the client reads: the
        # server has paused reading its stdout when the client leaves.  The
        # killed script must still be reaped and its slot given back (a
        # stuck slot per disconnect ends in 503 for everyone).
        def connect_and_leave():
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(10)
            s.connect(("127.0.0.1", self.server.port))
            s.sendall(b"GET /cgi-bin/endless.sh HTTP/1.1\r\nHost: localhost\r\n\r\n")
            s.recv(4096)
            import time

            time.sleep(0.3)  # the pipe and the socket buffers fill up
            s.close()

        for _ in range(3):
            yield threads.deferToThread(connect_and_leave)
        settled = yield wait_until(
            lambda: not SLOTS.running and SLOTS.used == 0 and not children(), timeout=8
        )
        self.assertEqual(children(), [])
        self.assertEqual(SLOTS.used, 0)
        self.assertTrue(settled)
        after = yield self.get("/cgi-bin/hello.sh")
        self.assertEqual(after.status, 200)

    @defer.inlineCallbacks
    def test_no_zombies_and_no_leaked_descriptors(self):
        yield self.get("/cgi-bin/hello.sh")  # warm up (thread pool, caches)
        yield wait_until(lambda: not SLOTS.running)
        # The free exec-report pipes are kept on purpose (a bounded number,
        # see axkit.cgi.spawn): not counted as leaks, their bound checked.
        from axkit.cgi import spawn

        def fds():
            return open_fds() - spawn.spare_descriptors()

        fds_before = fds()
        self.assertEqual(children(), [])
        paths = [
            "/cgi-bin/hello.sh",
            "/cgi-bin/crash.sh",
            "/cgi-bin/garbage.sh",
            "/cgi-bin/env.py",
            "/cgi-bin/nph-raw.sh",
            "/cgi-bin/redirect.sh",
            "/cgi-bin/noexec.sh",
            "/cgi-bin/status.sh",
        ] * 3
        results = yield defer.gatherResults([self.get(p) for p in paths])
        self.assertEqual(len(results), len(paths))
        posted = yield self.get("/cgi-bin/echo.pl", "POST", body=b"z" * 200000)
        self.assertEqual(len(posted.body), 200000)
        settled = yield wait_until(
            lambda: not SLOTS.running and not children() and fds() == fds_before, timeout=10
        )
        self.assertEqual(children(), [])
        self.assertEqual(fds(), fds_before)
        self.assertLessEqual(spawn.spare_descriptors(), 2 * spawn.ERRPIPES_KEPT)
        self.assertTrue(settled)

    @defer.inlineCallbacks
    def test_a_finished_run_is_freed_without_the_cycle_collector(self):
        # No reference cycle per request (each kept a Request, its headers
        # and the run alive until the cyclic GC came by): with the collector
        # off, the run is gone once its process has ended.
        import gc
        import weakref

        from axkit.cgi import run as cgi_run

        runs = []
        original = cgi_run.CGIRun.__init__

        def recording(run, *args, **kw):
            original(run, *args, **kw)
            runs.append(weakref.ref(run))

        self.patch(cgi_run.CGIRun, "__init__", recording)
        yield self.get("/cgi-bin/hello.sh")  # warm up
        yield wait_until(lambda: not SLOTS.running)
        gc.collect()
        del runs[:]
        gc.disable()
        self.addCleanup(gc.enable)
        for path in ("/cgi-bin/hello.sh", "/cgi-bin/stream.sh", "/cgi-bin/crash.sh"):
            response = yield self.get(path)
            self.assertIn(response.status, (200, 502))
        settled = yield wait_until(lambda: not SLOTS.running, timeout=10)
        self.assertTrue(settled)
        self.assertEqual(len(runs), 3)
        self.assertEqual([ref() for ref in runs], [None, None, None])

    @defer.inlineCallbacks
    def test_a_program_running_on_after_closing_its_pipes_is_reaped(self):
        response = yield self.get("/cgi-bin/detach.sh")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, b"detached\n")
        self.assertTrue(SLOTS.running)  # still running, its answer sent
        settled = yield wait_until(lambda: not SLOTS.running and not children(), timeout=5)
        self.assertTrue(settled)
        self.assertEqual(children(), [])

    @defer.inlineCallbacks
    def test_a_pipe_held_outside_the_group_does_not_hold_the_slot(self):
        # escape.sh leaves `setsid sleep 30` holding its stdout: killing the
        # group cannot end it.  After CGITimeout and the kill, the server
        # stops waiting for that pipe: the run ends, its slot is free, no
        # zombie is left.
        pidfile = os.path.abspath(self.mktemp())
        self.addCleanup(_kill_pidfile, pidfile)
        docroot = self.mktemp()
        os.makedirs(docroot)
        logs = LogCapture()
        self.addCleanup(logs.stop)
        server = yield serve(
            self,
            base_config(
                docroot,
                f"""
            SetEnv ESCAPE_PIDFILE {pidfile}
            <Location /cgi-bin/escape.sh>
                CGITimeout 1
            </Location>
        """,
            ),
        )
        data = yield exchange(
            server.port, b"GET /cgi-bin/escape.sh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        self.assertIn(b"parent done", data)
        settled = yield wait_until(lambda: not SLOTS.running, timeout=15)
        self.assertTrue(settled)
        self.assertEqual(children(), [])
        self.assertTrue(
            any("escape.sh" in line and "left the group" in line for line in logs.lines())
        )


def _kill_pidfile(pidfile):
    import signal

    try:
        with open(pidfile) as f:
            os.kill(int(f.read()), signal.SIGKILL)
    except (OSError, ValueError):
        pass


class CapTests(TestCase):
    @defer.inlineCallbacks
    def test_cap_on_concurrent_processes_answers_503_with_retry_after(self):
        docroot = self.mktemp()
        os.makedirs(docroot)
        logs = LogCapture()
        self.addCleanup(logs.stop)
        server = yield serve(
            self,
            "CGIMaxProcesses 1\n"
            + base_config(
                docroot,
                """
            <Location /cgi-bin/hang.sh>
                CGITimeout 1
            </Location>
        """,
            ),
        )
        hanging = request(server.port, "GET", "/cgi-bin/hang.sh")
        yield wait_until(lambda: SLOTS.running)
        refused = yield request(server.port, "GET", "/cgi-bin/hello.sh")
        self.assertEqual(refused.status, 503)
        self.assertEqual(refused.header("Retry-After"), "1")
        self.assertTrue(any("CGIMaxProcesses (1) reached" in line for line in logs.lines()))
        self.assertEqual((yield hanging).status, 504)
        yield wait_until(lambda: not SLOTS.running)
        again = yield request(server.port, "GET", "/cgi-bin/hello.sh")
        self.assertEqual(again.status, 200)


class CapGraceTests(TestCase):
    @defer.inlineCallbacks
    def test_a_program_finishing_its_exit_does_not_turn_the_next_client_away(self):
        # The answer is complete when the program closes its output, but
        # the process holds its slot until it has exited and been reaped: a
        # client as fast as ab's next request must wait for it (briefly),
        # not get a 503, when no more clients than CGIMaxProcesses are busy.
        docroot = self.mktemp()
        os.makedirs(docroot)
        server = yield serve(self, "CGIMaxProcesses 1\n" + base_config(docroot))
        for _ in range(3):
            first = yield request(server.port, "GET", "/cgi-bin/linger.sh")
            self.assertEqual(first.status, 200)
            self.assertTrue(SLOTS.running)  # still exiting
            second = yield request(server.port, "GET", "/cgi-bin/hello.sh")
            self.assertEqual(second.status, 200)
            yield wait_until(lambda: not SLOTS.running)


class ExecFailureTests(TestCase):
    """A program that passes the checks but whose exec fails: the child's
    report of why reaches the log, and the client a 403 or 502."""

    @defer.inlineCallbacks
    def setUp(self):
        docroot = self.mktemp()
        os.makedirs(docroot)
        self.logs = LogCapture()
        self.addCleanup(self.logs.stop)
        self.server = yield serve(self, base_config(docroot))

    def get(self, path):
        return request(self.server.port, "GET", path)

    @defer.inlineCallbacks
    def check(self, path, status, words):
        response = yield self.get(path)
        self.assertEqual(response.status, status)
        script = path.rsplit("/", 1)[1]
        lines = [
            line for line in self.logs.lines() if script in line and "cannot be started" in line
        ]
        self.assertEqual(len(lines), 1, self.logs.lines())
        self.assertIn(words, lines[0])
        self.assertIn(f"-> {status}", lines[0])

    def test_missing_interpreter_is_502(self):
        return self.check("/cgi-bin/badinterp.sh", 502, "No such file or directory")

    def test_interpreter_not_executable_is_403(self):
        return self.check("/cgi-bin/interp-noexec.sh", 403, "Permission denied")

    @defer.inlineCallbacks
    def test_programs_still_run_after_failed_execs(self):
        yield self.get("/cgi-bin/badinterp.sh")
        response = yield self.get("/cgi-bin/hello.sh")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, b"Hello, world!\n")
        settled = yield wait_until(lambda: not SLOTS.running and not children())
        self.assertTrue(settled)


class PopenFallbackTests(ExecFailureTests):
    """The same through subprocess.Popen, used where CPython's helper has
    another signature than the ones axkit.cgi.spawn knows."""

    def setUp(self):
        from axkit.cgi import spawn

        self.patch(spawn, "_fork_exec", None)
        return ExecFailureTests.setUp(self)


class HalfCloseTests(TestCase):
    """A client's FIN is not a client gone: a half-closed client (nc -N)
    still reading gets the program's answer; a client really gone is found
    by the first write, or -- for a silent program -- the program is ended
    HALF_CLOSED_GRACE after the FIN instead of at CGITimeout."""

    @defer.inlineCallbacks
    def setUp(self):
        self.docroot = self.mktemp()
        os.makedirs(self.docroot)
        self.hang_pidfile = os.path.abspath(self.mktemp())
        self.logs = LogCapture()
        self.addCleanup(self.logs.stop)
        self.server = yield serve(
            self,
            base_config(
                self.docroot,
                f"""
            SetEnv HANG_PIDFILE {self.hang_pidfile}
            <Location /cgi-bin/>
                CGITimeout 60
            </Location>
        """,
            ),
        )

    def send(self, data, half_close):
        if half_close:
            from tests.rawclient import send_then_half_close

            return send_then_half_close(self.server.port, data)
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        try:
            s.sendall(data)
            return b""
        finally:
            s.close()

    @defer.inlineCallbacks
    def test_a_half_closed_client_gets_the_answer(self):
        data = yield threads.deferToThread(
            self.send,
            b"GET /cgi-bin/hello.sh HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /cgi-bin/slow.sh HTTP/1.1\r\nHost: x\r\n\r\n",
            True,
        )
        responses = parse_responses(data, ["GET", "GET"])
        self.assertEqual([r.status for r in responses], [200, 200])
        self.assertEqual(responses[0].body, b"Hello, world!\n")
        self.assertEqual(responses[1].body, b"slow but sure\n")

    @defer.inlineCallbacks
    def test_a_silent_program_of_a_client_gone_ends_soon(self):
        from axkit.cgi.timeouts import HALF_CLOSED_GRACE

        started = time.monotonic()
        yield threads.deferToThread(
            self.send, b"GET /cgi-bin/hang.sh HTTP/1.1\r\nHost: x\r\n\r\n", False
        )
        yield wait_until(
            lambda: os.path.exists(self.hang_pidfile) and os.path.getsize(self.hang_pidfile)
        )
        with open(self.hang_pidfile) as f:
            grandchild = int(f.read())
        ended = yield wait_until(lambda: not SLOTS.running, timeout=HALF_CLOSED_GRACE + 5)
        self.assertTrue(ended)
        # Well before CGITimeout (60 s), the program and its child are gone.
        self.assertLess(time.monotonic() - started, 30)
        yield wait_until(lambda: not alive(grandchild), timeout=5)
        self.assertFalse(alive(grandchild))
        self.assertTrue(
            any("client went away" in line and "hang.sh" in line for line in self.logs.lines())
        )


class EngineAnswersTests(TestCase):
    @defer.inlineCallbacks
    def test_a_program_is_ended_when_the_server_answers_in_its_place(self):
        # The client stops sending its body: RequestBodyTimeout answers 408.
        # The program (never reading, never answering) must not be left
        # waiting for the rest of its stdin until CGITimeout.
        docroot = self.mktemp()
        os.makedirs(docroot)
        logs = LogCapture()
        self.addCleanup(logs.stop)
        server = yield serve(
            self,
            "RequestBodyTimeout 1\n"
            + base_config(
                docroot,
                """
            <Location /cgi-bin/>
                CGITimeout 60
            </Location>
        """,
            ),
        )

        started = time.monotonic()
        data = yield exchange(
            server.port,
            b"POST /cgi-bin/hang.sh HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly ten b",
            timeout=10,
            strict=True,
        )
        [response] = parse_responses(data, ["POST"])
        self.assertEqual(response.status, 408)
        ended = yield wait_until(lambda: not SLOTS.running, timeout=10)
        self.assertTrue(ended)
        self.assertLess(time.monotonic() - started, 30)  # not CGITimeout's 60 s
        self.assertTrue(
            any(
                "hang.sh" in line and "answered the request itself" in line for line in logs.lines()
            )
        )
        self.assertFalse(any("hang.sh" in line and "CGITimeout" in line for line in logs.lines()))


class ShutdownTests(TestCase):
    def test_a_program_ignoring_sigterm_does_not_outlive_the_server(self):
        # The server's SIGTERM: after the drain, programs get SIGTERM, then
        # SIGKILL -- which the stopping reactor's timer could never send.
        import signal
        import tempfile

        from axkit.testing import TwistdProcess

        folder = tempfile.mkdtemp()
        self.addCleanup(__import__("shutil").rmtree, folder, True)
        pidfile = os.path.join(folder, "noterm.pid")
        self.addCleanup(_kill_pidfile, pidfile)
        path = os.path.join(folder, "site.conf")
        with open(path, "w") as f:
            f.write(
                f"Listen tcp:0:interface=127.0.0.1\nDocumentRoot {folder}\n"
                f"GracefulShutdownTimeout 1\n"
                f"Plugin axkit.plugins.cgi.CGI\nScriptAlias /cgi-bin/ {CGI_BIN}/\n"
                f"SetEnv NOTERM_PIDFILE {pidfile}\n"
            )
        server = TwistdProcess(path)
        self.addCleanup(server.stop)
        client = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        self.addCleanup(client.close)
        client.sendall(b"GET /cgi-bin/noterm.py HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
            os.path.exists(pidfile) and os.path.getsize(pidfile)
        ):
            time.sleep(0.05)
        with open(pidfile) as f:
            pid = int(f.read())
        self.assertTrue(alive(pid))
        server.signal(signal.SIGTERM)
        server.process.wait(30)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.05)
        self.assertFalse(alive(pid), server.output())


class HeadTests(TestCase):
    @defer.inlineCallbacks
    def test_head_of_an_endless_program_ends_it(self):
        # The head is all a HEAD gets: the program's output is not read and
        # dropped for as long as the client keeps its connection open.
        docroot = self.mktemp()
        os.makedirs(docroot)
        server = yield serve(
            self,
            base_config(
                docroot,
                """
            <Location /cgi-bin/>
                CGITimeout 60
            </Location>
        """,
            ),
        )
        client = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        self.addCleanup(client.close)
        client.sendall(b"HEAD /cgi-bin/endless.sh HTTP/1.1\r\nHost: x\r\n\r\n")
        data = yield threads.deferToThread(client.recv, 65536)
        self.assertTrue(data.startswith(b"HTTP/1.1 200 OK\r\n"), data)
        self.assertTrue(data.endswith(b"\r\n\r\n"), data)
        # The connection stays open (keep-alive), the program is gone.
        ended = yield wait_until(lambda: not SLOTS.running, timeout=10)
        self.assertTrue(ended)
        client.sendall(b"GET /cgi-bin/hello.sh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        rest = yield threads.deferToThread(client.recv, 65536)
        self.assertIn(b"Hello, world!", rest)


class StartFailureTests(TestCase):
    @defer.inlineCallbacks
    def test_a_failure_before_the_program_starts_frees_its_slot(self):
        # A bug while preparing a run (here: building the environment) is
        # a 500 -- and the CGIMaxProcesses slot taken for it is given back.
        from axkit.plugins import cgi as cgi_plugin

        def broken(*args, **kw):
            raise RuntimeError("environment broken for the test")

        self.patch(cgi_plugin, "build_environ", broken)
        docroot = self.mktemp()
        os.makedirs(docroot)
        server = yield serve(self, "CGIMaxProcesses 1\n" + base_config(docroot))
        for raw in (
            b"GET /cgi-bin/hello.sh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"POST /cgi-bin/echo.pl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        ):
            data = yield exchange(server.port, raw)
            [response] = parse_responses(data, ["GET"])
            self.assertEqual(response.status, 500)
            self.assertEqual(SLOTS.used, 0)
        self.flushLoggedErrors(RuntimeError)
