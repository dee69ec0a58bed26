"""Every engine limit: the right status, a log line, and (where the stream
is unusable) a closed connection.  Timeouts run on the fake clock."""

from twisted.internet import defer, reactor, task
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.trial.unittest import SynchronousTestCase, TestCase

from axkit.testing import start_server
from tests.http_support import ECHO_CONFIG, memory_site

H = b"Host: example.com\r\n"


def logged(site, status):
    return [
        e
        for e in site.events
        if e.get("log_namespace") == "axkit.pipeline" and e.get("status") == status
    ]


class SizeLimitTests(SynchronousTestCase):
    def _refused(self, site, payload, status):
        conn = site.connect()
        conn.send(payload)
        [r] = conn.responses()
        self.assertEqual(r.status, status)
        self.assertEqual(r.header("connection"), "close")
        self.assertTrue(conn.closed)
        return r

    def test_request_line_too_long_is_414(self):
        site = memory_site(self, extra="LimitRequestLine 100\n")
        self._refused(site, b"GET /" + b"a" * 200 + b" HTTP/1.1\r\n" + H + b"\r\n", 414)
        self.assertEqual(len(logged(site, 414)), 1)

    def test_request_line_dripped_is_414_before_it_ends(self):
        site = memory_site(self, extra="LimitRequestLine 100\n")
        conn = site.connect()
        conn.send(b"GET /")
        for _ in range(30):
            conn.send(b"aaaaa")
        [r] = conn.responses()
        self.assertEqual(r.status, 414)
        self.assertTrue(conn.closed)

    def test_request_line_at_the_limit_is_fine(self):
        site = memory_site(self, extra="LimitRequestLine 100\n")
        r = site.get("/" + "a" * 99)
        self.assertEqual(r.status, 200)

    def test_one_header_field_too_large_is_431(self):
        site = memory_site(self, extra="LimitRequestFieldSize 100\n")
        self._refused(site, b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"b" * 200 + b"\r\n\r\n", 431)
        self.assertEqual(len(logged(site, 431)), 1)

    def test_header_block_too_large_is_431(self):
        site = memory_site(self, extra="LimitRequestHeaderSize 1000\n")
        fields = b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 50) for i in range(30))
        self._refused(site, b"GET / HTTP/1.1\r\n" + H + fields + b"\r\n", 431)

    def test_one_endless_header_value_is_stopped_while_it_arrives(self):
        # httptools collects a field whole: the raw byte count must stop it.
        site = memory_site(self, extra="LimitRequestHeaderSize 4096\n")
        conn = site.connect()
        conn.send(b"GET / HTTP/1.1\r\n" + H + b"X-Endless: ")
        for _ in range(100):
            if conn.closed:
                break
            conn.send(b"v" * 100)
        [r] = conn.responses()
        self.assertEqual(r.status, 431)
        self.assertTrue(conn.closed)

    def test_too_many_header_fields_is_431(self):
        site = memory_site(self, extra="LimitRequestFields 10\n")
        fields = b"".join(b"X-F%d: v\r\n" % i for i in range(11))
        r = self._refused(site, b"GET / HTTP/1.1\r\n" + H + fields + b"\r\n", 431)
        self.assertIn(b"too many header fields", r.body)

    def test_fields_at_the_count_limit_are_fine(self):
        site = memory_site(self, extra="LimitRequestFields 10\n")
        r = site.get("/", headers=[(f"X-F{i}", "v") for i in range(9)])
        self.assertEqual(r.status, 200)

    def test_content_length_over_the_body_limit_is_413_before_reading(self):
        site = memory_site(self, extra="LimitRequestBody 100\n")
        conn = site.connect()
        conn.send(b"POST /up HTTP/1.1\r\n" + H + b"Content-Length: 101\r\n\r\n")
        [r] = conn.responses()
        self.assertEqual(r.status, 413)
        self.assertEqual(r.header("connection"), "close")
        self.assertTrue(conn.closed)
        self.assertEqual(len(logged(site, 413)), 0)  # a pipeline log line, not an error
        self.assertTrue(any("LimitRequestBody" in (e.get("log_format") or "") for e in site.events))

    def test_chunked_body_over_the_limit_is_413_while_decoding(self):
        site = memory_site(self, extra="LimitRequestBody 100\n")
        conn = site.connect()
        conn.send(b"POST /up HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n")
        conn.send(b"40\r\n" + b"a" * 64 + b"\r\n")
        self.assertEqual(conn.responses(), [])
        conn.send(b"40\r\n" + b"a" * 64 + b"\r\n")
        [r] = conn.responses()
        self.assertEqual(r.status, 413)
        self.assertTrue(conn.closed)
        self.assertEqual(len(logged(site, 413)), 1)

    def test_body_limit_per_location(self):
        site = memory_site(
            self,
            extra="LimitRequestBody 1000\n<Location /small>\nLimitRequestBody 10\n</Location>\n",
        )
        self.assertEqual(site.request("POST", "/big", body=b"x" * 20).status, 200)
        self.assertEqual(site.request("POST", "/small", body=b"x" * 20).status, 413)
        self.assertEqual(site.request("POST", "/small", body=b"x" * 10).status, 200)
        conn = site.connect()
        conn.send(
            b"POST /small HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
            b"b\r\n" + b"x" * 11 + b"\r\n"
        )
        [r] = conn.responses()
        self.assertEqual(r.status, 413)

    def test_location_may_raise_the_body_limit(self):
        site = memory_site(
            self, extra="LimitRequestBody 10\n<Location /big>\nLimitRequestBody 1000\n</Location>\n"
        )
        self.assertEqual(site.request("POST", "/big", body=b"x" * 500).status, 200)
        self.assertEqual(site.request("POST", "/other", body=b"x" * 500).status, 413)


