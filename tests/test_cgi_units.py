"""The CGI pieces on their own: header block parsing, mapping, environment."""

import os

from twisted.trial.unittest import SynchronousTestCase

from axkit.cgi.environ import search_argv
from axkit.cgi.mapping import Refused, match_alias, resolve_alias
from axkit.cgi.response import BadHead, find_head_end, nph_status, parse_head

from .cgi_support import CGI_BIN


class HeadTests(SynchronousTestCase):
    def test_end_of_head_with_crlf_lf_or_mixed(self):
        self.assertEqual(find_head_end(b"A: 1\r\n\r\nbody"), (6, 8))
        self.assertEqual(find_head_end(b"A: 1\n\nbody"), (5, 6))
        self.assertEqual(find_head_end(b"A: 1\r\n\nbody"), (6, 7))
        self.assertEqual(find_head_end(b"\nbody"), (0, 1))
        self.assertIsNone(find_head_end(b"A: 1\r\nB: 2\r\n"))

    def test_document_response(self):
        head = parse_head(b"Content-Type: text/plain\r\nX-A: b")
        self.assertEqual(head.status, 200)
        self.assertEqual(list(head.headers), [("Content-Type", "text/plain"), ("X-A", "b")])
        self.assertFalse(head.local_redirect)

    def test_status_forms(self):
        self.assertEqual(parse_head(b"Status: 404").status, 404)
        head = parse_head(b"Status: 503 Busy Now")
        self.assertEqual((head.status, head.reason), (503, "Busy Now"))
        for bad in (
            b"Status: 20",
            b"Status: 2000",
            b"Status: abc",
            b"Status: 099",
            b"Status: 100 Continue",
            b"Status: 200\nStatus: 201",
        ):
            self.assertRaises(BadHead, parse_head, bad)

    def test_redirects(self):
        local = parse_head(b"Location: /other?x=1")
        self.assertTrue(local.local_redirect)
        client = parse_head(b"Location: https://example.com/")
        self.assertFalse(client.local_redirect)
        self.assertEqual(client.status, 302)
        # A network-path reference is not a local path.
        self.assertFalse(parse_head(b"Location: //evil.example/").local_redirect)
        kept = parse_head(b"Status: 303\nLocation: /x")
        self.assertFalse(kept.local_redirect)
        self.assertEqual(kept.status, 303)

    def test_malformed_lines(self):
        for bad in (
            b"no colon here",
            b"Bad Name: x",
            b": empty name",
            b" leading continuation",
            b"X: a\x01b",
            b"Content-Length: -1",
            b"Content-Length: 1\nContent-Length: 2",
            b"Content-Length: 99999999999999999999999",
        ):
            self.assertRaises(BadHead, parse_head, bad)

    def test_folded_value_is_joined(self):
        head = parse_head(b"X-Long: one\n two")
        self.assertEqual(list(head.headers), [("X-Long", "one two")])

    def test_framing_fields_are_the_servers(self):
        head = parse_head(
            b"Content-Length: 5\nTransfer-Encoding: chunked\n"
            b"Connection: keep-alive\nDate: x\nServer: y\nX-Ok: 1"
        )
        self.assertEqual(head.content_length, 5)
        self.assertEqual(list(head.headers), [("X-Ok", "1")])

    def test_a_head_seen_again_is_parsed_once_and_cannot_be_changed(self):
        from axkit.cgi import response

        block = b"Content-Type: text/x-once\r\nX-Seen: 1"
        first = parse_head(block)
        self.assertIs(response._HEADS.get(block), first)
        self.assertIs(parse_head(block), first)
        self.assertIsInstance(first.headers, tuple)
        # A malformed head is refused every time, never remembered.
        self.assertRaises(BadHead, parse_head, b"no colon")
        self.assertRaises(BadHead, parse_head, b"no colon")
        self.assertNotIn(b"no colon", response._HEADS)

    def test_nph_status(self):
        self.assertEqual(nph_status(b"HTTP/1.0 404 Not Found\r\n"), 404)
        self.assertIsNone(nph_status(b"garbage"))


