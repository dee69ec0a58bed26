"""TLS listeners: certificate paths relative to the config file, a
certificate per <Server> chosen by SNI, renewed certificates picked up by a
reload (new connections only), https:// in the start-up line.  Certificates
are made by the openssl command, as an admin would."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile

from twisted.internet import threads
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from axkit.config.errors import ConfigErrors
from axkit.config.loader import load_file
from axkit.testing import TwistdProcess, start_server
from axkit.tls import absolute_tls_paths, split_endpoint

from .rawclient import read_until_closed


def need_openssl():
    if shutil.which("openssl") is None:
        raise SkipTest("openssl command not installed")


def make_cert(folder, name, stem=None, days=90):
    """A self-signed certificate for ``name`` (CN and subjectAltName) and
    its key, as files ``stem``.crt / ``stem``.key in ``folder``."""
    stem = os.path.join(folder, stem or name)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        + ["-nodes", "-keyout", stem + ".key", "-out", stem + ".crt", "-days", str(days)]
        + ["-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}"],
        check=True,
        capture_output=True,
    )
    return stem + ".crt", stem + ".key"


def fingerprint(pem_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    with open(pem_path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read()).fingerprint(hashes.SHA256())


def peer(port, server_name=None, request=b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"):
    """(SHA-256 of the certificate the server sent, the response) for a
    connection asking for ``server_name`` by SNI (None: no SNI)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as s:
            der = s.getpeercert(binary_form=True)
            s.sendall(request)
            data = read_until_closed(s, 10, strict=True)
    return x509.load_der_x509_certificate(der).fingerprint(hashes.SHA256()), data


class EndpointPathTests(SynchronousTestCase):
    def test_relative_paths_are_from_the_config_folder(self):
        self.assertEqual(
            absolute_tls_paths("ssl:443:privateKey=k.pem:certKey=../c.pem", "/etc/axkit"),
            "ssl:443:privateKey=/etc/axkit/k.pem:certKey=/etc/c.pem",
        )
        self.assertEqual(
            absolute_tls_paths("ssl:443:interface=127.0.0.1:privateKey=/k.pem", "/etc/axkit"),
            "ssl:443:interface=127.0.0.1:privateKey=/k.pem",
        )

    def test_escaped_colons_survive(self):
        self.assertEqual(
            split_endpoint(r"ssl:443:interface=\:\:1"), ["ssl", "443", "interface=::1"]
        )
        self.assertEqual(
            absolute_tls_paths(r"ssl:443:interface=\:\:1:privateKey=k", "/a"),
            r"ssl:443:interface=\:\:1:privateKey=/a/k",
        )


class ConfigTests(SynchronousTestCase):
    def setUp(self):
        need_openssl()
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.a = make_cert(self.dir, "a.test", "a")
        self.b = make_cert(self.dir, "b.test", "b")

    def load(self, text):
        # A config file in another folder than the current one: its
        # relative paths are from its own folder.
        self.path = os.path.join(self.dir, "site.conf")
        with open(self.path, "w") as f:
            f.write(text)
        return load_file(self.path)

    def error(self, text):
        e = self.assertRaises(ConfigErrors, self.load, text)
        return str(e)

    def test_relative_paths_load(self):
        config = self.load("Listen ssl:0:interface=127.0.0.1:privateKey=a.key:certKey=a.crt\n")
        (endpoint,) = config.tls
        self.assertIn(f"privateKey={self.dir}/a.key", endpoint)
        self.assertIn(f"certKey={self.dir}/a.crt", endpoint)

    def test_missing_file_is_a_config_error(self):
        self.assertEqual(
            self.error("Listen 8080\n<Server x>\nSSLCertificateFile nope.crt\n</Server>\n"),
            f"{self.path}:3: cannot read {self.dir}/nope.crt: No such file or directory",
        )

    def test_key_of_another_certificate_is_refused_at_the_listen_line(self):
        message = self.error("\nListen ssl:0:privateKey=b.key:certKey=a.crt\n")
        self.assertTrue(message.startswith(f"{self.path}:2: Listen ssl:0:"), message)
        self.assertIn("key values mismatch", message)

    def test_a_listener_needs_some_certificate(self):
        message = self.error("Listen ssl:0\n")
        self.assertIn(f"{self.path}:1: Listen ssl:0", message)
        self.assertIn("no certificate", message)

    def test_a_certificate_ending_soon_is_a_warning(self):
        config = self.load("Listen ssl:0:privateKey=a.key:certKey=a.crt\n")
        self.assertEqual(config.warnings, [])
        make_cert(self.dir, "a.test", "a", days=3)
        (warning,) = self.load("\nListen ssl:0:privateKey=a.key:certKey=a.crt\n").warnings
        self.assertRegex(
            str(warning),
            rf"^{self.path}:2: warning: certificate {self.dir}/a.crt expires on "
            r"\d{4}-\d\d-\d\d \d\d:\d\d UTC$",
        )

    def test_unknown_option_is_refused(self):
        self.assertIn("does not take sslmethod=", self.error("Listen ssl:0:sslmethod=TLSv1\n"))


