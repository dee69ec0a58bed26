"""The wsgi plugin's PEP 3333 logic, in memory: the engine and the hook
chain for real; under MemorySite's fake clock (no threads) the plugin runs
the application inline (InlinePool) instead of on a thread, so each
exchange completes within the request's dataReceived."""

import json
import warnings
from wsgiref.validate import WSGIWarning

from twisted.trial.unittest import SynchronousTestCase

from axkit.testing import MemorySite

from .wsgiapps import apps


def plugin_line():
    from axkit import discovery

    return "wsgi" if "wsgi" in discovery.discover() else "axkit.plugins.wsgi.WSGI"


APPS = "tests.wsgiapps.apps"

CONFIG = f"""
    Listen tcp:0:interface=127.0.0.1
    Plugin {plugin_line()}
    Plugin tests.wsgiapps.plugins.User
    WSGIScriptAlias /env {APPS}:env
    WSGIScriptAlias /env/deeper/ {APPS}:hello
    WSGIScriptAlias /env/off off
    WSGIScriptAlias /echo {APPS}:echo
    WSGIScriptAlias /vecho {APPS}:validated_echo
    WSGIScriptAlias /closing {APPS}:closing
    WSGIScriptAlias /vclosing {APPS}:validated_closing
    WSGIScriptAlias /raises {APPS}:raises
    WSGIScriptAlias /late {APPS}:late_error
    WSGIScriptAlias /writer {APPS}:writer
    WSGIScriptAlias /hop {APPS}:hop_by_hop
    WSGIScriptAlias /bad {APPS}:bad_header
    WSGIScriptAlias /reason {APPS}:custom_reason
    WSGIScriptAlias /gen {APPS}:generator
    WSGIScriptAlias /fw {APPS}:file_wrapper
    WSGIScriptAlias /vfw {APPS}:validated_file_wrapper
    WSGIScriptAlias /headless {APPS}:empty_for_head
    WSGIScriptAlias /missing tests.wsgiapps.nosuchmodule:application
    WSGIScriptAlias /reader {APPS}:careful_reader
    <Location /echo/limited>
        LimitRequestBody 10
    </Location>
    <Location /reader>
        LimitRequestBody 10
    </Location>
    WSGIScriptAlias /streamed {APPS}:env
    <Location /streamed>
        WSGIChunkedRequest On
    </Location>
"""


class Base(SynchronousTestCase):
    def setUp(self):
        apps.reset()
        self.site = MemorySite(CONFIG)
        self.addCleanup(self.site.close)
        plugin = [
            p for p in self.site.config.plugins.values() if getattr(p, "name", None) == "wsgi"
        ][0]
        self.plugin = plugin
        # wsgiref's validator warns (instead of raising) about some faults.
        caught = warnings.catch_warnings()
        caught.__enter__()
        self.addCleanup(caught.__exit__, None, None, None)
        warnings.simplefilter("error", WSGIWarning)

    def get(self, path, headers=(), method="GET", body=b"", version="1.1"):
        return self.site.request(method, path, headers, body, version)

    def environ(self, path, headers=(), **kw):
        r = self.get(path, headers, **kw)
        self.assertEqual(r.status, 200, r.body)
        return json.loads(r.body)

    def logged_failures(self, count=1):
        """The application failures logged (and taken off trial's list)."""
        failures = [
            e
            for e in self.site.events
            if e.get("log_failure") is not None and e.get("plugin") == "wsgi"
        ]
        self.assertEqual(len(failures), count, failures)
        self.flushLoggedErrors()
        return failures

    def errors(self):
        return self.site.messages(namespace="axkit.wsgi")


