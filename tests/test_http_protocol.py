"""The HTTP/1.1 protocol features of the engine, in memory and over sockets."""

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase, TestCase

from axkit.testing import parse_responses, start_server
from tests import httpplugins
from tests.http_support import ECHO_CONFIG, memory_site
from tests.rawclient import exchange

H = b"Host: example.com\r\n"


class ChunkedRequestTests(SynchronousTestCase):
    def test_chunked_body_with_extensions_and_trailers(self):
        conn = memory_site(self).connect()
        conn.send(
            b"POST /up HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
            b"5;name=value\r\nhello\r\n"
            b'6;quoted="a b";flag\r\n world\r\n'
            b"0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"
        )
        [r] = conn.responses()
        self.assertEqual(r.status, 200)
        self.assertIn(b"len=11 body=hello world", r.body)
        self.assertIn(b"'x-checksum': 'abc'", r.body)
        self.assertIn(b"'x-other': '1'", r.body)
        self.assertFalse(conn.closed)

    def test_chunked_body_split_at_every_byte(self):
        conn = memory_site(self).connect()
        data = (
            b"POST /up HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n"
        )
        for i in range(len(data)):
            conn.send(data[i : i + 1])
        [r] = conn.responses()
        self.assertIn(b"len=19 body=abc0123456789abcdef", r.body)

    def test_transfer_coding_names_are_case_insensitive(self):
        conn = memory_site(self).connect()
        conn.send(
            b"POST /up HTTP/1.1\r\n" + H + b"Transfer-Encoding: Chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
        )
        [r] = conn.responses()
        self.assertIn(b"body=ok", r.body)

    def test_body_data_hook_sees_pieces_as_they_arrive(self):
        del httpplugins.pieces[:]
        site = memory_site(self, plugins="Plugin tests.httpplugins.BodyWatcher\n")
        conn = site.connect()
        conn.send(b"POST /up HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        self.assertEqual(httpplugins.pieces, [("/up", b"abc")])
        self.assertEqual(conn.responses(), [])
        conn.send(b"2\r\nde\r\n0\r\n\r\n")
        self.assertEqual(httpplugins.pieces, [("/up", b"abc"), ("/up", b"de")])
        [r] = conn.responses()
        self.assertIn(b"body=abcde", r.body)


class ResponseFramingTests(SynchronousTestCase):
    def test_unknown_length_is_chunked_on_1_1(self):
        conn = memory_site(self).connect()
        conn.request("GET", "/stream")
        raw = conn.transport.value()
        self.assertIn(b"Transfer-Encoding: chunked\r\n", raw)
        self.assertTrue(raw.endswith(b"0\r\n\r\n"))
        [r] = conn.responses()
        self.assertEqual(r.body, b"part one,part two")
        self.assertFalse(conn.closed)

    def test_unknown_length_closes_on_1_0(self):
        conn = memory_site(self).connect()
        conn.request("GET", "/stream", headers=[("Connection", "keep-alive")], version="1.0")
        raw = conn.transport.value()
        self.assertNotIn(b"chunked", raw)
        self.assertIn(b"Connection: close\r\n", raw)
        self.assertTrue(raw.endswith(b"part one,part two"))
        self.assertTrue(conn.closed)

    def test_head_never_carries_a_body(self):
        conn = memory_site(self).connect()
        conn.request("HEAD", "/x")
        conn.request("HEAD", "/stream")
        conn.request("GET", "/after")
        responses = conn.responses()
        self.assertEqual([r.status for r in responses], [200, 200, 200])
        raw = conn.transport.value()
        # The only body on the wire is the GET's.
        self.assertEqual(raw.count(b"host=localhost"), 1)
        self.assertNotIn(b"part one", raw)
        self.assertIn(b"GET /after", responses[2].body)

    def test_head_of_unknown_length_has_no_framing_and_keeps_the_connection(self):
        # Neither Content-Length: 0 (a lie a cache would keep) nor chunked
        # framing with no chunks; on HTTP/1.0 the connection stays open too.
        for version in ("1.1", "1.0"):
            conn = memory_site(self).connect()
            conn.request("HEAD", "/stream", headers=[("Connection", "keep-alive")], version=version)
            raw = conn.transport.value()
            self.assertTrue(raw.endswith(b"\r\n\r\n"), raw)
            self.assertNotIn(b"Content-Length", raw)
            self.assertNotIn(b"Transfer-Encoding", raw)
            self.assertFalse(conn.closed, version)

    def test_1xx_204_304_never_carry_a_body_or_a_content_length(self):
        for code in (204, 304):
            conn = memory_site(self).connect()
            conn.request("GET", f"/status/{code}")
            conn.request("GET", "/after")
            raw = conn.transport.value()
            self.assertNotIn(b"BODY!", raw)
            head = raw.split(b"\r\n\r\n")[0]
            self.assertNotIn(b"Content-Length", head)
            self.assertNotIn(b"Transfer-Encoding", head)
            responses = conn.responses()
            self.assertEqual([r.status for r in responses], [code, 200])

    def test_plugin_cannot_set_framing_headers(self):
        conn = memory_site(self).connect()
        conn.request("GET", "/status/200")
        raw = conn.transport.value()
        self.assertEqual(raw.count(b"Content-Length"), 1)


class HeaderInjectionTests(SynchronousTestCase):
    def _check(self, path):
        site = memory_site(self)
        conn = site.connect()
        conn.request("GET", path)
        raw = conn.transport.value()
        self.assertNotIn(b"pwned", raw)
        self.assertNotIn(b"X-Evil", raw)
        [r] = conn.responses()
        self.assertEqual(r.status, 500)
        logged = [
            e
            for e in site.events
            if e.get("log_failure") is not None
            and "refusing to send header" in str(e["log_failure"].value)
        ]
        self.assertEqual(len(logged), 1)
        from axkit.http.request import HeaderInjection

        self.assertEqual(len(self.flushLoggedErrors(HeaderInjection)), 1)

    def test_cr_lf_in_a_value(self):
        self._check("/inject-value")

    def test_cr_lf_in_a_name(self):
        self._check("/inject-name")

    def test_nul_in_a_value(self):
        self._check("/inject-nul")


class ExpectTests(SynchronousTestCase):
    def test_100_continue_sent_when_the_body_is_read(self):
        conn = memory_site(self).connect()
        conn.send(
            b"POST /up HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        )
        self.assertEqual(conn.transport.value(), b"HTTP/1.1 100 Continue\r\n\r\n")
        conn.send(b"hello")
        responses = parse_responses(conn.transport.value())
        self.assertEqual([r.status for r in responses], [100, 200])
        self.assertIn(b"body=hello", responses[1].body)
        self.assertFalse(conn.closed)

    def test_no_100_when_the_response_does_not_read_the_body(self):
        conn = memory_site(self).connect()
        conn.send(
            b"POST /noread HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        )
        raw = conn.transport.value()
        self.assertNotIn(b"100 Continue", raw)
        self.assertTrue(raw.startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertIn(b"Connection: close\r\n", raw)
        self.assertTrue(conn.closed)

    def test_no_100_when_the_body_is_too_large(self):
        site = memory_site(self, extra="LimitRequestBody 4\n")
        conn = site.connect()
        conn.send(
            b"POST /up HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        )
        raw = conn.transport.value()
        self.assertNotIn(b"100 Continue", raw)
        self.assertTrue(raw.startswith(b"HTTP/1.1 413 "), raw)
        self.assertTrue(conn.closed)

    def test_no_100_on_http_1_0(self):
        conn = memory_site(self).connect()
        conn.send(b"POST /up HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        self.assertEqual(conn.transport.value(), b"")
        conn.send(b"hello")
        [r] = conn.responses()
        self.assertIn(b"body=hello", r.body)

    def test_unknown_expectation_is_417(self):
        conn = memory_site(self).connect()
        conn.send(b"POST /up HTTP/1.1\r\n" + H + b"Expect: teapot\r\nContent-Length: 5\r\n\r\n")
        [r] = conn.responses()
        self.assertEqual(r.status, 417)
        self.assertEqual(r.header("connection"), "close")


class KeepAliveTests(SynchronousTestCase):
    def test_http_1_0_keep_alive(self):
        conn = memory_site(self).connect()
        conn.request("GET", "/a", headers=[("Connection", "keep-alive")], version="1.0")
        conn.request("GET", "/b", headers=[("Connection", "Keep-Alive")], version="1.0")
        conn.request("GET", "/c", version="1.0")
        responses = conn.responses()
        self.assertEqual([r.status for r in responses], [200, 200, 200])
        self.assertEqual(responses[0].header("connection"), "keep-alive")
        self.assertEqual(responses[1].header("connection"), "keep-alive")
        self.assertEqual(responses[2].header("connection"), "close")
        self.assertTrue(conn.closed)

    def test_connection_is_a_token_list(self):
        conn = memory_site(self).connect()
        conn.request("GET", "/a", headers=[("Connection", "foo, Close")])
        [r] = conn.responses()
        self.assertEqual(r.header("connection"), "close")
        self.assertTrue(conn.closed)

    def test_connection_tokens_across_several_fields(self):
        conn = memory_site(self).connect()
        conn.request("GET", "/a", headers=[("Connection", "foo"), ("Connection", "close")])
        self.assertTrue(conn.closed)
        conn = memory_site(self).connect()
        conn.request("GET", "/a", headers=[("Connection", "foo,keep-alive")], version="1.0")
        conn.request("GET", "/b", version="1.0")
        self.assertEqual(len(conn.responses()), 2)

    def test_http_1_1_default_keep_alive(self):
        conn = memory_site(self).connect()
        conn.request("GET", "/a")
        conn.request("GET", "/b")
        self.assertEqual(len(conn.responses()), 2)
        self.assertFalse(conn.closed)


class TargetAndMethodTests(SynchronousTestCase):
    def test_absolute_form_takes_the_host_from_the_target(self):
        conn = memory_site(self).connect()
        conn.send(b"GET http://Other.Example:8080/p/q?x=1 HTTP/1.1\r\nHost: ignored\r\n\r\n")
        [r] = conn.responses()
        self.assertEqual(r.status, 200)
        self.assertIn(b"GET /p/q host=other.example", r.body)

    def test_options_asterisk(self):
        conn = memory_site(self).connect()
        conn.send(b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n")
        [r] = conn.responses()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("allow"), "GET, HEAD, OPTIONS")
        self.assertEqual(r.header("content-length"), "0")
        self.assertFalse(conn.closed)

    def test_trace_is_405_with_allow(self):
        conn = memory_site(self).connect()
        conn.request("TRACE", "/x", headers=[("Cookie", "secret")])
        [r] = conn.responses()
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("allow"), "GET, HEAD, OPTIONS")
        self.assertNotIn(b"secret", r.body)

    def test_connect_is_501_and_closes(self):
        conn = memory_site(self).connect()
        conn.send(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        [r] = conn.responses()
        self.assertEqual(r.status, 501)
        self.assertTrue(conn.closed)

    def test_unhandled_known_method_is_405_with_allow(self):
        site = memory_site(self)
        from axkit.testing import MemorySite

        site = MemorySite("Listen tcp:0\nPlugin tests.httpplugins.Status\n")
        self.addCleanup(site.close)
        r = site.request("PUT", "/x", body=b"abc")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("allow"), "GET, HEAD, OPTIONS")

    def test_unhandled_other_method_is_501(self):
        from axkit.testing import MemorySite

        site = MemorySite("Listen tcp:0\nPlugin tests.httpplugins.Status\n")
        self.addCleanup(site.close)
        r = site.request("PROPFIND", "/x")
        self.assertEqual(r.status, 501)


class OverSocketTests(TestCase):
    """A few of the above against the real server."""

    @defer.inlineCallbacks
    def setUp(self):
        self.server = yield start_server(ECHO_CONFIG)
        self.addCleanup(self.server.stop)

    @defer.inlineCallbacks
    def test_chunked_upload_with_trailers_and_pipelined_requests(self):
        data = yield exchange(
            self.server.port,
            pieces=[
                b"POST /up HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5;x=y\r\nhel",
                b"lo\r\n0\r\nX-T: 1\r\n\r\nGET /two HTTP/1.1\r\n" + H + b"\r\n",
                b"OPTIONS * HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n",
            ],
        )
        responses = parse_responses(data)
        self.assertEqual([r.status for r in responses], [200, 200, 200])
        self.assertIn(b"body=hello trailers={'x-t': '1'}", responses[0].body)
        self.assertIn(b"GET /two", responses[1].body)
        self.assertEqual(responses[2].header("allow"), "GET, HEAD, OPTIONS")

    @defer.inlineCallbacks
    def test_expect_100_continue(self):
        data = yield exchange(
            self.server.port,
            pieces=[
                b"PUT /up HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: 3\r\n"
                b"Connection: close\r\n\r\n",
                b"abc",
            ],
        )
        self.assertTrue(data.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"))
        self.assertIn(b"body=abc", data)


class PipeliningOverSocketTests(TestCase):
    """Responses leave in request order even when the first is produced
    later (a Deferred) than the ones behind it."""

    @defer.inlineCallbacks
    def setUp(self):
        from tests.http_support import ECHO_CONFIG

        self.server = yield start_server(
            ECHO_CONFIG.replace(
                "Plugin tests.httpplugins.Echo",
                "Plugin tests.httpplugins.Delay\n    Plugin tests.httpplugins.Echo",
            )
        )
        self.addCleanup(self.server.stop)

    @defer.inlineCallbacks
    def test_slow_first_response_keeps_its_place(self):
        data = yield exchange(
            self.server.port,
            b"GET /delay/0.3 HTTP/1.1\r\n" + H + b"\r\n"
            b"GET /fast HTTP/1.1\r\n" + H + b"\r\n"
            b"POST /post HTTP/1.1\r\n" + H + b"Content-Length: 3\r\n\r\nabc"
            b"GET /last HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n",
        )
        responses = parse_responses(data)
        self.assertEqual([r.status for r in responses], [200, 200, 200, 200])
        self.assertEqual(responses[0].body, b"waited 0.3")
        self.assertIn(b"GET /fast", responses[1].body)
        self.assertIn(b"POST /post", responses[2].body)
        self.assertIn(b"body=abc", responses[2].body)
        self.assertIn(b"GET /last", responses[3].body)


class StatusValidationTests(SynchronousTestCase):
    """A plugin's status must be a three-digit HTTP status: anything else is
    the plugin's fault (500, logged), never an `HTTP/1.1 4 Unknown` line."""

    def test_statuses_outside_100_599_are_refused(self):
        from axkit.http.status import InvalidStatus, status_line

        for bad in (4, 99, 600, 1000, "200", None):
            self.assertRaises(InvalidStatus, status_line, bad)
        self.assertEqual(status_line(299), b"HTTP/1.1 299 Unknown\r\n")
        self.assertEqual(status_line(404, "Gone Fishing"), b"HTTP/1.1 404 Gone Fishing\r\n")
        self.assertRaises(InvalidStatus, status_line, 404, "bad\r\nX-Injected: 1")

    def test_a_plugin_sending_status_4_gets_a_500(self):
        from axkit.http.status import InvalidStatus
        from axkit.testing import MemorySite

        site = MemorySite("Plugin tests.test_http_protocol.SendsStatusFour\n", route_logs=False)
        self.addCleanup(site.close)
        response = site.get("/")
        self.assertEqual(response.status, 500)
        self.assertEqual(len(self.flushLoggedErrors(InvalidStatus)), 1)


class SendsStatusFour:
    name = "sends_status_four"

    def hook_response(self, request, conf):
        request.send(4, b"nope")
