"""The wsgi package's parts on their own: wsgi.input's memory window,
spool file and pauses; the application pool's queue; TARGET parsing and
loading; the config's directives."""

import os
import threading

from twisted.trial.unittest import SynchronousTestCase

from axkit.config.errors import ConfigErrors
from axkit.testing import load_config
from axkit.wsgi import input as wsgi_input
from axkit.wsgi import loader
from axkit.wsgi.input import ClientDisconnected, Input
from axkit.wsgi.pool import AppPool

from .test_wsgi_protocol import plugin_line


class FakeRequest:
    finished = False

    def __init__(self):
        self.calls = []
        self.consumer = None

    def stream_body(self, on_data, on_end):
        self.consumer = (on_data, on_end)

    def pause_body(self):
        self.calls.append("pause")

    def resume_body(self):
        self.calls.append("resume")


class InputTests(SynchronousTestCase):
    def setUp(self):
        self.patch(wsgi_input, "MEMORY", 1000)
        self.patch(wsgi_input, "SPOOL", 5000)
        self.request = FakeRequest()
        self.input = Input(self.request, lambda fn, *a: fn(*a), threaded=False)
        self.addCleanup(self.input.close)
        self.input.start()

    def feed(self, data):
        self.request.consumer[0](data)

    def test_memory_then_spool_then_memory_in_order(self):
        pieces = [bytes([65 + i]) * 300 for i in range(10)]
        for p in pieces[:6]:
            self.feed(p)
        # 900 bytes in memory; the rest went to the spool file.
        self.assertEqual(self.input._memory_bytes, 900)
        self.assertIsNotNone(self.input._fd)
        self.assertEqual(self.input.read(1000), b"".join(pieces)[:1000])
        self.assertEqual(self.input.read(800), b"".join(pieces)[1000:1800])
        # The spool drained: new data goes to memory again.
        self.feed(pieces[6])
        self.assertEqual(self.input._memory_bytes, 300)
        for p in pieces[7:]:
            self.feed(p)
        self.request.consumer[1]()
        self.assertEqual(self.input.read(10**6), b"".join(pieces)[1800:])
        self.assertEqual(self.input.read(10), b"")

    def test_client_paused_past_the_spool_and_resumed_at_half(self):
        for _ in range(6):
            self.feed(b"x" * 1000)
        self.assertEqual(self.request.calls, ["pause"])
        self.input.read(2000)
        self.assertEqual(self.request.calls, ["pause"])  # 4000 unread > 2500
        self.input.read(1600)
        self.assertEqual(self.request.calls, ["pause", "resume"])

    def test_readline_across_pieces(self):
        for p in (b"ab", b"c\nde", b"f\n", b"tail"):
            self.feed(p)
        self.request.consumer[1]()
        self.assertEqual(list(self.input), [b"abc\n", b"def\n", b"tail"])

    def test_readline_limit(self):
        self.feed(b"abcdef\n")
        self.request.consumer[1]()
        self.assertEqual(self.input.readline(4), b"abcd")
        self.assertEqual(self.input.readline(), b"ef\n")
        self.assertEqual(self.input.readline(), b"")

    def test_broken_body_raises(self):
        self.feed(b"abc")
        self.input.broken("client gone")
        self.assertEqual(self.input.read(3), b"abc")
        self.assertRaises(ClientDisconnected, self.input.read, 1)

    def test_body_end_is_not_broken(self):
        self.feed(b"abc")
        self.request.consumer[1]()
        self.input.broken("the response ended")
        self.assertEqual(self.input.read(10), b"abc")
        self.assertEqual(self.input.read(10), b"")

    def test_waits_for_data_on_a_thread(self):
        request = FakeRequest()
        stream = Input(request, lambda fn, *a: fn(*a))
        stream.start()
        got = []
        reader = threading.Thread(target=lambda: got.append(stream.read(6)))
        reader.start()
        request.consumer[0](b"abc")
        request.consumer[0](b"def")
        reader.join(5)
        self.assertEqual(got, [b"abcdef"])
        stream.close()


class PoolTests(SynchronousTestCase):
    def test_queue_limit(self):
        pool = AppPool(1, 1)
        self.addCleanup(pool.stop)
        gate = threading.Event()
        started = threading.Event()
        self.addCleanup(gate.set)

        def blocked():
            started.set()
            gate.wait(10)

        self.assertTrue(pool.submit(blocked))
        self.assertTrue(started.wait(5))
        self.assertEqual((pool.busy, pool.depth), (1, 0))
        done = threading.Event()
        self.assertTrue(pool.submit(done.set))
        self.assertEqual(pool.depth, 1)
        self.assertFalse(pool.submit(done.set))
        self.assertEqual(pool.refused, 1)
        gate.set()
        self.assertTrue(done.wait(5))