class MappingTests(SynchronousTestCase):
    def test_longest_alias_wins_on_segment_boundaries(self):
        aliases = [("/cgi-bin/", "/a"), ("/cgi-bin/special/", "/b"), ("/app", "/c")]
        self.assertEqual(match_alias(aliases, "/cgi-bin/special/x"), ("/cgi-bin/special/", "/b"))
        self.assertEqual(match_alias(aliases, "/cgi-bin/x"), ("/cgi-bin/", "/a"))
        self.assertEqual(match_alias(aliases, "/app/x"), ("/app", "/c"))
        self.assertEqual(match_alias(aliases, "/app"), ("/app", "/c"))
        self.assertIsNone(match_alias(aliases, "/apple"))
        self.assertIsNone(match_alias(aliases, "/cgi-bin"))

    def test_walk_to_the_script(self):
        t = resolve_alias("/cgi-bin/", CGI_BIN, "/cgi-bin/sub/deep.sh/x/y")
        self.assertEqual(t.script, os.path.join(CGI_BIN, "sub", "deep.sh"))
        self.assertEqual(t.script_name, "/cgi-bin/sub/deep.sh")
        self.assertEqual(t.path_info, "/x/y")

    def test_refusals(self):
        e = self.assertRaises(Refused, resolve_alias, "/cgi-bin/", CGI_BIN, "/cgi-bin/nope")
        self.assertEqual(e.status, 404)
        e = self.assertRaises(Refused, resolve_alias, "/cgi-bin/", CGI_BIN, "/cgi-bin/plain.txt")
        self.assertEqual(e.status, 403)
        # A folder without its slash is sent to its slashed URL (Apache's
        # mod_dir, lighttpd), which is refused in its turn.
        e = self.assertRaises(Refused, resolve_alias, "/cgi-bin/", CGI_BIN, "/cgi-bin/sub")
        self.assertEqual(e.status, 301)
        e = self.assertRaises(Refused, resolve_alias, "/cgi-bin/", CGI_BIN, "/cgi-bin/sub/")
        self.assertEqual(e.status, 403)
        e = self.assertRaises(
            Refused, resolve_alias, "/cgi-bin/", CGI_BIN, "/cgi-bin/hello.sh.missing/x"
        )
        self.assertEqual(e.status, 404)
        e = self.assertRaises(Refused, resolve_alias, "/cgi-bin/", CGI_BIN, "/cgi-bin/")
        self.assertEqual((e.status, e.why), (403, "is a directory, not a script"))
        missing = os.path.join(CGI_BIN, "no-such-folder")
        for path in ("/gone/x", "/gone/"):
            e = self.assertRaises(Refused, resolve_alias, "/gone/", missing, path)
            self.assertEqual((e.status, e.why), (404, "ScriptAlias target does not exist"))

    def test_single_program_mount(self):
        program = os.path.join(CGI_BIN, "hello.sh")
        for path, info in (("/app", ""), ("/app/", "/"), ("/app/x/y", "/x/y")):
            t = resolve_alias("/app", program, path)
            self.assertEqual((t.script, t.script_name, t.path_info), (program, "/app", info))
        e = self.assertRaises(
            Refused, resolve_alias, "/app", os.path.join(CGI_BIN, "plain.txt"), "/app/x"
        )
        self.assertEqual((e.status, e.why), (403, "not executable"))


class ArgvTests(SynchronousTestCase):
    def test_search_words(self):
        self.assertEqual(search_argv("a+b%2Bc"), ["a", "b+c"])
        self.assertEqual(search_argv("a=1"), [])
        self.assertEqual(search_argv(""), [])
        self.assertEqual(search_argv(None), [])


class _Request:
    """Just what build_environ reads."""

    def __init__(self, **kw):
        from axkit.http.headers import Headers

        self.connection_notes = {}
        self.local_address = ("::1", 8443)
        self.headers = Headers(kw.pop("headers", [("host", "[::1]:8443")]))
        self.query = None
        self.client_address = "::1"
        self.client_port = 50000
        self.user = None
        self.auth_type = None
        self.method = "GET"
        self.target = "/x"
        self.version = "1.1"
        self.secure = False
        self.server = None
        self.__dict__.update(kw)


class _Conf:
    cgi_path = "/bin"
    document_root = "/srv/www"
    pass_env = ()
    set_env = {}
    unset_env = ()
    cgi_pass_auth = False