class TimeoutTests(SynchronousTestCase):
    def test_header_deadline_is_not_extended_by_drip_feeding(self):
        site = memory_site(self, extra="RequestHeaderTimeout 10\n")
        conn = site.connect()
        conn.send(b"GET / HTTP/1.1\r\n")
        for i in range(30):
            if conn.closed:
                break
            site.clock.advance(1)
            conn.send(b"X-Drip-%d: v\r\n" % i)
        [r] = conn.responses()
        self.assertEqual(r.status, 408)
        self.assertTrue(conn.closed)
        # 10 s deadline, checked once a second: closed by the 12th second.
        self.assertLessEqual(site.clock.seconds(), 12)
        self.assertEqual(len(logged(site, 408)), 1)

    def test_header_deadline_runs_from_the_first_byte_of_each_request(self):
        site = memory_site(self, extra="RequestHeaderTimeout 10\nKeepAliveTimeout 100\n")
        conn = site.connect()
        conn.request("GET", "/a")
        site.clock.advance(50)  # idle, well past the header deadline
        self.assertFalse(conn.closed)
        conn.send(b"GET /b HTTP/1.1\r\n")
        site.clock.advance(5)
        conn.send(H + b"\r\n")
        self.assertEqual([r.status for r in conn.responses()], [200, 200])
        self.assertFalse(conn.closed)

    def test_silent_fresh_connection_is_closed_without_an_answer(self):
        site = memory_site(self, extra="RequestHeaderTimeout 10\n")
        conn = site.connect()
        site.clock.advance(5)
        self.assertFalse(conn.closed)
        site.clock.advance(7)
        self.assertTrue(conn.closed)
        self.assertEqual(conn.transport.value(), b"")

    def test_keep_alive_idle_timeout(self):
        site = memory_site(self, extra="KeepAliveTimeout 5\n")
        conn = site.connect()
        conn.request("GET", "/a")
        site.clock.advance(3)
        self.assertFalse(conn.closed)
        conn.request("GET", "/b")  # a request moves the idle deadline
        site.clock.advance(4)
        self.assertFalse(conn.closed)
        site.clock.advance(3)
        self.assertTrue(conn.closed)
        self.assertEqual(len(conn.responses()), 2)

    def test_body_timeout_between_pieces(self):
        site = memory_site(self, extra="RequestBodyTimeout 10\n")
        conn = site.connect()
        conn.send(b"POST /up HTTP/1.1\r\n" + H + b"Content-Length: 10\r\n\r\nab")
        for _ in range(3):
            site.clock.advance(8)
            conn.send(b"c")  # each piece moves the deadline
        self.assertFalse(conn.closed)
        site.clock.advance(12)
        [r] = conn.responses()
        self.assertEqual(r.status, 408)
        self.assertTrue(conn.closed)
        self.assertEqual(len(logged(site, 408)), 1)

    def test_no_body_timeout_while_the_server_is_not_reading(self):
        # A pipelined request's body waits behind a slow response: the
        # client is not the slow one.
        from tests import httpplugins

        site = memory_site(self, extra="RequestBodyTimeout 10\nKeepAliveTimeout 100\n")
        conn = site.connect()
        conn.send(
            b"GET /slow HTTP/1.1\r\n" + H + b"\r\n"
            b"POST /up HTTP/1.1\r\n" + H + b"Content-Length: 100000\r\n\r\n" + b"z" * 70000
        )
        site.clock.advance(30)
        self.assertFalse(conn.closed)
        httpplugins.pending.pop().callback(None)
        conn.send(b"z" * 30000)
        self.assertEqual([r.status for r in conn.responses()], [200, 200])

    def late_reader(self):
        """A POST of 300,000 bytes (200,000 sent) to a consumer that starts
        a second late and pauses at each piece (httpplugins.LateReader)."""
        from axkit.testing import MemorySite
        from tests import httpplugins

        site = MemorySite(
            "Plugin tests.httpplugins.LateReader\nRequestBodyTimeout 10\n", route_logs=False
        )
        self.addCleanup(site.close)
        conn = site.connect()
        conn.send(
            b"POST /late HTTP/1.1\r\n" + H + b"Content-Length: 300000\r\n\r\n" + b"z" * 200000
        )
        site.clock.advance(1)
        return site, conn, httpplugins.late_readers.pop()

    def test_no_body_timeout_while_a_late_consumer_has_paused_it(self):
        # The consumer starts reading late, and what was held back fills it
        # at once (it pauses): the server is not reading, the client is
        # not the slow one -- no 408 (it came from resume_body re-arming
        # the timeout after the pause its own feeding caused).
        site, conn, request = self.late_reader()
        self.assertTrue(request.notes["got"])
        site.clock.advance(30)
        self.assertFalse(conn.closed)
        self.assertEqual(conn.responses(), [])
        request.resume_body()
        conn.send(b"z" * 100000)
        while not conn.responses():
            request.resume_body()
        [r] = conn.responses()
        self.assertEqual((r.status, r.body), (200, b"got 300000"))

    def test_body_timeout_runs_again_after_a_long_pause(self):
        # The consumer paused longer than the timeout's wheel entry lived;
        # once it reads again and the client stalls, 408 must still come.
        site, conn, request = self.late_reader()
        site.clock.advance(30)
        request.notes["pausing"] = False
        request.resume_body()
        self.assertEqual(conn.responses(), [])
        site.clock.advance(12)
        [r] = conn.responses()
        self.assertEqual(r.status, 408)
        self.assertTrue(conn.closed)

    def test_max_keep_alive_requests(self):
        site = memory_site(self, extra="MaxKeepAliveRequests 2\n")
        conn = site.connect()
        conn.request("GET", "/1")
        conn.request("GET", "/2")
        conn.request("GET", "/3")
        responses = conn.responses()
        self.assertEqual(len(responses), 2)
        self.assertIsNone(responses[0].header("connection"))
        self.assertEqual(responses[1].header("connection"), "close")
        self.assertTrue(conn.closed)

    def test_no_timer_per_request(self):
        # Deadlines live in the factory's wheel: one reactor timer at most.
        site = memory_site(self)
        conns = [site.connect() for _ in range(50)]
        for conn in conns:
            conn.request("GET", "/a")
            conn.request("GET", "/b")
        self.assertEqual(len(site.clock.getDelayedCalls()), 1)


