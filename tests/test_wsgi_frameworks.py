"""Real applications, run unchanged under `twistd -n axkit`: a Flask app
(a form POST, a 20 MB multipart upload checked by digest, a streamed
response) and a Django project (the admin's login with its CSRF token and
session cookie, then the admin index).  Skipped without flask / django."""

import hashlib
import http.client
import json
import os
import re
import subprocess
import sys
import urllib.parse

from twisted.trial.unittest import SkipTest, TestCase

from axkit.testing import TwistdProcess

from .test_wsgi_protocol import plugin_line

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wsgiapps")


def have(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def serve(lines, env=None):
    """twistd -n axkit with a config of ``lines`` (stop() it)."""
    import tempfile

    folder = tempfile.mkdtemp(prefix="axkit-wsgi-")
    path = os.path.join(folder, "site.conf")
    with open(path, "w") as f:
        f.write(
            f"Listen tcp:0:interface=127.0.0.1\nPlugin {plugin_line()}\n" + "\n".join(lines) + "\n"
        )
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        server = TwistdProcess(path)
    finally:
        os.environ.clear()
        os.environ.update(old)
    return server


def fetch(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


def fetch_chunked(port, path, pieces, headers=None):
    """POST ``pieces`` as a chunked body (no Content-Length)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", path, body=pieces, headers=headers or {}, encode_chunked=True)
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


class FlaskTests(TestCase):
    def test_flask_app(self):
        """One server (a twistd start is the slow part) for every check."""
        if not have("flask"):
            raise SkipTest("flask is not installed (pip install '.[test]')")
        self.server = serve([f"WSGIScriptAlias / {HERE}/flaskapp.py:app"])
        self.addCleanup(self.server.stop)
        self.port = self.server.port
        self.check_form_post()
        self.check_multipart_upload_of_20_mb()
        self.check_streamed_response()
        self.check_chunked_upload_of_20_mb()
        self.check_view_error_is_a_500_and_the_server_carries_on()

    def check_form_post(self):
        body = urllib.parse.urlencode([("name", "Zoë"), ("tag", "a"), ("tag", "b")])
        response, data = fetch(
            self.port, "POST", "/form", body, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        self.assertEqual(response.status, 200, data)
        self.assertEqual(data.decode("utf-8"), "hello Zoë, ['a', 'b']")

    def check_multipart_upload_of_20_mb(self):
        payload = os.urandom(20 * 1024 * 1024)
        boundary = "axkitboundary7d93"
        body = b"".join(
            [
                f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\n'
                "big one\r\n".encode(),
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="blob.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode(),
                payload,
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
        response, data = fetch(
            self.port,
            "POST",
            "/upload",
            body,
            {"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        self.assertEqual(response.status, 200, data[:300])
        self.assertEqual(
            json.loads(data),
            {
                "name": "blob.bin",
                "size": len(payload),
                "note": "big one",
                "sha256": hashlib.sha256(payload).hexdigest(),
            },
        )

    def check_chunked_upload_of_20_mb(self):
        # Past the spool's pause point (16 MiB): received whole, then the
        # view runs with its Content-Length.
        payload = os.urandom(20 * 1024 * 1024)
        pieces = (payload[i : i + (1 << 20)] for i in range(0, len(payload), 1 << 20))
        response, data = fetch_chunked(self.port, "/digest", pieces)
        self.assertEqual(response.status, 200, data[:300])
        self.assertEqual(
            json.loads(data),
            {
                "length": len(payload),
                "size": len(payload),
                "sha256": hashlib.sha256(payload).hexdigest(),
            },
        )

    def check_streamed_response(self):
        response, data = fetch(self.port, "GET", "/stream")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.getheader("Transfer-Encoding"), "chunked")
        self.assertEqual(data, b"".join(b"line %d\n" % i for i in range(5)))

    def check_view_error_is_a_500_and_the_server_carries_on(self):
        response, data = fetch(self.port, "GET", "/boom")
        self.assertEqual(response.status, 500)
        response, data = fetch(self.port, "GET", "/")
        self.assertEqual(response.status, 200)
        self.assertIn(b"<form", data)


class DjangoTests(TestCase):
    def setUp(self):
        if not have("django"):
            raise SkipTest("django is not installed (pip install '.[test]')")
        project = os.path.join(HERE, "djangoproj")
        db = os.path.abspath(self.mktemp()) + ".sqlite3"
        env = {"AXKIT_TEST_DJANGO_DB": db, "DJANGO_SETTINGS_MODULE": "djsite.settings"}
        # The project's database, as `manage.py migrate` and
        # `createsuperuser` would make it.
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import django; django.setup()\n"
                "from django.core.management import call_command\n"
                "call_command('migrate', verbosity=0)\n"
                "from django.contrib.auth.models import User\n"
                "User.objects.create_superuser('admin', 'a@example.com', 's3cret')\n",
            ],
            check=True,
            cwd=project,
            env=dict(os.environ, **env, PYTHONPATH=project),
        )
        self.server = serve(
            [f"WSGIPythonPath {project}", "WSGIScriptAlias / djsite.wsgi:application"], env
        )
        self.addCleanup(self.server.stop)
        self.port = self.server.port

    def test_admin_login_then_index(self):
        response, data = fetch(self.port, "GET", "/admin/login/?next=/admin/")
        self.assertEqual(response.status, 200, data[:500])
        csrf_cookie = re.search(r"csrftoken=([^;]+)", response.getheader("Set-Cookie"))[1]
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', data)[1].decode()
        body = urllib.parse.urlencode(
            {
                "csrfmiddlewaretoken": token,
                "username": "admin",
                "password": "s3cret",
                "next": "/admin/",
            }
        )
        response, data = fetch(
            self.port,
            "POST",
            "/admin/login/?next=/admin/",
            body,
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={csrf_cookie}",
            },
        )
        self.assertEqual(response.status, 302, data[:500])
        self.assertEqual(response.getheader("Location"), "/admin/")
        cookies = response.getheader("Set-Cookie")
        session = re.search(r"sessionid=([^;]+)", cookies)[1]
        response, data = fetch(
            self.port,
            "GET",
            "/admin/",
            headers={"Cookie": f"csrftoken={csrf_cookie}; sessionid={session}"},
        )
        self.assertEqual(response.status, 200, data[:500])
        self.assertIn(b"Site administration", data)
        # Without the session: back to the login page.
        response, data = fetch(self.port, "GET", "/admin/")
        self.assertEqual(response.status, 302)

    def test_a_chunked_body_reaches_request_body(self):
        # Django reads request.body only with a CONTENT_LENGTH: axkit
        # receives a chunked body whole (spooled past 256 KiB) and gives it one.
        payload = os.urandom(1024 * 1024)
        pieces = (payload[i : i + 100_000] for i in range(0, len(payload), 100_000))
        response, data = fetch_chunked(
            self.port, "/body/", pieces, {"Content-Type": "application/octet-stream"}
        )
        self.assertEqual(response.status, 200, data[:500])
        self.assertEqual(
            json.loads(data),
            {
                "length": str(len(payload)),
                "size": len(payload),
                "sha256": hashlib.sha256(payload).hexdigest(),
            },
        )
