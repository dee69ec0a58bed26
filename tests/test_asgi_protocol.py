"""Plugin asgi, the protocol in memory: scope, messages, streaming and
backpressure both ways, failures, lifespan (one rule per test)."""

import json
import os

from twisted.trial.unittest import SynchronousTestCase

from axkit.asgi import cycle
from tests.asgi_support import APPS, ASGISite, write_file
from tests.asgiapps import probe


class ScopeTests(SynchronousTestCase):
    def setUp(self):
        self.s = ASGISite(
            self,
            f"""
            Plugin uri_to_file
            Plugin mime_map
            Plugin serve_file
            ASGIAlias /app {APPS}:scope_app
            ASGIAlias /app/deeper {APPS}:body_app
            ASGIAlias /other/ {APPS}:length_app
        """,
        )

    def scope(self, target, headers=()):
        response = self.s.get(target, headers)
        self.assertEqual(response.status, 200, response)
        return json.loads(response.body)

    def test_scope_keys(self):
        scope = self.scope(
            "/app/x%20y/%C3%A9?a=%20b&c", headers=[("X-Custom", "One"), ("X-Custom", "Two")]
        )
        self.assertEqual(scope["type"], "http")
        self.assertEqual(scope["asgi"]["version"], "3.0")
        self.assertEqual(scope["http_version"], "1.1")
        self.assertEqual(scope["method"], "GET")
        self.assertEqual(scope["scheme"], "http")
        self.assertEqual(scope["path"], "/app/x y/\u00e9")
        self.assertEqual(scope["raw_path"], {"bytes": "/app/x%20y/%C3%A9"})
        self.assertEqual(scope["query_string"], {"bytes": "a=%20b&c"})
        self.assertEqual(scope["root_path"], "/app")
        self.assertEqual(scope["client"], ["127.0.0.1", 40000])
        self.assertEqual(scope["server"], ["127.0.0.1", 8080])
        self.assertEqual(scope["state"], {})
        self.assertIn(["x-custom", "One"], scope["headers"])
        self.assertIn(["x-custom", "Two"], scope["headers"])
        self.assertIn(["host", "localhost"], scope["headers"])
        for name, _ in scope["headers"]:
            self.assertEqual(name, name.lower())

    def test_mount_itself_and_no_query(self):
        scope = self.scope("/app")
        self.assertEqual((scope["path"], scope["root_path"]), ("/app", "/app"))
        self.assertEqual(scope["query_string"], {"bytes": ""})

    def test_longest_prefix_wins(self):
        response = self.s.get("/app/deeper/x")
        self.assertEqual(response.body, b"[0]")  # body_app, not scope_app

    def test_segment_boundary(self):
        # /application is not under /app: a file beside the mount answers.
        write_file(self.s.docroot, "application", b"static file\n")
        response = self.s.get("/application")
        self.assertEqual(response.body, b"static file\n")

    def test_static_file_beside(self):
        write_file(self.s.docroot, "s.txt", b"static\n")
        self.assertEqual(self.s.get("/s.txt").body, b"static\n")

    def test_trailing_slash_mount(self):
        response = self.s.get("/other/thing")
        self.assertEqual(response.status, 201)

    def test_trailing_slash_mount_does_not_cover_the_bare_name(self):
        # As Alias and WSGIScriptAlias: /other/ covers /other/..., not /other.
        write_file(self.s.docroot, "other", b"a file named other\n")
        response = self.s.get("/other")
        self.assertEqual(response.body, b"a file named other\n")