class EnvironTests(SynchronousTestCase):
    def env(self, **kw):
        from axkit.cgi.environ import ScopeEnv, build_environ

        return build_environ(
            _Request(**kw), ScopeEnv(_Conf()), "/srv/cgi/x.cgi", "/cgi-bin/x.cgi", ""
        )

    def test_tls_sets_https_and_scheme(self):
        env = self.env(secure=True)
        self.assertEqual(env["HTTPS"], "on")
        self.assertEqual(env["REQUEST_SCHEME"], "https")

    def test_authenticated_user_and_type(self):
        env = self.env(user="alice", auth_type="Basic")
        self.assertEqual(env["REMOTE_USER"], "alice")
        self.assertEqual(env["AUTH_TYPE"], "Basic")

    def test_ipv6_host_and_addresses(self):
        env = self.env()
        self.assertEqual(env["SERVER_NAME"], "[::1]")
        self.assertEqual(env["SERVER_ADDR"], "::1")
        self.assertEqual(env["SERVER_PORT"], "8443")
        self.assertEqual(env["REMOTE_ADDR"], "::1")
        self.assertEqual(env["PATH"], "/bin")

    def test_server_name_is_the_host_lower_cased_without_its_dot(self):
        env = self.env(headers=[("host", "WWW.Example.COM.:8080")])
        self.assertEqual(env["SERVER_NAME"], "www.example.com")
        self.assertEqual(env["HTTP_HOST"], "WWW.Example.COM.:8080")

    def test_no_host_header_falls_back_to_the_local_address(self):
        env = self.env(headers=[])
        self.assertEqual(env["SERVER_NAME"], "::1")


class _RecordingProcess:
    """A GroupProcess and its protocol in one, recording what the pipe says."""

    def __init__(self):
        self.events = []
        self.proto = self

    def childDataReceived(self, name, data):
        self.events.append(("output", name, data, False))

    def childDataEnding(self, name, data):
        self.events.append(("output", name, data, True))

    def _pipe_closed(self, name):
        self.events.append(("closed", name))


class _NoPoller:
    """A poller that watches nothing."""

    class epoll:
        @staticmethod
        def register(fd, events):
            pass

        @staticmethod
        def unregister(fd):
            pass

    class reactor:
        @staticmethod
        def addReader(reader):
            pass

        @staticmethod
        def removeReader(reader):
            pass

    def __init__(self):
        self.pipes = {}

    def watch(self, pipe):
        self.pipes[pipe.fd] = pipe

    def unwatch(self, fd):
        self.pipes.pop(fd, None)


class OutPipeTests(SynchronousTestCase):
    """The reader of a program's stdout/stderr tells output that ends the
    pipe (its writer closed) from output that may be followed by more."""

    def pipe(self):
        from axkit.cgi.process import _OutPipe

        r, w = os.pipe()
        proc = _RecordingProcess()
        reader = _OutPipe(_NoPoller(), proc, 1, r)
        self.addCleanup(lambda: reader.fd >= 0 and os.close(reader.fd))
        return reader, proc, w

    def test_output_with_its_end_in_one_read_is_the_last(self):
        reader, proc, w = self.pipe()
        os.write(w, b"all of it")
        os.close(w)
        reader.doRead()
        self.assertEqual(proc.events, [("output", 1, b"all of it", True), ("closed", 1)])
        self.assertEqual(reader.fd, -1)

    def test_without_hangup_a_short_read_does_not_look_for_the_end(self):
        # The poller saw the writer open (EPOLLIN alone): no second read;
        # the end of file is the next event's.
        import select

        reader, proc, w = self.pipe()
        os.write(w, b"part")
        os.close(w)
        reader.doRead(select.EPOLLIN)
        self.assertEqual(proc.events, [("output", 1, b"part", False)])
        reader.doRead(select.EPOLLIN | select.EPOLLHUP)
        self.assertEqual(proc.events, [("output", 1, b"part", False), ("closed", 1)])

    def test_output_while_the_writer_is_open_is_not_the_last(self):
        reader, proc, w = self.pipe()
        self.addCleanup(os.close, w)
        os.write(w, b"part")
        reader.doRead()
        self.assertEqual(proc.events, [("output", 1, b"part", False)])
        reader.doRead()  # nothing more yet: no event
        self.assertEqual(len(proc.events), 1)

    def test_end_of_file_alone(self):
        reader, proc, w = self.pipe()
        os.close(w)
        reader.doRead()
        self.assertEqual(proc.events, [("closed", 1)])