class TargetTests(SynchronousTestCase):
    def parse(self, word, base=None):
        from axkit.config.types import Context

        return loader.target(word, Context("x.conf", 1, base or os.getcwd()))

    def test_forms(self):
        folder = self.mktemp()
        os.makedirs(folder)
        for name in ("app.wsgi", "app.py"):
            with open(os.path.join(folder, name), "w") as f:
                f.write(
                    "def application(e, s):\n    pass\napp = application\n"
                    "def make():\n    return application\n"
                )
        t = self.parse("app.wsgi", folder)
        self.assertEqual((t.kind, t.name), ("file", None))  # (the default: application)
        self.assertEqual(t.where, os.path.join(os.path.abspath(folder), "app.wsgi"))
        self.assertEqual(loader.load(t).__name__, "application")
        self.assertEqual(self.parse("app.py:app", folder).name, "app")
        self.assertTrue(callable(loader.load(self.parse("app.py:make()", folder))))
        t = self.parse("djsite.wsgi:application", folder)
        self.assertEqual((t.kind, t.where), ("module", "djsite.wsgi"))
        self.assertEqual(self.parse("OFF"), loader.OFF)

    def test_refused(self):
        from axkit.config import ConfigError

        for word in ("nosuch.wsgi", "/no/such/file.py", "module", "bad-name:app", "mod:not a name"):
            self.assertRaises(ConfigError, self.parse, word)

    def test_config(self):
        config = load_config(f"""
            Plugin {plugin_line()}
            WSGIThreads 3
            WSGIQueueLimit 7
            WSGIPythonPath /a /b
            WSGIScriptAlias /x tests.wsgiapps.apps:hello
        """)
        conf = config.global_resolved.conf
        self.assertEqual((conf.wsgi_threads, conf.wsgi_queue_limit), (3, 7))
        self.assertEqual(list(conf.wsgi_script_alias), ["/x"])
        with self.assertRaises(ConfigErrors) as e:
            load_config(f"""
                Plugin {plugin_line()}
                <Location /x>
                    WSGIScriptAlias /x tests.wsgiapps.apps:hello
                </Location>
                WSGIScriptAlias /y nosuchfile.py
            """)
        self.assertEqual(len(e.exception.errors), 2)


class EnvironTests(SynchronousTestCase):
    def test_https_and_user(self):
        from axkit.http.headers import Headers
        from axkit.wsgi.environ import build_environ, mount_base

        class Req:
            method = "POST"
            query = None
            target = "/a/b"
            version = "1.1"
            client_address = "10.0.0.1"
            client_port = 5555
            secure = True
            content_length = 0
            user = "bob"
            auth_type = "Digest"
            server = None
            local_address = ("10.0.0.2", 8443)  # behind a port map: the Host rule wins
            headers = Headers([("host", "example.org"), ("content-length", "0")], lowered=True)
            connection_notes = {}

        env = build_environ(Req(), mount_base("/a", None, None), "/b", None)
        self.assertEqual((env["wsgi.url_scheme"], env["HTTPS"]), ("https", "on"))
        self.assertEqual((env["SERVER_NAME"], env["SERVER_PORT"]), ("example.org", "443"))
        self.assertEqual((env["REMOTE_USER"], env["AUTH_TYPE"]), ("bob", "Digest"))
        self.assertEqual((env["QUERY_STRING"], env["CONTENT_LENGTH"]), ("", "0"))
        self.assertEqual((env["SCRIPT_NAME"], env["PATH_INFO"]), ("/a", "/b"))


class HeaderInjectionTests(SynchronousTestCase):
    """The engine's own refusal of a header (HeaderInjection) is a 500."""

    def test_refused_head_is_a_500(self):
        from axkit.http.headers import Headers
        from axkit.http.request import HeaderInjection
        from axkit.wsgi.exchange import ClientGone, Exchange

        class Req:
            finished = False
            headers_sent = False
            head_only = False
            method = "GET"
            target = "/"
            notes = {}
            status = 200
            reason_text = None

            def __init__(self):
                self.response_headers = Headers()
                self.sent = []

            def watch(self, watcher):
                pass

            def add_handler_fields(self, fields):
                self.response_headers.extend(fields)

            def start_response(self, status, length=None):
                raise HeaderInjection("refusing to send header")

            def send_error(self, status):
                self.sent.append(status)
                self.finished = True

        class Mount:
            label = "/m (x)"

        request = Req()
        exchange = Exchange(request, Mount(), lambda fn, *a: fn(*a), threaded=False)
        exchange.emit(lambda: exchange.head(200, None, [("X-A", "b")], None))
        self.assertEqual(request.sent, [500])
        self.assertEqual(list(request.response_headers), [])
        self.assertRaises(ClientGone, exchange.emit, b"more", 4)
        self.flushLoggedErrors()
