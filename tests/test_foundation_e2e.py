"""End to end: the real service on 127.0.0.1, fetched with treq; and the real
`twistd axkit` entry point as a subprocess."""

import os
import shutil
import signal
import subprocess
import tempfile

import treq
from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from axkit.testing import TWISTD_COMMAND, free_port, http_pool, start_server, twistd_env

from .rawclient import exchange, port_open, wait_for_port

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TWISTD = TWISTD_COMMAND


def make_docroot():
    root = tempfile.mkdtemp()
    os.makedirs(os.path.join(root, "sub"))
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<h1>index</h1>\n")
    with open(os.path.join(root, "sub", "a b<c>.txt"), "w") as f:
        f.write("spaced\n")
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(os.urandom(300 * 1024))
    return root


class ServiceTests(TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.pool = http_pool(self)
        self.root = make_docroot()
        self.addCleanup(shutil.rmtree, self.root)
        self.server = yield start_server(f"""
            DocumentRoot "{self.root}"
            Include "{REPO}/conf.d/mime.conf"
            Plugin uri_to_file
            Plugin mime_map
            Plugin serve_dir
            Plugin serve_file
            <Location /sub>
                DirectoryListing On
            </Location>
        """)
        self.addCleanup(self.server.stop)

    @defer.inlineCallbacks
    def test_file_with_headers(self):
        response = yield treq.get(self.server.url("/index.html"), pool=self.pool)
        body = yield response.content()
        self.assertEqual(response.code, 200)
        self.assertEqual(body, b"<h1>index</h1>\n")
        h = response.headers
        self.assertEqual(h.getRawHeaders("content-type"), ["text/html"])
        self.assertEqual(response.length, 15)  # Content-Length (the client consumes it)
        self.assertTrue(h.getRawHeaders("server")[0].startswith("axkit/"))
        self.assertTrue(h.getRawHeaders("date")[0].endswith(" GMT"))
        self.assertTrue(h.getRawHeaders("last-modified")[0].endswith(" GMT"))

    @defer.inlineCallbacks
    def test_directory_index_listing_and_redirect(self):
        response = yield treq.get(self.server.url("/"), pool=self.pool)
        self.assertEqual((yield response.content()), b"<h1>index</h1>\n")
        response = yield treq.get(
            self.server.url("/sub?x=1"), allow_redirects=False, pool=self.pool
        )
        self.assertEqual(response.code, 301)
        self.assertEqual(response.headers.getRawHeaders("location"), ["/sub/?x=1"])
        response = yield treq.get(self.server.url("/sub/"), pool=self.pool)
        page = yield response.text()
        self.assertEqual(response.code, 200)
        self.assertIn('<a href="a%20b%3Cc%3E.txt">a b&lt;c&gt;.txt</a>', page)

    @defer.inlineCallbacks
    def test_big_file_streams_whole(self):
        response = yield treq.get(self.server.url("/big.bin"), pool=self.pool)
        body = yield response.content()
        with open(os.path.join(self.root, "big.bin"), "rb") as f:
            self.assertEqual(body, f.read())

    @defer.inlineCallbacks
    def test_head_missing_and_escape_attempts(self):
        response = yield treq.head(self.server.url("/index.html"), pool=self.pool)
        self.assertEqual(response.code, 200)
        self.assertEqual((yield response.content()), b"")
        response = yield treq.get(self.server.url("/nope.html"), pool=self.pool)
        self.assertEqual(response.code, 404)
        yield response.content()
        response = yield treq.get(self.server.url("/%2e%2e/%2e%2e/etc/passwd"), pool=self.pool)
        self.assertEqual(response.code, 400)
        yield response.content()

    @defer.inlineCallbacks
    def test_keep_alive_and_pipelining_over_a_socket(self):
        port = self.server.port
        data = yield exchange(
            port,
            b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"
            b"HEAD /index.html HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /sub/ HTTP/1.0\r\n\r\n",
        )
        from axkit.testing import parse_responses

        responses = parse_responses(data, ["GET", "HEAD", "GET"])
        self.assertEqual([r.status for r in responses], [200, 200, 200])
        self.assertEqual(responses[0].body, b"<h1>index</h1>\n")
        self.assertEqual(responses[1].body, b"")
        self.assertEqual(responses[1].header("content-length"), "15")
        self.assertIn(b"Index of /sub/", responses[2].body)
        self.assertEqual(responses[2].header("connection"), "close")

    @defer.inlineCallbacks
    def test_malformed_request_gets_400_and_close(self):
        data = yield exchange(self.server.port, b"GARBAGE\r\n\r\n")
        self.assertTrue(data.startswith(b"HTTP/1.1 400 Bad Request\r\n"), data)
        self.assertIn(b"Connection: close\r\n", data)


class TwistdTests(TestCase):
    """`twistd axkit` as a user runs it."""

    def setUp(self):
        self.pool = http_pool(self)
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)

    def write_config(self, text):
        path = os.path.join(self.dir, "site.conf")
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_twistd(self, *args):
        return subprocess.run(
            TWISTD + list(args),
            env=twistd_env(),
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def test_help_shows_config(self):
        result = self.run_twistd("axkit", "--help")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("--config", result.stdout)

    def test_config_typo_is_reported_as_file_line_and_nothing_listens(self):
        port = free_port()
        path = self.write_config(
            f"Listen tcp:{port}:interface=127.0.0.1\nPlugin uri_to_file\nDocumentRot /srv\n"
        )
        result = self.run_twistd("-n", "--pidfile=", "axkit", "--config", path)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(
            f'{path}:3: unknown directive "DocumentRot" (did you mean "DocumentRoot"?)',
            result.stderr,
        )
        self.assertFalse(port_open(port, timeout=1))

    def test_check_flag(self):
        path = self.write_config("Plugin uri_to_file\nDirectoryIndex a.html\n")
        result = self.run_twistd("axkit", "--config", path, "--check")
        self.assertEqual(result.returncode, 0, result.stderr)
        bad = self.write_config("Plugin uri_to_file\nDirectoryIndex\n")
        result = self.run_twistd("axkit", "--config", bad, "--check")
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"{bad}:2: DirectoryIndex takes at least 1 argument, got 0", result.stderr)

    @defer.inlineCallbacks
    def test_twistd_serves_a_file_from_a_config(self):
        docroot = make_docroot()
        self.addCleanup(shutil.rmtree, docroot)
        port = free_port()
        path = self.write_config(
            f"Listen tcp:{port}:interface=127.0.0.1\nDocumentRoot {docroot}\n"
            f"Include {REPO}/conf.d/*.conf\n"
            "Plugin uri_to_file\nPlugin mime_map\nPlugin serve_file\n"
        )
        proc = subprocess.Popen(
            TWISTD + ["-n", "--pidfile=", "axkit", "--config", path],
            env=twistd_env(),
            cwd=self.dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.addCleanup(_stop, proc)
        yield wait_for_port(port, process=proc)
        response = yield treq.get(f"http://127.0.0.1:{port}/index.html", pool=self.pool)
        self.assertEqual(response.code, 200)
        self.assertEqual((yield response.content()), b"<h1>index</h1>\n")
        self.assertEqual(
            response.headers.getRawHeaders("content-type"), ["text/html; charset=utf-8"]
        )  # conf.d/static.conf: AddDefaultCharset
        proc.send_signal(signal.SIGTERM)
        out, err = yield _communicate(proc)
        self.assertIn(b'"GET /index.html HTTP/1.1" 200 15', out)
        self.assertIn(b"axkit listening on", err)

    @defer.inlineCallbacks
    def test_zero_config_serves_the_current_directory(self):
        # The built-in config's port is fixed (8080), and other test runs on
        # this machine may hold it: wait for *our* twistd's "listening" line
        # (or its exit: skip), and serve a token no other server has.
        token = os.urandom(8).hex().encode()
        with open(os.path.join(self.dir, "hello.txt"), "wb") as f:
            f.write(b"zero config " + token + b"\n")
        if port_open(8080):
            self.skipTest("port 8080 is busy on this machine")
        err_path = os.path.join(self.dir, "twistd.err")
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(
                TWISTD + ["-n", "--pidfile=", "axkit"],
                env=twistd_env(),
                cwd=self.dir,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        self.addCleanup(_stop, proc)
        waited = 0.0
        while True:
            with open(err_path, "rb") as f:
                log = f.read()
            if b"axkit listening on" in log:
                break
            if proc.poll() is not None:
                if b"Address already in use" in log:
                    self.skipTest("port 8080 was taken by another process meanwhile")
                self.fail(f"twistd exited {proc.returncode}: {log.decode(errors='replace')}")
            if waited > 20:
                self.fail("twistd did not listen within 20s")
            yield task.deferLater(reactor, 0.1, lambda: None)
            waited += 0.1
        response = yield treq.get("http://127.0.0.1:8080/hello.txt", pool=self.pool)
        self.assertEqual((yield response.content()), b"zero config " + token + b"\n")
        response = yield treq.get("http://127.0.0.1:8080/", pool=self.pool)
        self.assertIn(b"hello.txt", (yield response.content()))


def _communicate(proc):
    from twisted.internet.threads import deferToThread

    return deferToThread(proc.communicate, timeout=30)


def _stop(proc):
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
