"""What a CGI program's output becomes (RFC 3875 §6), over a real socket."""

import json
import os

from twisted.internet import defer, task
from twisted.trial.unittest import TestCase

from axkit.testing import parse_responses

from .cgi_support import LogCapture, base_config, request, serve
from .rawclient import exchange


class ResponseTests(TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.docroot = self.mktemp()
        os.makedirs(self.docroot)
        with open(os.path.join(self.docroot, "static.txt"), "w") as f:
            f.write("a static file\n")
        self.logs = LogCapture()
        self.addCleanup(self.logs.stop)
        self.server = yield serve(self, base_config(self.docroot))

    def get(self, path, method="GET", **kw):
        return request(self.server.port, method, path, **kw)

    @defer.inlineCallbacks
    def test_document_response_streams_chunked_without_content_length(self):
        # stream.sh is still running after its first part: no length known.
        response = yield self.get("/cgi-bin/stream.sh")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.header("Content-Type"), "text/plain")
        self.assertEqual(response.header("Transfer-Encoding"), "chunked")
        self.assertIsNone(response.header("Content-Length"))
        self.assertEqual(response.body, b"first part\nsecond part\n")

    @defer.inlineCallbacks
    def test_output_finished_at_once_is_framed_either_way(self):
        # hello.sh writes everything and exits: the server sees the output
        # with its end (Content-Length) or before it (chunked), by timing.
        for _ in range(5):
            response = yield self.get("/cgi-bin/hello.sh")
            self.assertEqual(response.status, 200)
            self.assertEqual(response.header("Content-Type"), "text/plain")
            self.assertEqual(response.body, b"Hello, world!\n")
            length = response.header("Content-Length")
            chunked = response.header("Transfer-Encoding")
            self.assertTrue((length == "14") != (chunked == "chunked"), (length, chunked))

    @defer.inlineCallbacks
    def test_content_length_from_the_script_is_used(self):
        response = yield self.get("/cgi-bin/env.py")
        self.assertIsNone(response.header("Transfer-Encoding"))
        self.assertEqual(int(response.header("Content-Length")), len(response.body))

    @defer.inlineCallbacks
    def test_status_with_reason_and_hop_by_hop_fields_dropped(self):
        response = yield self.get("/cgi-bin/status.sh")
        self.assertEqual(response.status, 418)
        self.assertEqual(response.reason, "I am a teapot")  # the program's own phrase
        self.assertEqual(response.body, b"teapot\n")
        cookies = [v for k, v in response.headers if k.lower() == "set-cookie"]
        self.assertEqual(cookies, ["a=1", "b=2"])
        self.assertIsNone(response.header("Status"))
        # The script's "Connection: close" is not passed on as its own field
        # (we only see the one the test's request asked for).
        self.assertEqual([v for k, v in response.headers if k.lower() == "connection"], ["close"])

    @defer.inlineCallbacks
    def test_status_without_reason_and_bare_lf_lines(self):
        response = yield self.get("/cgi-bin/status.sh?bare")
        self.assertEqual(response.status, 404)
        self.assertEqual(response.reason, "Not Found")
        self.assertEqual(response.header("X-Custom"), "yes")
        self.assertEqual(response.body, b"not here\n")

    @defer.inlineCallbacks
    def test_local_redirect_is_an_internal_get(self):
        response = yield self.get("/cgi-bin/redirect.sh?x=1", "POST", body=b"ignored=1")
        self.assertEqual(response.status, 200)
        seen = json.loads(response.body)
        self.assertEqual(seen["env"]["REQUEST_METHOD"], "GET")
        self.assertEqual(seen["env"]["QUERY_STRING"], "from=redirect")
        self.assertEqual(seen["env"]["SCRIPT_NAME"], "/cgi-bin/env.py")
        self.assertEqual(seen["env"]["PATH_INFO"], "/p")
        self.assertNotIn("CONTENT_LENGTH", seen["env"])
        self.assertIsNone(response.header("Location"))
        # As Apache: REQUEST_URI is what the client asked; REDIRECT_URL too.
        self.assertEqual(seen["env"]["REQUEST_URI"], "/cgi-bin/redirect.sh?x=1")
        self.assertEqual(seen["env"]["REDIRECT_URL"], "/cgi-bin/redirect.sh")
        self.assertEqual(seen["env"]["REDIRECT_QUERY_STRING"], "x=1")
        self.assertEqual(seen["env"]["REDIRECT_REQUEST_METHOD"], "POST")

    @defer.inlineCallbacks
    def test_repeated_content_type_sends_one(self):
        response = yield self.get("/cgi-bin/two_types.sh")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.raw_head.lower().count("content-type:"), 1, response.raw_head)
        self.assertEqual(response.header("Content-Type"), "text/plain")

    @defer.inlineCallbacks
    def test_local_redirect_to_a_static_file(self):
        # The redirected request is a new one (Apache's internal redirect):
        # the program that answered first is not run again for it.
        response = yield self.get("/cgi-bin/redirect_static.sh")
        self.assertEqual(response.status, 200, response.body)
        self.assertEqual(response.body, b"a static file\n")
        self.assertFalse(any("local redirects" in line for line in self.logs.lines()))

    @defer.inlineCallbacks
    def test_local_redirect_to_an_invalid_path_is_the_programs_fault(self):
        # The client's request was fine: a 502 naming the program, not a 400.
        response = yield self.get("/cgi-bin/bad_redirect.sh")
        self.assertEqual(response.status, 502)
        self.assertTrue(
            any(
                "bad_redirect.sh" in line and "local redirect" in line and line.endswith("-> 502")
                for line in self.logs.lines()
            ),
            self.logs.lines(),
        )

    @defer.inlineCallbacks
    def test_local_redirect_loop_is_stopped(self):
        response = yield self.get("/cgi-bin/loop.sh")
        self.assertEqual(response.status, 500)
        self.assertTrue(any("local redirects" in line for line in self.logs.lines()))

    @defer.inlineCallbacks
    def test_client_redirect_is_302(self):
        response = yield self.get("/cgi-bin/client_redirect.sh")
        self.assertEqual(response.status, 302)
        self.assertEqual(response.header("Location"), "http://example.com/elsewhere")

    @defer.inlineCallbacks
    def test_client_redirect_keeps_the_scripts_status_and_body(self):
        response = yield self.get("/cgi-bin/moved.sh")
        self.assertEqual(response.status, 301)
        self.assertEqual(response.header("Location"), "http://example.com/moved")
        self.assertEqual(response.body, b"moved\n")

    @defer.inlineCallbacks
    def test_nph_output_is_passed_through_untouched(self):
        raw = b"GET /cgi-bin/nph-raw.sh HTTP/1.1\r\nHost: localhost\r\n\r\n"
        data = yield exchange(self.server.port, raw)
        self.assertEqual(
            data,
            b"HTTP/1.1 299 Custom\r\nX-NPH: untouched\r\n"
            b"Content-Type: text/plain\r\n\r\nraw body\n",
        )

    @defer.inlineCallbacks
    def test_nph_output_written_in_parts_is_all_passed_through(self):
        raw = b"GET /cgi-bin/nph-parts.sh HTTP/1.1\r\nHost: localhost\r\n\r\n"
        data = yield exchange(self.server.port, raw)
        self.assertEqual(
            data, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst\nsecond\n"
        )

    @defer.inlineCallbacks
    def test_head_sends_no_body(self):
        raw = (
            b"HEAD /cgi-bin/hello.sh HTTP/1.1\r\nHost: localhost\r\n\r\n"
            b"GET /cgi-bin/hello.sh HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        data = yield exchange(self.server.port, raw)
        responses = parse_responses(data, ["HEAD", "GET"])
        self.assertEqual([r.status for r in responses], [200, 200])
        self.assertEqual(responses[0].body, b"")
        self.assertEqual(responses[1].body, b"Hello, world!\n")
        self.assertEqual(data.count(b"Hello, world!"), 1)

    @defer.inlineCallbacks
    def test_multi_megabyte_output_read_slowly_is_throttled(self):
        # 8 MiB from the script to a client reading 16 KiB at a time with a
        # small receive buffer: the server's send buffer must stay small
        # (the script's pipe is paused), and every byte must arrive in order.
        factory = next(iter(self.server.service.factories.values()))
        most = [0]

        def measure():
            for conn in factory.connections:
                t = conn.transport
                buffered = len(t.dataBuffer) + t._tempDataLen
                most[0] = max(most[0], buffered)

        poll = task.LoopingCall(measure)
        poll.start(0.005)
        try:
            response = yield self.get(
                "/cgi-bin/big.py?8", rcvbuf=16384, read_size=16384, delay=0.0005, timeout=60
            )
        finally:
            poll.stop()
        self.assertEqual(response.status, 200)
        expected = b"".join((b"%08d" % i) * 8192 for i in range(8 * 16))
        self.assertEqual(len(response.body), len(expected))
        self.assertEqual(response.body, expected)
        self.assertLess(most[0], 1024 * 1024)

    @defer.inlineCallbacks
    def test_access_to_documents_still_works_beside_cgi(self):
        response = yield self.get("/static.txt")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, b"a static file\n")

    @defer.inlineCallbacks
    def test_path_info_and_script_name_split_in_subfolders(self):
        response = yield self.get("/cgi-bin/sub/deep.sh/a/b%2Fc/")
        self.assertEqual(response.body, b"/cgi-bin/sub/deep.sh|/a/b/c/\n")
        response = yield self.get("/cgi-bin/sub/deep.sh")
        self.assertEqual(response.body, b"/cgi-bin/sub/deep.sh|\n")