class ResponseTests(SynchronousTestCase):
    def setUp(self):
        self.s = ASGISite(
            self,
            f"""
            ASGIAlias /len {APPS}:length_app
            ASGIAlias /stream {APPS}:stream_app
            ASGIAlias /flood {APPS}:flood_app
            ASGIAlias /crash {APPS}:crash_app
            ASGIAlias /late {APPS}:crash_late_app
            ASGIAlias /silent {APPS}:silent_app
            ASGIAlias /wait {APPS}:disconnect_app
        """,
        )

    def test_fields_and_length(self):
        response = self.s.get("/len")
        self.assertEqual(response.status, 201)
        self.assertEqual(response.body, b"hello")
        self.assertEqual(response.header("content-length"), "5")
        self.assertEqual(response.header("x-app"), "yes")
        self.assertEqual(
            [v for k, v in response.headers if k.lower() == "set-cookie"], ["a=1", "b=2"]
        )
        # Framing is the engine's: the app's Connection: close is not sent,
        # nor any hop-by-hop field (RFC 9110 7.6.1) or one Connection names.
        self.assertIsNone(response.header("connection"))
        for name in ("x-hop", "upgrade", "te"):
            self.assertIsNone(response.header(name), name)

    def test_head(self):
        conn = self.s.request("HEAD", "/len")
        raw = conn.transport.value()
        self.assertIn(b"Content-Length: 5\r\n", raw)
        self.assertTrue(raw.endswith(b"\r\n\r\n"))

    def test_streamed_as_sent(self):
        conn = self.s.request("GET", "/stream")
        # The first chunk is on the wire while the app still waits.
        self.assertEqual(probe.SEEN["events"], ["first sent"])
        raw = conn.transport.value()
        self.assertIn(b"Transfer-Encoding: chunked", raw)
        self.assertIn(b"6\r\nfirst;\r\n", raw)
        self.assertNotIn(b"second", raw)
        probe.gate("more").set()
        self.s.pump()
        response = conn.responses()[0]
        self.assertEqual(response.body, b"first;second;last")

    def test_send_waits_while_client_full(self):
        conn = self.s.request("GET", "/flood")
        self.assertEqual(probe.SEEN["events"], [])
        producer = conn.transport.producer
        self.assertIsInstance(producer, cycle.HTTPCycle)
        producer.pauseProducing()  # the client's socket is full
        sent = len(probe.SEEN["events"])
        probe.gate("go").set()
        self.s.pump(50)
        # At most HIGH_WATER more bytes were taken; then send() waits.
        self.assertLessEqual(len(probe.SEEN["events"]) - sent, cycle.HIGH_WATER // 65536 + 1)
        held = len(probe.SEEN["events"])
        self.s.pump(50)
        self.assertEqual(len(probe.SEEN["events"]), held)
        producer.resumeProducing()
        self.s.pump(200)
        self.assertEqual(len(probe.SEEN["events"]), 64)
        response = conn.responses()[0]
        self.assertEqual(len(response.body), 2 + 64 * 65536)

    def test_exception_before_head(self):
        response = self.s.get("/crash")
        self.assertEqual(response.status, 500)
        failures = self.s.failures()
        self.assertEqual(len(failures), 1)
        self.assertEqual(failures[0]["mount"], "/crash")
        self.assertIn("boom from the app", failures[0]["log_failure"].getTraceback())
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        # The server carries on.
        self.assertEqual(self.s.get("/len").status, 201)

    def test_exception_after_head_aborts(self):
        conn = self.s.request("GET", "/late")
        self.assertTrue(
            conn.transport.disconnecting
            or conn.transport.disconnected
            or getattr(conn.transport, "aborted", False)
        )
        self.assertIn(b"partial", conn.transport.value())
        self.assertNotIn(b"0\r\n\r\n", conn.transport.value())
        self.assertEqual(len(self.s.failures()), 1)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_no_response_is_500(self):
        self.assertEqual(self.s.get("/silent").status, 500)
        self.assertTrue(any("without completing" in m for m in self.s.site.messages(plugin="asgi")))

    def test_disconnect(self):
        conn = self.s.request("GET", "/wait")
        self.assertEqual(probe.SEEN["events"], [])
        conn.lose()
        self.s.pump()
        self.assertEqual(probe.SEEN["messages"][-1], {"type": "http.disconnect"})
        self.assertEqual(probe.SEEN["events"], ["disconnected", "send raised ClientDisconnected"])
        self.assertEqual(self.s.failures(), [])


class RequestBodyTests(SynchronousTestCase):
    def setUp(self):
        self.s = ASGISite(
            self,
            f"""
            ASGIAlias /body {APPS}:body_app
            ASGIAlias /slow {APPS}:slow_reader_app
        """,
        )

    def test_whole_body(self):
        conn = self.s.request("POST", "/body", body=b"a" * 1000)
        self.assertEqual(conn.responses()[0].body, b"[1000]")
        self.assertEqual(b"".join(m["body"] for m in probe.SEEN["messages"]), b"a" * 1000)

    def test_chunked_upload_several_messages(self):
        conn = self.s.site.connect()
        conn.send(b"POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        self.s.pump()
        for piece in (b"abc", b"defgh", b"ij"):
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.s.pump()
        conn.send(b"0\r\n\r\n")
        self.s.pump()
        messages = probe.SEEN["messages"]
        self.assertGreaterEqual(len(messages), 3)
        self.assertEqual(b"".join(m["body"] for m in messages), b"abcdefghij")
        self.assertTrue(all(m["more_body"] for m in messages[:-1]))
        self.assertFalse(messages[-1]["more_body"])
        self.assertEqual(conn.responses()[0].status, 200)

    def test_reading_pauses_while_app_busy(self):
        conn = self.s.site.connect()
        conn.send(b"POST /slow HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        conn.send(b"3\r\nabc\r\n")
        self.s.pump()
        self.assertEqual(len(probe.SEEN["messages"]), 1)  # taken; now it is busy
        conn.send(b"3\r\ndef\r\n")
        self.s.pump()
        conn.send(b"3\r\nghi\r\n")
        self.s.pump()
        # The second message waits for the app: reading from the client paused.
        self.assertEqual(conn.transport.producerState, "paused")
        probe.gate("read").set()
        conn.send(b"0\r\n\r\n")
        self.s.pump(60)
        self.assertEqual(conn.responses()[0].body, b"9")
        self.assertEqual(b"".join(m["body"] for m in probe.SEEN["messages"]), b"abcdefghi")


class BodyLimitTests(SynchronousTestCase):
    def setUp(self):
        self.s = ASGISite(
            self,
            f"""
            LimitRequestBody 1000
            ASGIAlias /body {APPS}:body_app
        """,
        )

    def test_100_continue_when_the_app_reads(self):
        conn = self.s.site.connect()
        conn.send(
            b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        self.s.pump()
        self.assertTrue(conn.transport.value().startswith(b"HTTP/1.1 100 Continue\r\n"))
        conn.send(b"hello")
        self.s.pump()
        # One message: the declared length arrived whole (more_body false).
        self.assertTrue(conn.transport.value().endswith(b"[5]"), conn.transport.value())

    def test_declared_length_over_the_limit_is_413_before_the_app(self):
        conn = self.s.request("POST", "/body", body=b"x" * 2000)
        self.assertEqual(conn.responses()[0].status, 413)
        self.assertEqual(probe.SEEN["messages"], [])

    def test_chunked_body_crossing_the_limit(self):
        conn = self.s.site.connect()
        conn.send(b"POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        self.s.pump()
        conn.send(b"258\r\n" + b"a" * 600 + b"\r\n")
        self.s.pump()
        conn.send(b"258\r\n" + b"b" * 600 + b"\r\n")
        self.s.pump()
        self.assertIn(b"413", conn.transport.value().split(b"\r\n")[0])
        # The app hears the end.  (The engine hands over the read that
        # crossed the limit before answering 413: up to one read past it.)
        self.assertEqual(probe.SEEN["messages"][-1], {"type": "http.disconnect"})


class LifespanTests(SynchronousTestCase):
    def test_state_reaches_requests(self):
        s = ASGISite(self, f"ASGIAlias / {APPS}:lifespan_ok\nASGILifespan on\n")
        self.assertEqual(probe.SEEN["events"], ["lifespan.startup"])
        self.assertEqual(s.get("/").body, b"hello from lifespan")

    def test_shutdown(self):
        s = ASGISite(self, f"ASGIAlias / {APPS}:lifespan_ok\n")
        done = []
        s.plugin.shutdown().addCallback(done.append)
        s.pump()
        self.assertEqual(probe.SEEN["events"], ["lifespan.startup", "lifespan.shutdown"])
        self.assertEqual(len(done), 1)

    def test_failed_startup_refuses(self):
        e = self.assertRaises(RuntimeError, ASGISite, self, f"ASGIAlias / {APPS}:lifespan_fails\n")
        self.assertIn("lifespan startup failed: no database", str(e))

    def test_raising_startup_with_lifespan_on(self):
        e = self.assertRaises(
            RuntimeError, ASGISite, self, f"ASGIAlias / {APPS}:lifespan_raises\nASGILifespan on\n"
        )
        self.assertIn("cannot reach the database", str(e))

    def test_auto_carries_on_without_lifespan(self):
        # scope_app returns at once for a lifespan scope: served anyway.
        s = ASGISite(self, f"ASGIAlias / {APPS}:scope_app\n")
        self.assertEqual(s.get("/").status, 200)

    def test_off_never_runs_it(self):
        s = ASGISite(self, f"ASGIAlias / {APPS}:lifespan_ok\nASGILifespan off\n")
        self.assertEqual(probe.SEEN["events"], [])
        self.assertEqual(s.get("/").body, b"none")

    def test_bad_target(self):
        e = self.assertRaises(RuntimeError, ASGISite, self, f"ASGIAlias / {APPS}:no_such_app\n")
        self.assertIn("no_such_app", str(e))


class PrecedenceTests(SynchronousTestCase):
    """Alias and ScriptAlias win over an ASGIAlias mount of "/" whatever the
    order of the Plugin lines (as mod_alias runs before the app modules)."""

    def test_alias_and_scriptalias_under_a_root_mount(self):
        root = self.mktemp()
        os.makedirs(os.path.join(root, "files"))
        os.makedirs(os.path.join(root, "cgi-bin"))
        with open(os.path.join(root, "files", "a.txt"), "w") as f:
            f.write("a file")
        script = os.path.join(root, "cgi-bin", "hi.cgi")
        with open(script, "w") as f:
            f.write('#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\nfrom cgi"\n')
        os.chmod(script, 0o755)
        s = ASGISite(
            self,
            f"""
            ASGIAlias / {APPS}:length_app
            Plugin alias
            Plugin cgi
            Plugin serve_file
            Alias /files/ {root}/files/
            ScriptAlias /cgi-bin/ {root}/cgi-bin/
        """,
        )
        self.assertEqual(s.get("/files/a.txt").body, b"a file")
        self.assertEqual(s.get("/elsewhere").status, 201)  # the app
        # (A CGI program needs a real reactor: here, the chain's order --
        # cgi claims its URL in uri_translation before asgi is asked.)
        server = s.site.config.servers[0]
        chain = server.resolve("/cgi-bin/hi.cgi").chains["uri_translation"]
        names = [plugin.name for plugin, _ in chain]
        self.assertLess(names.index("cgi"), names.index("asgi"))
        self.assertLess(names.index("alias"), names.index("asgi"))


class LongestMountTests(SynchronousTestCase):
    """The longest prefix wins across WSGIScriptAlias, ScriptAlias and
    ASGIAlias, whichever plugin's uri_translation runs first (cgi runs
    before asgi; wsgi and asgi in the order of their Plugin lines: ASGISite
    loads asgi first, the WSGI site below loads wsgi first)."""

    def test_an_asgi_app_below_a_wsgi_site(self):
        # A FastAPI app at /api below a Django site at /.
        s = ASGISite(
            self,
            f"""
            Plugin wsgi
            WSGIScriptAlias / tests.wsgiapps.apps:hello
            ASGIAlias /api {APPS}:length_app
        """,
        )
        self.assertEqual(s.get("/api/x").status, 201)  # the ASGI app
        self.assertEqual(s.get("/api").status, 201)
        r = s.get("/apix")
        self.assertEqual((r.status, r.body), (200, b"hello\n"))  # the WSGI app
        self.assertEqual(s.get("/").body, b"hello\n")

    def test_a_wsgi_mount_switched_off_does_not_count(self):
        s = ASGISite(
            self,
            f"""
            Plugin wsgi
            ASGIAlias / {APPS}:length_app
            WSGIScriptAlias /old tests.wsgiapps.apps:hello
            WSGIScriptAlias /old/new off
        """,
        )
        self.assertEqual(s.get("/old/x").body, b"hello\n")
        self.assertEqual(s.get("/old/new/x").status, 201)  # not WSGI: the ASGI app at /

    def test_an_asgi_app_below_a_cgi_program_mounted_at_the_root(self):
        root = self.mktemp()
        os.makedirs(root)
        script = os.path.join(root, "site.cgi")
        with open(script, "w") as f:
            f.write('#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\nfrom cgi"\n')
        os.chmod(script, 0o755)
        s = ASGISite(
            self,
            f"""
            Plugin cgi
            ScriptAlias / {script}
            ASGIAlias /api {APPS}:length_app
        """,
        )
        self.assertEqual(s.get("/api/x").status, 201)
        # (The program itself needs a real reactor: that cgi claims the
        # rest is the chain's business.)
        server = s.site.config.servers[0]
        chain = server.resolve("/other").chains["uri_translation"]
        names = [plugin.name for plugin, _ in chain]
        self.assertLess(names.index("cgi"), names.index("asgi"))


class TargetTests(SynchronousTestCase):
    """ASGIAlias targets: the grammar WSGIScriptAlias uses (axkit.apploader)."""

    def test_a_file_with_a_named_callable_and_a_factory(self):
        folder = self.mktemp()
        os.makedirs(folder)
        with open(os.path.join(folder, "site_app.py"), "w") as f:
            f.write(
                "from tests.asgiapps.hello import app as hello\ndef make():\n    return hello\n"
            )
        for target in ("site_app.py:hello", "site_app.py:make()"):
            s = ASGISite(self, f"ASGIAlias /x {os.path.join(folder, target)}\n")
            self.assertEqual(s.get("/x").body, b"Hello, world!\n", target)

    def test_a_missing_file_is_a_config_error_with_its_line(self):
        from axkit.config.errors import ConfigErrors

        e = self.assertRaises(ConfigErrors, ASGISite, self, "ASGIAlias / /no/such/app.py\n")
        self.assertIn(":4:", str(e))
        self.assertIn("/no/such/app.py does not exist", str(e))


class LongerAppMountTests(SynchronousTestCase):
    """axkit.http.paths.longer_app_mount, which every application plugin asks
    before it claims a path (so the order of Plugin lines does not matter)."""

    class Conf:
        def __init__(self, **tables):
            self.script_alias = tables.get("cgi", {})
            self.wsgi_script_alias = tables.get("wsgi", {})
            self.asgi_alias = tables.get("asgi", {})

    def test_a_longer_mount_of_another_kind(self):
        from axkit.http.paths import longer_app_mount

        conf = self.Conf(wsgi={"/": "site.wsgi"}, asgi={"/api": "app:app"})
        self.assertTrue(longer_app_mount(conf, "/api/x", "/"))  # WSGI at / yields
        self.assertTrue(longer_app_mount(conf, "/api", "/"))
        self.assertFalse(longer_app_mount(conf, "/apix", "/"))  # whole segments only
        self.assertFalse(longer_app_mount(conf, "/api/x", "/api"))  # ASGI keeps it

    def test_a_wsgi_mount_switched_off_below_is_no_mount(self):
        from axkit.http.paths import longer_app_mount

        conf = self.Conf(
            asgi={"/": "app:app"}, wsgi={"/old": "old.wsgi", "/old/new": "off"}, cgi={}
        )
        self.assertTrue(longer_app_mount(conf, "/old/x", "/"))
        self.assertFalse(longer_app_mount(conf, "/old/new/x", "/"))
        self.assertTrue(
            longer_app_mount(self.Conf(cgi={"/cgi-bin/": "/srv/cgi"}), "/cgi-bin/a", "/")
        )