class EnvironTests(Base):
    def test_script_name_and_path_info(self):
        e = self.environ("/env/a%20b/%C3%A9t%C3%A9?x=%41&y")
        self.assertEqual(e["SCRIPT_NAME"], "/env")
        # Percent-decoded, then the UTF-8 bytes as latin-1 (PEP 3333).
        self.assertEqual(e["PATH_INFO"], "/a b/" + "été".encode().decode("latin-1"))
        self.assertEqual(e["QUERY_STRING"], "x=%41&y")
        self.assertEqual(e["REQUEST_URI"], "/env/a%20b/%C3%A9t%C3%A9?x=%41&y")
        self.assertEqual(e["REQUEST_METHOD"], "GET")
        self.assertEqual(e["SERVER_PROTOCOL"], "HTTP/1.1")

    def test_mount_itself(self):
        e = self.environ("/env")
        self.assertEqual((e["SCRIPT_NAME"], e["PATH_INFO"]), ("/env", ""))
        e = self.environ("/env/")
        self.assertEqual((e["SCRIPT_NAME"], e["PATH_INFO"]), ("/env", "/"))

    def test_longest_prefix_wins_and_off(self):
        self.assertEqual(self.get("/env/deeper/x").body, b"hello\n")
        self.assertEqual(json.loads(self.get("/env/deeperx").body)["PATH_INFO"], "/deeperx")
        # `off` leaves a prefix to the other plugins: nobody here -> 404.
        self.assertEqual(self.get("/env/off/x").status, 404)
        self.assertEqual(self.get("/envy").status, 404)

    def test_wsgi_keys(self):
        e = self.environ("/env/")
        self.assertEqual(e["wsgi.version"], [1, 0])
        self.assertEqual(e["wsgi.url_scheme"], "http")
        self.assertIs(e["wsgi.multithread"], True)
        self.assertIs(e["wsgi.multiprocess"], False)
        self.assertIs(e["wsgi.run_once"], False)
        self.assertIs(e["wsgi.input_terminated"], True)
        self.assertEqual(e["REMOTE_ADDR"], "127.0.0.1")
        self.assertEqual(e["REMOTE_PORT"], "40000")

    def test_server_name_and_port_from_host(self):
        e = self.environ("/env/", [("Host", "Example.COM:8443")])
        self.assertEqual((e["SERVER_NAME"], e["SERVER_PORT"]), ("example.com", "8443"))
        self.assertEqual(e["HTTP_HOST"], "Example.COM:8443")
        e = self.environ("/env/", [("Host", "[::1]:81")])
        self.assertEqual((e["SERVER_NAME"], e["SERVER_PORT"]), ("[::1]", "81"))
        e = self.environ("/env/", [("Host", "example.org")])
        self.assertEqual((e["SERVER_NAME"], e["SERVER_PORT"]), ("example.org", "80"))

    def test_http_fields(self):
        e = self.environ(
            "/env/",
            [
                ("Accept", "a/b"),
                ("Accept", "c/d"),
                ("Cookie", "a=1"),
                ("Cookie", "b=2"),
                ("Authorization", "Bearer xyz"),
                ("X-Under_Score", "dropped"),
                ("Connection", "keep-alive, X-Private"),
                ("X-Private", "secret"),
                ("Keep-Alive", "300"),
                ("TE", "trailers"),
                ("Upgrade", "h2c"),
                ("Proxy-Connection", "keep-alive"),
                ("X-Custom", "é"),
            ],
        )
        self.assertEqual(e["HTTP_ACCEPT"], "a/b, c/d")
        self.assertEqual(e["HTTP_COOKIE"], "a=1; b=2")
        self.assertEqual(e["HTTP_AUTHORIZATION"], "Bearer xyz")  # apps do their own auth
        self.assertEqual(e["HTTP_X_CUSTOM"], "é")  # latin-1 str, as sent
        for hop in (
            "HTTP_CONNECTION",
            "HTTP_KEEP_ALIVE",
            "HTTP_TE",
            "HTTP_UPGRADE",
            "HTTP_PROXY_CONNECTION",
            "HTTP_X_PRIVATE",
            "HTTP_X_UNDER_SCORE",
        ):
            self.assertNotIn(hop, e)

    def test_no_host_names_the_local_socket(self):
        e = self.environ("/env/", version="1.0")
        self.assertEqual((e["SERVER_NAME"], e["SERVER_PORT"]), ("127.0.0.1", "8080"))
        self.assertEqual(e["SERVER_PROTOCOL"], "HTTP/1.0")

    def test_content_type_and_length(self):
        r = self.get("/env/", [("Content-Type", "text/plain")], method="POST", body=b"abc")
        e = json.loads(r.body)
        self.assertEqual((e["CONTENT_TYPE"], e["CONTENT_LENGTH"]), ("text/plain", "3"))
        self.assertNotIn("HTTP_CONTENT_TYPE", e)
        e = self.environ("/env/")
        self.assertNotIn("CONTENT_LENGTH", e)

    def test_remote_user(self):
        e = self.environ("/env/", [("X-Test-User", "alice")])
        self.assertEqual((e["REMOTE_USER"], e["AUTH_TYPE"]), ("alice", "Basic"))
        self.assertNotIn("REMOTE_USER", self.environ("/env/"))