class FeedOutput:
    """A response plugin that drives a CGIRun with canned program output, as
    the pipe reader would: ?whole = output and its end in one read; ?soon =
    the output, then the end of the pipe at once (within HOLD); ?more = the
    output, then more output within HOLD, then the end; else the output,
    and the end of the pipe after HOLD has passed (on the site's clock)."""

    name = "feed_output"
    OUTPUT = {
        "/plain": b"Content-Type: text/plain\r\n\r\nHello, world!\n",
        "/length": b"Content-Length: 5\nContent-Type: text/plain\n\nhello",
        "/short": b"Content-Length: 9\nContent-Type: text/plain\n\nhello",
        "/status": b"Status: 404 Nowhere\nContent-Type: text/plain\n\ngone\n",
        "/empty": b"Status: 204\n\n",
        # What fossil and php-cgi write for a HEAD: a head and no body.
        "/headonly": b"Content-Length: 94\nContent-Type: text/html\n\n",
        "/nolength": b"Content-Type: text/html\n\n",
        # A 304 may give the representation's length, and has no body.
        "/notmod": b'Status: 304\nETag: "a"\nContent-Length: 1234\n\n',
        "/hugehead": b"X-Big: " + b"a" * 70000 + b"\n\nbody",
        "/superscript": b"Content-Type: text/plain\nContent-Length: \xb2\n\nab",
    }

    def hook_response(self, request, conf):
        from axkit.cgi.holds import HOLD
        from axkit.cgi.run import CGIRun
        from axkit.hooks import OK

        clock = request.reactor
        run = CGIRun(request, "/srv/x.cgi", ["/srv/x.cgi"], {}, 60.0, reactor=clock)
        output = self.OUTPUT[request.path]
        if request.query == "whole":
            run.childDataEnding(1, output)
            run.childConnectionLost(1)
        elif request.query == "soon":
            run.childDataReceived(1, output)
            run.childConnectionLost(1)
        elif request.query == "more":
            run.childDataReceived(1, output)
            run.childDataReceived(1, b"more\n")
            clock.callLater(HOLD * 2, run.childConnectionLost, 1)
        else:
            run.childDataReceived(1, output)
            clock.callLater(HOLD * 2, run.childConnectionLost, 1)
        return OK