class BoundedBufferingTests(SynchronousTestCase):
    def test_reading_pauses_when_pipelined_responses_are_not_draining(self):
        from tests import httpplugins

        site = memory_site(self, extra="MaxPipelinedRequests 4\n")
        conn = site.connect()
        conn.send(
            b"GET /slow HTTP/1.1\r\n"
            + H
            + b"\r\n"
            + b"".join(b"GET /n%d HTTP/1.1\r\n" % i + H + b"\r\n" for i in range(200))
        )
        self.assertEqual(conn.transport.producerState, "paused")
        # MaxPipelinedRequests, plus what one 1 KiB parsing slice holds.
        self.assertLess(len(conn.protocol.queue), 4 + 1024 // 30)
        httpplugins.pending.pop().callback(None)
        self.assertEqual(len(conn.responses()), 201)
        self.assertEqual(conn.transport.producerState, "producing")

    def test_unread_body_pauses_reading(self):
        from tests import httpplugins

        site = memory_site(self)
        conn = site.connect()
        conn.send(
            b"POST /slow HTTP/1.1\r\n" + H + b"Content-Length: 1000000\r\n\r\n" + b"z" * 100000
        )
        self.assertEqual(conn.transport.producerState, "paused")
        httpplugins.pending.pop().callback(None)


class _KeepOpen(Protocol):
    """Sends one request, fires ``got`` with itself on the answer, stays open."""

    def __init__(self, got, path):
        self.got = got
        self.path = path
        self.data = b""

    def connectionMade(self):
        self.transport.write(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % self.path)

    def dataReceived(self, data):
        self.data += data
        if b"\r\n\r\n" in self.data and not self.got.called:
            self.got.callback(self)

    def connectionLost(self, reason):
        if not self.got.called:
            self.got.callback(self)


def open_client(port, path=b"/"):
    got = defer.Deferred()
    factory = ClientFactory()
    factory.buildProtocol = lambda addr: _KeepOpen(got, path)
    reactor.connectTCP("127.0.0.1", port, factory)
    return got.addTimeout(10, reactor)


def pause(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


class MaxConnectionsTests(TestCase):
    @defer.inlineCallbacks
    def test_stops_accepting_past_the_limit_and_resumes(self):
        server = yield start_server(ECHO_CONFIG + "MaxConnections 2\n")
        self.addCleanup(server.stop)
        first = yield open_client(server.port, b"/first")
        second = yield open_client(server.port, b"/second")
        factory = next(iter(server.service.factories.values()))
        self.assertEqual(len(factory.connections), 2)
        self.assertTrue(server.service.gate.paused)
        # A third client: the kernel completes the handshake, but axkit does
        # not accept it, so its request is not answered ...
        third = open_client(server.port, b"/third")
        yield pause(0.3)
        self.assertFalse(third.called)
        self.assertEqual(len(factory.connections), 2)
        # ... until a connection closes.
        first.transport.loseConnection()
        client = yield third
        self.assertIn(b"GET /third", client.data)
        self.assertTrue(any("MaxConnections" in (e.get("log_format") or "") for e in self.events))
        second.transport.loseConnection()
        client.transport.loseConnection()
        yield pause(0.05)

    def setUp(self):
        from twisted.logger import globalLogPublisher

        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)


class FileLimitTests(SynchronousTestCase):
    """MaxConnections never exceeds what the open-file limit allows, so
    accepting cannot fail with EMFILE."""

    def _service(self, maximum, soft, hard, raise_ok, extra=""):
        import resource

        from axkit.server import AxKitService
        from axkit.testing import load_config

        calls = []

        def getrlimit(which):
            return (soft, hard)

        def setrlimit(which, limits):
            calls.append(limits)
            if not raise_ok:
                raise ValueError("not permitted")

        self.patch(resource, "getrlimit", getrlimit)
        self.patch(resource, "setrlimit", setrlimit)
        service = AxKitService(load_config(f"MaxConnections {maximum}\n" + extra))
        return service, calls

    def test_soft_limit_is_raised_toward_the_hard_one(self):
        service, calls = self._service(5000, 1024, 20000, True)
        self.assertEqual(calls, [(5256, 20000)])
        self.assertEqual(service.gate.maximum, 5000)

    def test_max_connections_is_capped_below_the_limit(self):
        service, calls = self._service(50000, 1024, 20000, True)
        self.assertEqual(calls, [(20000, 20000)])
        self.assertEqual(service.gate.maximum, 20000 - 64)

    def test_capped_when_the_limit_cannot_be_raised(self):
        service, calls = self._service(5000, 1024, 1024, False)
        self.assertEqual(service.gate.maximum, 1024 - 64)

    def test_room_is_left_for_cgi_programs_pipes(self):
        # 4 descriptors per program CGIMaxProcesses allows, beside the 64.
        service, calls = self._service(
            5000, 1024, 1024, False, "Plugin axkit.plugins.cgi.CGI\nCGIMaxProcesses 100\n"
        )
        self.assertEqual(service.gate.maximum, 1024 - 64 - 400)


class FootprintTests(SynchronousTestCase):
    """What a connection costs while it waits, and what a request leaves."""

    def test_idle_connection_holds_no_parser_queue_or_dict(self):
        # With many connections open (here: the threshold lowered to 1),
        # an idle one drops its parser.
        from axkit.http import connection

        self.patch(connection, "KEEP_PARSER_BELOW", 1)
        site = memory_site(self)
        conn = site.connect()
        conn.request("GET", "/a")
        protocol = conn.protocol
        self.assertFalse(hasattr(protocol, "__dict__"))
        self.assertIsNone(protocol.parser)
        self.assertIsNone(protocol.queue)
        self.assertIsNone(protocol.active)
        self.assertIsNone(protocol._notes)

    def test_busy_connection_keeps_its_parser_below_the_threshold(self):
        site = memory_site(self)
        conn = site.connect()
        conn.request("GET", "/a")
        parser = conn.protocol.parser
        self.assertIsNotNone(parser)
        conn.request("GET", "/b")
        self.assertIs(conn.protocol.parser, parser)
        self.assertEqual([r.status for r in conn.responses()], [200, 200])

    def test_requests_leave_no_reference_cycles(self):
        import gc

        site = memory_site(self)
        conn = site.connect()
        for i in range(20):
            conn.request("GET", f"/warm{i}")
        gc.collect()
        gc.disable()
        self.addCleanup(gc.enable)
        for i in range(200):
            conn.request("GET", f"/n{i}")
            conn.request("HEAD", f"/h{i}")
        conn.transport.clear()
        self.assertEqual(gc.collect(), 0)

    def test_closed_connections_leave_the_deadline_wheel(self):
        site = memory_site(self)
        wheel = site.factory.wheel
        conns = [site.connect() for _ in range(20)]
        for conn in conns:
            conn.request("GET", "/a", headers=[("Connection", "close")])
            conn.lose()
        self.assertEqual(sum(len(b) for b in wheel.buckets.values()), 0)
        live = site.connect()
        live.request("GET", "/a")
        site.clock.advance(1)
        live.send(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab")
        # One entry per connection, wherever its deadline moved.
        self.assertEqual(sum(len(b) for b in wheel.buckets.values()), 1)