SNI_SITE = """\
Listen ssl:0:interface=127.0.0.1:privateKey={d}a.key:certKey={d}a.crt
Plugin uri_to_file
Plugin serve_file
<Server a>
ServerName a.test
DocumentRoot {d}a
</Server>
<Server b>
ServerName b.test
ServerAlias *.b.test
SSLCertificateFile {d}b.crt
SSLCertificateKeyFile {d}b.key
DocumentRoot {d}b
</Server>
"""


def absolute(text, folder):
    """An in-process test config names its files absolutely (a config
    string has no folder of its own; a file's relative paths are tried by
    TwistdTests)."""
    return text.format(d=folder + "/")


class SNITests(TestCase):
    def setUp(self):
        need_openssl()
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.a = make_cert(self.dir, "a.test", "a")
        self.b = make_cert(self.dir, "b.test", "b")
        for name in ("a", "b"):
            os.mkdir(os.path.join(self.dir, name))
            with open(os.path.join(self.dir, name, "index.html"), "w") as f:
                f.write(f"site {name}\n")

    @inlineCallbacks
    def server(self, text=SNI_SITE):
        server = yield start_server(absolute(text, self.dir))
        self.addCleanup(server.stop)
        return server

    @inlineCallbacks
    def test_each_server_name_gets_its_certificate(self):
        server = yield self.server()
        port = server.port
        for name, cert in (
            ("a.test", self.a[0]),
            ("b.test", self.b[0]),
            ("www.b.test", self.b[0]),
            ("B.Test", self.b[0]),
            ("other.test", self.a[0]),  # the endpoint's own: the default
            (None, self.a[0]),  # no SNI at all
        ):
            got, data = yield threads.deferToThread(peer, port, name)
            self.assertEqual(got, fingerprint(cert), name)
            self.assertTrue(data.startswith(b"HTTP/1.1 200 OK"), data)

    @inlineCallbacks
    def test_without_an_endpoint_certificate_the_first_server_is_the_default(self):
        text = SNI_SITE.replace(":privateKey={d}a.key:certKey={d}a.crt", "").replace(
            "ServerName a.test\n",
            "ServerName a.test\nSSLCertificateFile {d}a.crt\nSSLCertificateKeyFile {d}a.key\n",
        )
        server = yield self.server(text)
        got, _ = yield threads.deferToThread(peer, server.port, "nobody.test")
        self.assertEqual(got, fingerprint(self.a[0]))
        got, _ = yield threads.deferToThread(peer, server.port, "b.test")
        self.assertEqual(got, fingerprint(self.b[0]))

    @inlineCallbacks
    def test_reload_serves_renewed_certificates_to_new_connections(self):
        server = yield self.server()
        old = fingerprint(self.b[0])
        # A connection made before the renewal, kept alive across it.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        kept = yield threads.deferToThread(context.wrap_socket, raw, server_hostname="b.test")
        self.addCleanup(kept.close)
        make_cert(self.dir, "b.test", "b")  # certbot renews in place
        new = fingerprint(self.b[0])
        self.assertNotEqual(old, new)
        got, _ = yield threads.deferToThread(peer, server.port, "b.test")
        self.assertEqual(got, old)  # not before the reload
        self.assertTrue((yield server.reload(absolute(SNI_SITE, self.dir))))
        got, _ = yield threads.deferToThread(peer, server.port, "b.test")
        self.assertEqual(got, new)

        def ask_again():
            kept.sendall(b"GET / HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n")
            return read_until_closed(kept, 10, strict=True)

        data = yield threads.deferToThread(ask_again)
        self.assertTrue(data.startswith(b"HTTP/1.1 200 OK"), data)
        self.assertTrue(data.endswith(b"site b\n"), data)
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        held = x509.load_der_x509_certificate(kept.getpeercert(binary_form=True))
        self.assertEqual(held.fingerprint(hashes.SHA256()), old)

    @inlineCallbacks
    def test_a_broken_renewal_is_refused_and_the_old_certificates_stay(self):
        server = yield self.server()
        old = fingerprint(self.b[0])
        with open(self.b[0], "w") as f:
            f.write("half a certificate\n")
        self.assertFalse((yield server.reload(absolute(SNI_SITE, self.dir))))
        got, _ = yield threads.deferToThread(peer, server.port, "b.test")
        self.assertEqual(got, old)