class WholeOutputTests(SynchronousTestCase):
    """A program's whole output seen at once leaves as one response with a
    Content-Length; output seen before its end is streamed chunked."""

    def setUp(self):
        from axkit.testing import MemorySite

        self.site = MemorySite("Plugin tests.test_cgi_units.FeedOutput\n")

    def get(self, path, method="GET"):
        conn = self.site.connect()
        conn.request(method, path)
        [response] = self.site.wait_for(conn)
        return conn, response

    def test_whole_output_gets_a_content_length_in_one_write(self):
        conn, response = self.get("/plain?whole")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.header("Content-Length"), "14")
        self.assertIsNone(response.header("Transfer-Encoding"))
        self.assertEqual(response.body, b"Hello, world!\n")
        self.assertFalse(conn.closed)

    def test_output_before_its_end_is_chunked(self):
        conn, response = self.get("/plain")
        self.assertEqual(response.header("Transfer-Encoding"), "chunked")
        self.assertIsNone(response.header("Content-Length"))
        self.assertEqual(response.body, b"Hello, world!\n")

    def test_output_held_until_its_end_goes_whole(self):
        # The end of the pipe within HOLD of a short first output: one write.
        conn = self.site.connect()
        conn.request("GET", "/plain?soon")
        [response] = conn.responses()
        self.assertEqual(response.header("Content-Length"), "14")
        self.assertIsNone(response.header("Transfer-Encoding"))
        self.assertEqual(response.body, b"Hello, world!\n")
        # (and nothing is held any more: the shared timer is gone)
        from axkit.cgi.holds import _holds

        holds = _holds(self.site.clock)
        self.assertEqual((holds.active, len(holds.queue), holds.timer), (0, 0, None))
        self.assertEqual(
            [c for c in self.site.clock.getDelayedCalls() if c.func.__name__ == "_due"], []
        )

    def test_a_held_head_is_not_sent_before_hold_passes_or_more_comes(self):
        conn = self.site.connect()
        conn.request("GET", "/plain")
        self.assertEqual(conn.transport.value(), b"")
        from axkit.cgi.holds import HOLD

        self.site.advance(HOLD)
        self.assertIn(b"Transfer-Encoding: chunked", conn.transport.value())

    def test_more_output_within_hold_streams_at_once(self):
        conn = self.site.connect()
        conn.request("GET", "/plain?more")
        raw = conn.transport.value()
        self.assertIn(b"Transfer-Encoding: chunked", raw)
        self.assertIn(b"Hello, world!\n", raw)
        self.assertIn(b"more\n", raw)
        [response] = self.site.wait_for(conn)
        self.assertEqual(response.body, b"Hello, world!\nmore\n")

    def test_head_request_gets_the_length_and_no_body(self):
        conn, response = self.get("/plain?whole", "HEAD")
        self.assertEqual(response.header("Content-Length"), "14")
        self.assertEqual(response.body, b"")
        self.assertTrue(conn.transport.value().endswith(b"\r\n\r\n"))

    def test_head_answered_without_a_body_keeps_the_programs_length(self):
        errors = self.errors()
        for query in ("whole", "soon", ""):
            conn, response = self.get("/headonly?" + query, "HEAD")
            self.assertEqual(response.header("Content-Length"), "94")
            self.assertEqual(response.body, b"")
            self.assertFalse(conn.closed)
        self.assertEqual(errors, [])

    def test_head_answered_without_a_body_or_length_claims_no_length(self):
        # Not Content-Length: 0 -- the GET's body is not empty.
        for query in ("whole", "soon", ""):
            conn, response = self.get("/nolength?" + query, "HEAD")
            self.assertEqual(response.status, 200)
            self.assertIsNone(response.header("Content-Length"))
            self.assertIsNone(response.header("Transfer-Encoding"))
            self.assertFalse(conn.closed)
            self.assertTrue(conn.transport.value().endswith(b"\r\n\r\n"))

    def errors(self):
        from twisted.logger import globalLogPublisher

        errors = []

        def observer(event):
            if event.get("log_level").name in ("error", "critical"):
                errors.append(event)

        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        return errors

    def test_a_304_with_a_length_is_no_fault(self):
        errors = self.errors()
        for query in ("whole", "soon", ""):
            conn, response = self.get("/notmod?" + query)
            self.assertEqual(response.status, 304)
            self.assertIsNone(response.header("Content-Length"))
            self.assertFalse(conn.closed)
        self.assertEqual(errors, [])

    def test_a_head_block_over_the_limit_is_502_however_it_was_read(self):
        _, response = self.get("/hugehead?whole")
        self.assertEqual(response.status, 502)

    def test_a_content_length_of_non_ascii_digits_is_502_not_a_crash(self):
        errors = self.errors()
        _, response = self.get("/superscript?whole")
        self.assertEqual(response.status, 502)
        self.assertEqual([e.get("log_level").name for e in errors], ["error"])
        self.assertIn("invalid Content-Length", errors[0]["what"])

    def test_the_programs_own_length_and_status(self):
        _, response = self.get("/length?whole")
        self.assertEqual(response.header("Content-Length"), "5")
        self.assertEqual(response.body, b"hello")
        _, response = self.get("/status?whole")
        self.assertEqual((response.status, response.reason), (404, "Nowhere"))
        self.assertEqual(response.body, b"gone\n")
        _, response = self.get("/empty?whole")
        self.assertEqual(response.status, 204)
        self.assertIsNone(response.header("Content-Length"))

    def test_output_short_of_its_content_length_still_closes_the_connection(self):
        # Not the one-write path (the lengths differ): the client must see
        # the response cut short, not a complete one.
        conn = self.site.connect()
        conn.request("GET", "/short?whole")
        self.assertEqual(conn.responses(), [])
        raw = conn.transport.value()
        self.assertIn(b"Content-Length: 9\r\n", raw)
        self.assertTrue(raw.endswith(b"\r\n\r\nhello"))
        self.assertTrue(conn.closed)


class WatchLoss:
    """A response plugin recording Request.when_lost calls: /hold answers
    nothing (until the connection goes), anything else answers at once."""

    name = "watch_loss"
    lost = []

    def hook_response(self, request, conf):
        from axkit.hooks import OK

        request.when_lost(lambda: self.lost.append(request.path))
        if request.path != "/hold":
            request.send(200, b"ok")
        return OK


class WhenLostTests(SynchronousTestCase):
    """Request.when_lost: a callable run only when the response ends aborted."""

    def setUp(self):
        from axkit.testing import MemorySite

        self.site = MemorySite("Plugin tests.test_cgi_units.WatchLoss\n")
        self.addCleanup(self.site.close)
        WatchLoss.lost = []

    def test_called_when_the_connection_is_lost_before_the_response(self):
        conn = self.site.connect()
        conn.request("GET", "/hold")
        self.assertEqual(WatchLoss.lost, [])
        conn.lose()
        self.assertEqual(WatchLoss.lost, ["/hold"])

    def test_not_called_for_a_response_that_completes(self):
        conn = self.site.connect()
        conn.request("GET", "/done")
        [response] = conn.responses()
        self.assertEqual(response.body, b"ok")
        conn.lose()
        self.assertEqual(WatchLoss.lost, [])