class InputTests(Base):
    BODY = b"line one\nline two\nline three\n" + bytes(range(256)) * 40

    def check(self, query, app="/vecho", headers=(), body=None):
        import hashlib

        body = self.BODY if body is None else body
        r = self.get(f"{app}?{query}", headers, method="POST", body=body)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body.decode(), f"{len(body)} {hashlib.sha256(body).hexdigest()}\n")

    def test_read_all(self):
        self.check("read", app="/echo")

    def test_read_n(self):
        for n in (1, 7, 4096, 1 << 20):
            self.check(f"n={n}")

    def test_readline_and_iteration(self):
        self.check("lines")
        self.check("iter")

    def test_content_length_read(self):
        self.check("length")

    def test_empty_body(self):
        self.check("n=10", body=b"")

    def test_chunked_body(self):
        body = b"hello chunked world" * 100
        chunked = (
            b"".join(
                b"%x\r\n%s\r\n" % (len(body[i : i + 300]), body[i : i + 300])
                for i in range(0, len(body), 300)
            )
            + b"0\r\n\r\n"
        )
        import hashlib

        r = self.get(
            "/vecho?n=100", [("Transfer-Encoding", "chunked")], method="POST", body=chunked
        )
        self.assertEqual(r.body.decode(), f"{len(body)} {hashlib.sha256(body).hexdigest()}\n")

    def test_limit_request_body_before_the_app(self):
        r = self.get("/echo/limited", method="POST", body=b"x" * 11)
        self.assertEqual(r.status, 413)
        self.assertEqual(self.get("/echo/limited", method="POST", body=b"x" * 10).status, 200)
        # The application never ran for the refused body.
        self.assertEqual(self.get("/reader", method="POST", body=b"x" * 11).status, 413)
        self.assertEqual(apps.EVENTS, [])
        self.assertEqual(self.get("/reader", method="POST", body=b"x" * 10).body, b"10\n")
        self.assertEqual(apps.EVENTS, [("reader", "complete", 10)])