class TwistdTests(SynchronousTestCase):
    """As an admin would: openssl-made certificates, curl --resolve with
    verification against them, openssl s_client -servername, SIGHUP."""

    def setUp(self):
        need_openssl()
        if shutil.which("curl") is None:
            raise SkipTest("curl not installed")
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.a = make_cert(self.dir, "a.test", "a")
        self.b = make_cert(self.dir, "b.test", "b")
        for name in ("a", "b"):
            os.mkdir(os.path.join(self.dir, name))
            with open(os.path.join(self.dir, name, "index.html"), "w") as f:
                f.write(f"site {name}\n")
        self.config = os.path.join(self.dir, "site.conf")
        with open(self.config, "w") as f:
            f.write(SNI_SITE.format(d=""))  # relative to the config file

    def curl(self, port, name, cafile):
        return subprocess.run(
            ["curl", "-sS", "--max-time", "10", "--cacert", cafile]
            + ["--resolve", f"{name}:{port}:127.0.0.1", f"https://{name}:{port}/"],
            capture_output=True,
            text=True,
            timeout=30,
        )

    def s_client_fingerprint(self, port, name):
        result = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", name],
            input="",
            capture_output=True,
            text=True,
            timeout=30,
        )
        start = result.stdout.index("-----BEGIN CERTIFICATE-----")
        end = result.stdout.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        cert = x509.load_pem_x509_certificate(result.stdout[start:end].encode())
        return cert.fingerprint(hashes.SHA256())

    def test_curl_and_s_client(self):
        server = TwistdProcess(self.config)
        self.addCleanup(server.stop)
        self.assertIn(f"(https://127.0.0.1:{server.port}/)", server.output())
        for name, cafile, body in (
            ("a.test", self.a[0], "site a\n"),
            ("b.test", self.b[0], "site b\n"),
        ):
            result = self.curl(server.port, name, cafile)
            self.assertEqual((result.returncode, result.stdout), (0, body), result.stderr)
        # b's certificate does not verify a.test: each name got its own.
        self.assertNotEqual(self.curl(server.port, "a.test", self.b[0]).returncode, 0)
        self.assertEqual(self.s_client_fingerprint(server.port, "b.test"), fingerprint(self.b[0]))
        make_cert(self.dir, "b.test", "b")
        server.signal(signal.SIGHUP)
        import time

        deadline = time.monotonic() + 20
        while self.s_client_fingerprint(server.port, "b.test") != fingerprint(self.b[0]):
            self.assertLess(time.monotonic(), deadline, server.output())
            time.sleep(0.1)
        result = self.curl(server.port, "b.test", self.b[0])
        self.assertEqual((result.returncode, result.stdout), (0, "site b\n"), result.stderr)


class DevReloadTests(SynchronousTestCase):
    """--reload re-executes the process on the same listening socket: a TLS
    listener must still speak TLS afterwards."""

    def test_tls_after_a_restart(self):
        need_openssl()
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder, True)
        make_cert(folder, "a.test", "a")
        app = os.path.join(folder, "app.py")
        source = (
            "async def app(scope, receive, send):\n"
            "    if scope['type'] != 'http':\n        return\n"
            "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
            "    await send({'type': 'http.response.body', 'body': b'version %d\\n'})\n"
        )
        with open(app, "w") as f:
            f.write(source % 1)
        conf = os.path.join(folder, "site.conf")
        with open(conf, "w") as f:
            f.write(
                "Listen ssl:0:interface=127.0.0.1:privateKey=a.key:certKey=a.crt\n"
                "Plugin asgi\nASGIAlias / app.py\nASGILifespan off\n"
            )
        server = TwistdProcess(conf, args=("--reload",))
        self.addCleanup(server.stop)
        self.assertTrue(server.wait_for_output("--reload: watching"))
        request = b"GET / HTTP/1.0\r\n\r\n"
        self.assertTrue(peer(server.port, "a.test", request)[1].endswith(b"version 1\n"))
        import time

        time.sleep(0.05)
        with open(app, "w") as f:
            f.write(source % 2)
        deadline = time.monotonic() + 20
        answer = b""
        while time.monotonic() < deadline and not answer.endswith(b"version 2\n"):
            try:
                got, answer = peer(server.port, "a.test", request)
            except (ConnectionError, ssl.SSLError):
                pass
            time.sleep(0.05)
        self.assertTrue(answer.endswith(b"version 2\n"), server.output())
        self.assertEqual(got, fingerprint(os.path.join(folder, "a.crt")))