class ReapRaceTests(SynchronousTestCase):
    """A child that exits between GroupProcess's own waitpid and its
    registration with Twisted's SIGCHLD reaping is reaped by the
    registration (which calls processEnded) -- and the run hears of it."""

    def test_exit_just_before_registration(self):
        import subprocess
        import time

        from axkit.cgi import process, spawn

        child = subprocess.Popen(["true"])
        child._child_created = False  # ours to reap, not Popen's
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until it is a zombie
            with open(f"/proc/{child.pid}/stat") as f:
                if f.read().rpartition(")")[2].split()[0] == "Z":
                    break
            time.sleep(0.01)

        class Run:
            status = None

            def process_over(self, status):
                self.status = status

        run = Run()
        proc = process.GroupProcess.__new__(process.GroupProcess)
        proc.proto, proc.pid, proc._group = run, child.pid, child.pid
        proc.status, proc.lostProcess, proc.pipes, proc._registered = -1, False, {}, False
        real = os.waitpid
        calls = []

        def first_says_running(pid, options):
            calls.append(pid)
            if len(calls) == 1:
                return 0, 0  # "still running" (it exits right after)
            return real(pid, options)

        self.patch(spawn.os, "waitpid", first_says_running)
        self.patch(os, "waitpid", first_says_running)
        proc.reapProcess()  # (every pipe at its end)
        self.assertEqual(run.status, 0)
        self.assertIsNone(proc.pid)
        self.assertEqual(len(calls), 2)


class PollerTests(SynchronousTestCase):
    """The epoll set of the programs' pipes."""

    def test_a_reader_that_fails_is_closed_not_retried_forever(self):
        from twisted.internet.task import Clock

        from axkit.cgi.process import _OutPipe, _Poller

        class Reactor(Clock):
            readers = []

            def addReader(self, reader):
                self.readers.append(reader)

            def removeReader(self, reader):
                self.readers.remove(reader)

        class Failing(_RecordingProcess):
            def childDataReceived(self, name, data):
                raise RuntimeError("boom")

        reactor = Reactor()
        poller = _Poller(reactor)
        self.addCleanup(poller.epoll.close)
        r, w = os.pipe()
        self.addCleanup(os.close, w)
        proc = Failing()
        pipe = _OutPipe(poller, proc, 1, r)
        self.assertEqual(reactor.readers, [poller])
        os.write(w, b"data")
        poller.doRead()
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(pipe.fd, -1)  # closed
        self.assertEqual(proc.events, [("closed", 1)])
        self.assertEqual(poller.pipes, {})
        self.assertEqual(reactor.readers, [])  # nothing left to watch


class SpawnThreadsTests(SynchronousTestCase):
    """Finished spawns go back to the reactor thread; on axkit's reactor a
    busy reactor collects them from its poll hook, without a wake-up."""

    class Reactor:
        def __init__(self, polling):
            self.polling = polling
            self.hooks = []
            self.thread_calls = []

        def add_poll_hook(self, hook):
            self.hooks.append(hook)

        def remove_poll_hook(self, hook):
            self.hooks.remove(hook)

        def callFromThread(self, f, *args):
            self.thread_calls.append(f)

    class Job:
        executable = "job"

        def __init__(self):
            import threading

            self.created = threading.Event()
            self.finished = []

        def create(self):
            self.created.set()
            return 42

        run = create

        def finish(self, reports=None):
            self.finished.append(self.result)

    def run_one(self, reactor):
        import time

        from axkit.cgi.spawn import _SpawnThreads

        pool = _SpawnThreads(reactor, 1)
        self.addCleanup(pool.stop)
        job = self.Job()
        pool.run(job)
        self.assertTrue(job.created.wait(10))
        deadline = time.monotonic() + 10
        while not pool.done and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.01)  # past the wake-up decision
        return pool, job

    def test_a_busy_reactor_is_not_woken_and_collects_from_its_hook(self):
        reactor = self.Reactor(polling=False)
        pool, job = self.run_one(reactor)
        self.assertEqual(reactor.thread_calls, [])
        self.assertEqual(reactor.hooks, [pool._collect])
        self.assertTrue(pool._collect())
        self.assertEqual(job.finished, [42])
        self.assertFalse(pool._collect())

    def test_a_stop_hands_back_what_had_finished(self):
        # Finished while the reactor was busy, not yet collected: the stop
        # (at shutdown) still finishes it (its hook goes with the stop).
        reactor = self.Reactor(polling=False)
        pool, job = self.run_one(reactor)
        self.assertEqual(job.finished, [])
        pool.stop()
        self.assertEqual(job.finished, [42])

    def test_a_polling_reactor_is_woken(self):
        reactor = self.Reactor(polling=True)
        pool, job = self.run_one(reactor)
        self.assertEqual(reactor.thread_calls, [pool._finish])
        pool._finish()
        self.assertEqual(job.finished, [42])

    def test_other_reactors_are_always_woken(self):
        class Plain:
            def __init__(self):
                self.thread_calls = []

            def callFromThread(self, f, *args):
                self.thread_calls.append(f)

        reactor = Plain()
        pool, job = self.run_one(reactor)
        self.assertEqual(reactor.thread_calls, [pool._finish])


