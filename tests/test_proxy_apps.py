"""A real application server behind ProxyPass through a real ``twistd axkit``:
gunicorn (gthread workers, keep-alive) serving a WSGI app, over TCP and
over a UNIX socket (Apache's ``unix:/path|http://host/`` form)."""

import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from axkit.testing import TwistdProcess, free_port

APP = """
import hashlib, json

def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path.endswith("/stream"):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (b"%06d\\n" % i for i in range(20000))   # no length: chunked
    if path.endswith("/go"):
        start_response("302 Found", [("Location", "http://" + environ["HTTP_HOST"] + "/app/there")])
        return [b""]
    body = environ["wsgi.input"].read()
    seen = {
        "method": environ["REQUEST_METHOD"],
        "path": path,
        "query": environ.get("QUERY_STRING", ""),
        "host": environ.get("HTTP_HOST"),
        "xff": environ.get("HTTP_X_FORWARDED_FOR"),
        "xfp": environ.get("HTTP_X_FORWARDED_PROTO"),
        "te": environ.get("HTTP_TE"),
        "length": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    data = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(data)))])
    return [data]
"""


def wait_for(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


class BehindGunicorn(SynchronousTestCase):
    def setUp(self):
        try:
            import gunicorn  # noqa: F401
        except ImportError:
            raise SkipTest("gunicorn is not installed (pip install -e '.[test]')")
        work = os.path.abspath(self.mktemp())
        os.makedirs(work)
        with open(os.path.join(work, "wsgiapp.py"), "w") as f:
            f.write(APP)
        # (A short folder: a UNIX socket's path has at most 107 bytes.)
        short = tempfile.mkdtemp(prefix="axg")
        self.addCleanup(shutil.rmtree, short, True)
        self.sock = os.path.join(short, "app.sock")
        gport = free_port()
        self.gunicorn = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--chdir",
                work,
                "-k",
                "gthread",
                "--threads",
                "4",
                "--workers",
                "1",
                "--keep-alive",
                "30",
                "--bind",
                f"127.0.0.1:{gport}",
                "--bind",
                f"unix:{self.sock}",
                "--error-logfile",
                os.path.join(work, "gunicorn.log"),
                "wsgiapp:app",
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ, HOME=short),  # (gunicorn's control socket goes there)
        )
        self.addCleanup(self._stop_gunicorn)

        def listening():
            socket.create_connection(("127.0.0.1", gport), timeout=1).close()
            return os.path.exists(self.sock)

        self.assertTrue(wait_for(listening), "gunicorn did not start")
        conf = os.path.join(work, "axkit.conf")
        with open(conf, "w") as f:
            f.write(
                "Listen tcp:0:interface=127.0.0.1\n"
                "Plugin proxy\n"
                f"ProxyPass /tcp/ http://127.0.0.1:{gport}/app/ timeout=10\n"
                f"ProxyPassReverse /tcp/ http://127.0.0.1:{gport}/app/\n"
                f"ProxyPass /sock/ unix:{self.sock}|http://localhost/app/ timeout=10\n"
            )
        self.server = TwistdProcess(conf)
        self.addCleanup(self.server.stop)

    def _stop_gunicorn(self):
        self.gunicorn.terminate()
        try:
            self.gunicorn.wait(10)
        except subprocess.TimeoutExpired:
            self.gunicorn.kill()
            self.gunicorn.wait(5)

    def request(self, method, path, body=None, headers=None, conn=None):
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=20)
        headers = headers or {}
        chunked = headers.get("Transfer-Encoding") == "chunked"
        conn.request(method, path, body=body, headers=headers, encode_chunked=chunked)
        response = conn.getresponse()
        return response, response.read()

    def test_get_post_and_chunked_upload_over_tcp_and_unix(self):
        payload = os.urandom(3 * 1024 * 1024)
        digest = hashlib.sha256(payload).hexdigest()
        for prefix, host in (("/tcp/", None), ("/sock/", "localhost")):
            conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=20)
            response, body = self.request("GET", prefix + "x%20y?a=1", conn=conn)
            self.assertEqual(response.status, 200, body)
            seen = json.loads(body)
            self.assertEqual(
                (seen["method"], seen["path"], seen["query"]), ("GET", "/app/x y", "a=1")
            )
            self.assertEqual(seen["xff"], "127.0.0.1")
            self.assertEqual(seen["xfp"], "http")
            if host is not None:
                self.assertEqual(seen["host"], host)
            response, body = self.request("POST", prefix + "up", body=payload, conn=conn)
            self.assertEqual(json.loads(body)["sha256"], digest)
            # A chunked upload: gunicorn reads it through the proxy's own framing.
            pieces = iter([payload[:100000], payload[100000:]])
            response, body = self.request(
                "PUT",
                prefix + "up",
                body=pieces,
                headers={"Transfer-Encoding": "chunked"},
                conn=conn,
            )
            self.assertEqual(response.status, 200, body[:300])
            seen = json.loads(body)
            self.assertEqual((seen["method"], seen["sha256"]), ("PUT", digest))
            response, body = self.request("HEAD", prefix + "h", conn=conn)
            self.assertEqual((response.status, body), (200, b""))
            conn.close()

    def test_streamed_answer_and_redirect(self):
        response, body = self.request("GET", "/tcp/stream")
        self.assertEqual(response.status, 200)
        self.assertEqual(body, b"".join(b"%06d\n" % i for i in range(20000)))
        response, body = self.request("GET", "/tcp/go")
        self.assertEqual(response.status, 302)
        # ProxyPassReverse: gunicorn's own URL becomes ours.
        self.assertEqual(
            response.getheader("Location"), f"http://127.0.0.1:{self.server.port}/tcp/there"
        )