class ChunkedBodyTests(Base):
    """A chunked request body is received whole, then the application runs
    with its CONTENT_LENGTH (WSGIChunkedRequest Off, the default)."""

    def chunked_post(self, path, pieces, extra=b""):
        """POST ``pieces`` as chunks, each in a dataReceived of its own."""
        conn = self.site.connect()
        conn.send(
            f"POST {path} HTTP/1.1\r\nHost: localhost\r\n".encode()
            + extra
            + b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for piece in pieces:
            self.assertEqual(conn.responses(), [], "answered before the body's end")
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.send(b"0\r\n\r\n")
        [response] = conn.responses()
        return response

    def test_the_app_sees_the_length_of_a_chunked_body(self):
        pieces = [b"a" * 1000, b"b" * 300_000, b"c" * 7]  # (past MEMORY: spooled)
        r = self.chunked_post("/env/", pieces)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(json.loads(r.body)["CONTENT_LENGTH"], str(300_000 + 1007))

    def test_a_chunked_body_in_one_piece(self):
        chunked = b"5\r\nhello\r\n0\r\n\r\n"
        r = self.get("/env/", [("Transfer-Encoding", "chunked")], method="POST", body=chunked)
        self.assertEqual(json.loads(r.body)["CONTENT_LENGTH"], "5")

    def test_read_whole_then_read_by_the_app(self):
        import hashlib

        pieces = [bytes(range(256)) * 100, b"tail"]
        body = b"".join(pieces)
        r = self.chunked_post("/vecho?length", pieces)
        self.assertEqual(r.body.decode(), f"{len(body)} {hashlib.sha256(body).hexdigest()}\n")

    def test_past_limit_request_body_is_413_and_the_app_never_runs(self):
        r = self.chunked_post("/reader", [b"x" * 6, b"y" * 6])
        self.assertEqual(r.status, 413)
        self.assertEqual(apps.EVENTS, [])

    def test_chunked_request_on_streams_without_a_length(self):
        r = self.get(
            "/streamed/",
            [("Transfer-Encoding", "chunked")],
            method="POST",
            body=b"5\r\nhello\r\n0\r\n\r\n",
        )
        self.assertEqual(r.status, 200, r.body)
        self.assertNotIn("CONTENT_LENGTH", json.loads(r.body))


class ResponseTests(Base):
    def test_list_gets_a_length(self):
        r = self.get("/env/deeper/")
        self.assertEqual(r.header("Content-Length"), "6")
        self.assertIsNone(r.header("Transfer-Encoding"))

    def test_generator_is_chunked_on_1_1(self):
        r = self.get("/gen?4")
        self.assertEqual(r.header("Transfer-Encoding"), "chunked")
        self.assertEqual(r.body, b"piece 0\npiece 1\npiece 2\npiece 3\n")

    def test_generator_on_1_0_is_close_delimited(self):
        conn = self.site.connect()
        conn.request("GET", "/gen?2", version="1.0")
        [r] = conn.responses()
        self.assertEqual(r.body, b"piece 0\npiece 1\n")
        self.assertIsNone(r.header("Transfer-Encoding"))
        self.assertTrue(conn.closed)

    def test_write_callable(self):
        r = self.get("/writer")
        self.assertEqual(r.body, b"one two three")

    def test_custom_reason(self):
        r = self.get("/reason")
        self.assertEqual((r.status, r.reason), (299, "Very Fine"))

    def test_hop_by_hop_dropped_and_logged_once(self):
        conn = self.site.connect()
        conn.request("GET", "/hop")
        conn.request("GET", "/hop")
        first, second = self.site.wait_for(conn, 2)
        for r in (first, second):
            self.assertEqual((r.status, r.body), (200, b"ok\n"))
            self.assertEqual(r.header("X-Fine"), "yes")
            self.assertIsNone(r.header("Transfer-Encoding"))
            self.assertIsNone(r.header("Keep-Alive"))
            self.assertIsNone(r.header("Connection"))
        self.assertFalse(conn.closed)
        logged = [m for m in self.errors() if "hop-by-hop" in m]
        self.assertEqual(len(logged), 3, logged)  # connection, transfer-encoding, keep-alive

    def test_header_injection_is_a_500(self):
        r = self.get("/bad")
        self.assertEqual(r.status, 500)
        self.assertNotIn("evil", r.raw_head)
        self.assertNotIn(b"never", r.body)
        [failure] = self.logged_failures()
        self.assertIn("control character", failure["log_failure"].getTraceback())

    def test_content_length_truncates_extra_output(self):
        r = self.get("/vclosing?name=t&pieces=3&size=4&length=6")
        self.assertEqual((r.status, r.body), (200, b"aaaabb"))
        # The iteration stopped at the length, and close() was called once.
        self.assertEqual(apps.EVENTS, [("t", "piece", 0), ("t", "piece", 1), ("t", "close")])

    def test_short_content_length_closes(self):
        conn = self.site.connect()
        conn.request("GET", "/closing?name=s&pieces=2&size=3&length=10")
        self.assertTrue(conn.closed)
        self.assertIn(b"Content-Length: 10", conn.transport.value())
        self.assertTrue(conn.transport.value().endswith(b"aaabbb"))
        self.assertEqual(apps.EVENTS.count(("s", "close")), 1)

    def test_close_once_on_normal_end(self):
        r = self.get("/vclosing?name=n&pieces=3")
        self.assertEqual(r.body, b"aaaaabbbbbccccc")
        self.assertEqual(apps.EVENTS.count(("n", "close")), 1)

    def test_head_stops_after_the_head(self):
        r = self.get("/vclosing?name=h&pieces=3&length=15", method="HEAD")
        self.assertEqual((r.status, r.header("Content-Length")), (200, "15"))
        self.assertEqual(apps.EVENTS.count(("h", "close")), 1)
        self.assertNotIn(("h", "piece", 2), apps.EVENTS)

    def test_head_without_a_length_claims_none(self):
        r = self.get("/headless", method="HEAD")
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("Content-Length"))
        self.assertIsNone(r.header("Transfer-Encoding"))
        r = self.get("/gen?2", method="HEAD")
        self.assertIsNone(r.header("Content-Length"))
        # An empty GET body is a length 0.
        r = self.get("/closing?pieces=0")
        self.assertEqual(r.header("Content-Length"), "0")

    def test_exception_before_output_is_a_500(self):
        r = self.get("/closing?name=e&pieces=3&fail=0")
        self.assertEqual(r.status, 500)
        self.assertEqual(apps.EVENTS.count(("e", "close")), 1)
        failures = self.logged_failures()
        self.assertIn("/closing", failures[0]["mount"])
        self.assertIn("failed at piece 0", failures[0]["log_failure"].getTraceback())
        # The server carries on.
        self.assertEqual(self.get("/env/deeper/").status, 200)

    def test_exception_after_output_cuts_the_connection(self):
        conn = self.site.connect()
        conn.request("GET", "/closing?name=m&pieces=3&fail=2")
        self.assertTrue(conn.closed)
        self.assertTrue(conn.transport.value().endswith(b"5\r\naaaaa\r\n5\r\nbbbbb\r\n"))
        self.assertEqual(apps.EVENTS.count(("m", "close")), 1)
        self.logged_failures()

    def test_app_raising_at_once(self):
        r = self.get("/raises")
        self.assertEqual(r.status, 500)
        [failure] = self.logged_failures()
        self.assertIn("the application broke", failure["log_failure"].getTraceback())

    def test_exc_info_replaces_the_status_before_output(self):
        r = self.get("/late")
        self.assertEqual((r.status, r.reason, r.body), (503, "Busy Here", b"oops\n"))

    def test_exc_info_after_output_cuts(self):
        conn = self.site.connect()
        conn.request("GET", "/late?after")
        self.assertTrue(conn.closed)
        self.assertIn(b"partial ", conn.transport.value())
        self.assertNotIn(b"oops", conn.transport.value())
        self.logged_failures()

    def test_unloadable_application(self):
        r = self.get("/missing/x")
        self.assertEqual(r.status, 500)
        text = "\n".join(self.errors())
        self.assertIn("could not be loaded", text)
        self.assertIn("nosuchmodule", text)
        self.logged_failures()

    def test_keep_alive_across_responses(self):
        conn = self.site.connect()
        for path in ("/env/deeper/", "/gen?2", "/writer", "/vclosing?name=k"):
            conn.request("GET", path)
        responses = self.site.wait_for(conn, 4)
        self.assertEqual([r.status for r in responses], [200] * 4)
        self.assertFalse(conn.closed)