class ExecReportTests(SynchronousTestCase):
    """The exec-report pipes are reused because vfork makes a child's report
    complete before the parent goes on; a report from a child that is not
    exiting means the helper used fork, and reuse stops."""

    def job_with_report(self, pid, report):
        from axkit.cgi import spawn

        job = spawn._Job.__new__(spawn._Job)
        job.result, job.executable, job.cwd = pid, b"/x/prog.cgi", "/x"
        r, w = spawn._errpipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        if report:
            os.write(w, report)
        return job, r

    def test_a_report_from_an_exiting_child_is_its_failure(self):
        import subprocess
        import time

        child = subprocess.Popen(["true"])
        child._child_created = False  # ours to reap, not Popen's
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until it is a zombie (it has exited)
            with open(f"/proc/{child.pid}/stat") as f:
                if f.read().rpartition(")")[2].split()[0] == "Z":
                    break
            time.sleep(0.01)
        job, r = self.job_with_report(child.pid, b"OSError:d:noexec")
        error = job._exec_report(r)
        self.assertIsInstance(error, PermissionError)

    def test_a_report_while_the_child_runs_stops_reuse(self):
        import subprocess

        from axkit.cgi import spawn

        child = subprocess.Popen(["sleep", "30"])
        self.addCleanup(child.wait)
        self.addCleanup(child.kill)
        self.patch(spawn, "_REUSE_ERRPIPES", True)
        job, r = self.job_with_report(child.pid, b"OSError:2:")
        self.assertIsNone(job._exec_report(r))
        self.assertFalse(spawn._REUSE_ERRPIPES)

    def test_no_report_is_no_failure(self):
        job, r = self.job_with_report(os.getpid(), b"")
        self.assertIsNone(job._exec_report(r))


class HoldsTests(SynchronousTestCase):
    """Held first outputs share one timer: each is released HOLD after it
    was held, unless its hold ended first; the timer goes once none is held."""

    class Run:
        def __init__(self, log):
            self.log, self.held = log, None

        def hold(self, holds):
            self.held = holds.add(self)

        def _release(self):
            self.held = None
            self.log.append(self)

    def test_each_released_on_time_and_an_early_end_is_not(self):
        from twisted.internet.task import Clock

        from axkit.cgi.holds import HOLD, _Holds

        clock = Clock()
        holds = _Holds(clock)
        released = []
        a, b, c = (self.Run(released) for _ in range(3))
        a.hold(holds)
        clock.advance(HOLD / 2)
        b.hold(holds)
        c.hold(holds)
        self.assertEqual(len(clock.getDelayedCalls()), 1)  # one timer for all
        c.held = None
        holds.done()  # c's end came
        clock.advance(HOLD / 2)
        self.assertEqual(released, [a])
        clock.advance(HOLD / 2)
        self.assertEqual(released, [a, b])
        self.assertEqual((holds.active, clock.getDelayedCalls()), (0, []))

    def test_the_last_early_end_cancels_the_timer(self):
        from twisted.internet.task import Clock

        from axkit.cgi.holds import _Holds

        clock = Clock()
        holds = _Holds(clock)
        run = self.Run([])
        run.hold(holds)
        run.held = None
        holds.done()
        self.assertEqual(clock.getDelayedCalls(), [])


class ReportPipesTests(SynchronousTestCase):
    """One look tells which report pipes hold a report."""

    def test_only_a_pipe_holding_a_report_is_ready(self):
        from axkit.cgi import spawn

        quiet = spawn._errpipe()
        told = spawn._errpipe()
        self.addCleanup(spawn._drop_errpipe, quiet)
        self.addCleanup(spawn._drop_errpipe, told)
        self.assertFalse(spawn._ready_reports())
        os.write(told[1], b"OSError:2:")
        self.assertEqual(set(spawn._ready_reports()), {told[0]})