class FileWrapperTests(Base):
    def setUp(self):
        Base.setUp(self)
        self.path = self.mktemp()
        self.data = bytes(range(256)) * 1000
        with open(self.path, "wb") as f:
            f.write(self.data)

    def test_sent_by_the_engine_and_closed_once(self):
        r = self.get(f"/fw?path={self.path}&skip=1000")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Length"), str(len(self.data) - 1000))
        self.assertEqual(r.body, self.data[1000:])
        self.assertEqual(apps.EVENTS, [("file", "close")])

    def test_head(self):
        r = self.get(f"/fw?path={self.path}", method="HEAD")
        self.assertEqual(
            (r.status, r.header("Content-Length"), r.body), (200, str(len(self.data)), b"")
        )
        self.assertEqual(apps.EVENTS, [("file", "close")])

    def test_wrapped_by_a_middleware_is_iterated(self):
        r = self.get(f"/vfw?path={self.path}")
        self.assertEqual((r.status, r.body), (200, self.data))
        self.assertEqual(r.header("Transfer-Encoding"), "chunked")
        self.assertEqual(apps.EVENTS, [("file", "close")])


class AliasTests(SynchronousTestCase):
    """Alias and Redirect lines win over a WSGIScriptAlias (as mod_alias
    over mod_wsgi), whatever the order of the Plugin lines."""

    def test_alias_and_redirect_below_a_mounted_root(self):
        import os

        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        with open(os.path.join(folder, "f.txt"), "w") as f:
            f.write("aliased file\n")
        site = MemorySite(f"""
            Listen tcp:0:interface=127.0.0.1
            Plugin {plugin_line()}
            Plugin alias
            Plugin uri_to_file
            Plugin serve_file
            DocumentRoot {folder}
            WSGIScriptAlias / {APPS}:hello
            Alias /files/ {folder}/
            Redirect /old /new
        """)
        self.addCleanup(site.close)
        self.assertEqual(site.get("/files/f.txt").body, b"aliased file\n")
        r = site.get("/old/x")
        self.assertEqual((r.status, r.header("Location")), (302, "/new/x"))
        self.assertEqual(site.get("/filesx").body, b"hello\n")
        self.assertEqual(site.get("/").body, b"hello\n")


class FakeClockTests(Base):
    def test_the_fake_clock_gets_the_inline_pool(self):
        from axkit.wsgi.pool import InlinePool

        self.assertEqual(self.site.get("/env/deeper/").body, b"hello\n")
        self.assertIsInstance(self.plugin.pool, InlinePool)