class _PipeSwitch:
    reading = True

    def startReading(self):
        self.reading = True

    def stopReading(self):
        self.reading = False


class StderrFloodTests(SynchronousTestCase):
    def test_a_flood_is_logged_a_batch_per_turn_with_its_pipe_paused(self):
        import types

        from twisted.internet.task import Clock
        from twisted.logger import globalLogPublisher

        from axkit.cgi.run import CGIRun
        from axkit.cgi.stderr import STDERR_BATCH

        clock = Clock()
        run = CGIRun(None, "/srv/x.cgi", ["/srv/x.cgi"], {}, 60.0, reactor=clock)
        pipe = _PipeSwitch()
        run.process = types.SimpleNamespace(pipes={2: pipe})
        logged = []

        def observer(event):
            if event.get("log_namespace") == "axkit.cgi":
                logged.append(event["line"])

        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        run.childDataReceived(2, b"".join(b"line %d\n" % i for i in range(1000)))
        # One batch now; the rest waits for later turns, the pipe unread.
        self.assertEqual(len(logged), STDERR_BATCH)
        self.assertFalse(pipe.reading)
        run.childDataReceived(2, b"late\n")
        self.assertEqual(len(logged), STDERR_BATCH)
        # (A Clock runs the batches scheduled for the same time at once.)
        clock.advance(0)
        self.assertEqual(logged, [f"line {i}" for i in range(1000)] + ["late"])
        self.assertTrue(pipe.reading)


class _CutRequest:
    """Just what a CGIRun's CGITimeout reads of its request."""

    finished = False
    aborted = False
    notes = {}

    def __init__(self, unsent):
        from twisted.internet.task import Clock

        from axkit.http.deadlines import DeadlineWheel

        self.clock = Clock()
        self.clock.advance(100.0)
        self.wheel = DeadlineWheel(self.clock)
        self.unsent_value = unsent

    def deadline(self, on_expire):
        from axkit.http.timers import Deadline

        return Deadline(self.wheel, self.clock.seconds, on_expire)

    def send_queue(self):
        return self.unsent_value

    def client_read_since(self, mark):
        from axkit.http.sending import drained

        return drained(mark, self.unsent_value)

    def abort(self):
        self.aborted = True

    def unregister_producer(self):
        pass


class SlowReaderTests(SynchronousTestCase):
    """CGITimeout with the program's pipe paused by the client: cut only if
    the client's unread bytes in the kernel did not fall meanwhile (a slow
    reader drains MBs of kernel queue before the transport moves)."""

    def run_paused(self, mark, now_unsent, half_closed=False):
        from twisted.internet.task import Clock

        from axkit.cgi.run import CGIRun
        from axkit.cgi.states import BODY

        request = _CutRequest(now_unsent)
        run = CGIRun(request, "/srv/x.cgi", ["/srv/x.cgi"], {}, 5.0, reactor=Clock())
        run.deadline = request.deadline(run._timed_out)
        run.state = BODY
        run.paused = True
        run.unsent_mark = mark
        run.half_closed = half_closed
        run._timed_out()
        return run, request

    def test_a_reader_draining_the_kernel_queue_gets_more_time(self):
        from axkit.cgi.states import BODY

        run, request = self.run_paused(2_000_000, 1_900_000)
        self.assertEqual(run.state, BODY)
        self.assertFalse(request.aborted)
        self.assertEqual(run.deadline.when, 105.0)
        self.assertEqual(list(request.wheel.buckets), [106])
        self.assertEqual(run.unsent_mark, 1_900_000)

    def test_a_reader_taking_nothing_is_cut(self):
        from axkit.cgi.states import OVER

        run, request = self.run_paused(2_000_000, 2_000_000)
        self.assertEqual(run.state, OVER)
        self.assertTrue(request.aborted)

    def test_a_reader_taking_a_few_bytes_per_timeout_is_cut(self):
        # Holding a connection (and a CGI slot) with a trickle is not reading.
        from axkit.cgi.states import OVER

        run, request = self.run_paused(2_000_000, 1_999_000)
        self.assertEqual(run.state, OVER)
        self.assertTrue(request.aborted)

    def test_a_half_closed_reader_draining_is_not_cut_either(self):
        # (nc -N | a slow pipe: its FIN does not make it a client gone.)
        from axkit.cgi.states import BODY

        run, request = self.run_paused(2_000_000, 1_900_000, half_closed=True)
        self.assertEqual(run.state, BODY)
        self.assertFalse(request.aborted)
