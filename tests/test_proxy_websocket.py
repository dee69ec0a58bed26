"""WebSocket passthrough through a real `twistd axkit`, with a real
WebSocket server behind it and a real client in front (the websockets
package)."""

import os
import shutil
import socket
import tempfile
import threading
import time

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from axkit.testing import TwistdProcess

try:
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect
    from websockets.sync.server import serve
except ImportError:  # (the test extra installs it)
    serve = None


class Backend:
    """A websockets server on 127.0.0.1 in a thread: /echo echoes, /bye
    answers one message then closes (code 4000); records each handshake's
    request headers."""

    def __init__(self, ssl=None):
        self.requests = []
        self.closed = []
        self.server = serve(
            self.handler,
            "127.0.0.1",
            0,
            max_size=None,
            process_request=self.record,
            compression=None,
            ssl=ssl,
        )
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def record(self, connection, request):
        self.requests.append((request.path, dict(request.headers.raw_items())))
        if request.path.startswith("/deny"):
            return connection.respond(403, "not you\n")
        return None

    def handler(self, ws):
        path = ws.request.path
        try:
            if path.endswith("/bye"):
                ws.send("bye: " + ws.recv())
                ws.close(4000, "done here")
                return
            for message in ws:
                ws.send(message)
        except ConnectionClosed:
            pass
        finally:
            self.closed.append((path, ws.close_code, ws.close_reason))

    def stop(self):
        self.server.shutdown()
        self.thread.join(10)


class WebSocketProxyTests(SynchronousTestCase):
    def setUp(self):
        if serve is None:
            raise SkipTest("websockets is not installed")
        self.backend = Backend()
        self.addCleanup(self.backend.stop)
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder, True)
        path = os.path.join(folder, "site.conf")
        port = self.backend.port
        with open(path, "w") as f:
            f.write(f"""Listen tcp:0:interface=127.0.0.1
Plugin proxy
ProxyPass /ws/ http://127.0.0.1:{port}/ upgrade=websocket timeout=5
ProxyPass /wsurl/ ws://127.0.0.1:{port}/
ProxyPass /plain/ http://127.0.0.1:{port}/
ProxyPass /lb/ balancer://app/ upgrade=websocket
ProxyPass /down/ http://127.0.0.1:1/ upgrade=websocket
ProxyPass /idle/ http://127.0.0.1:{port}/ upgrade=websocket timeout=1
<Proxy balancer://app>
    BalancerMember http://127.0.0.1:1
    BalancerMember http://127.0.0.1:{port}
    ProxySet lbmethod=byrequests
</Proxy>
""")
        self.server = TwistdProcess(path)
        self.addCleanup(self.server.stop)
        self.addCleanup(self.no_traceback)

    def no_traceback(self):
        output = self.server.output()
        self.assertNotIn("Traceback", output)
        self.assertNotIn("Unhandled", output)

    def url(self, path):
        return f"ws://127.0.0.1:{self.server.port}{path}"

    def connect(self, path, **kw):
        return connect(self.url(path), open_timeout=10, close_timeout=10, max_size=None, **kw)

    def test_text_echo_and_the_fields_the_backend_saw(self):
        with self.connect("/ws/echo?x=1") as ws:
            ws.send("hello")
            self.assertEqual(ws.recv(timeout=10), "hello")
            self.assertEqual(ws.response.status_code, 101)
        path, headers = self.backend.requests[-1]
        self.assertEqual(path, "/echo?x=1")
        lowered = {k.lower(): v for k, v in headers.items()}
        self.assertEqual(lowered["upgrade"], "websocket")
        self.assertEqual(lowered["connection"], "Upgrade")
        self.assertIn("sec-websocket-key", lowered)
        self.assertEqual(lowered["x-forwarded-for"], "127.0.0.1")

    def test_a_megabyte_binary_message_both_ways(self):
        payload = os.urandom(1 << 20)
        with self.connect("/ws/echo") as ws:
            for _ in range(3):
                ws.send(payload)
                self.assertEqual(ws.recv(timeout=20), payload)

    def test_the_close_handshake_passes_through(self):
        ws = self.connect("/ws/echo")
        ws.send("x")
        ws.recv(timeout=10)
        ws.close(1000, "client done")
        self.assertEqual(ws.close_code, 1000)
        self.assertEqual(ws.close_reason, "client done")
        deadline = time.monotonic() + 10
        while not self.backend.closed and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(self.backend.closed, [("/echo", 1000, "client done")])

    def test_a_closed_tunnel_is_logged_with_its_bytes_and_who_closed(self):
        ws = self.connect("/ws/echo")
        ws.send("hello")  # a masked 5-byte text frame: 11 bytes
        self.assertEqual(ws.recv(timeout=10), "hello")  # 7 bytes back
        ws.close(1000, "bye")  # 2 + 4 + 5 bytes; the backend's close: 2 + 5
        line = None
        deadline = time.monotonic() + 10
        while line is None and time.monotonic() < deadline:
            for text in self.server.output().splitlines():
                if "WebSocket /ws/echo from 127.0.0.1 closed by " in text:
                    line = text
            time.sleep(0.02)
        self.assertIsNotNone(line, self.server.output()[-2000:])
        # (After the close handshake the server ends the TCP connection
        # first, RFC 6455 7.1.1; the client waits for it.)
        self.assertIn("closed by the backend after ", line)
        self.assertIn(": 22 bytes from the client, 14 from the backend", line)

    def test_the_backend_closing_closes_the_client(self):
        with self.connect("/ws/bye") as ws:
            ws.send("me")
            self.assertEqual(ws.recv(timeout=10), "bye: me")
            with self.assertRaises(ConnectionClosed):
                ws.recv(timeout=10)
            self.assertEqual(ws.close_code, 4000)
            self.assertEqual(ws.close_reason, "done here")

    def test_ws_url_form(self):
        with self.connect("/wsurl/echo") as ws:
            ws.send("via ws://")
            self.assertEqual(ws.recv(timeout=10), "via ws://")

    def test_without_the_key_no_tunnel(self):
        with self.assertRaises(InvalidStatus) as caught:
            self.connect("/plain/echo")
        self.assertNotEqual(caught.exception.response.status_code, 101)
        path, headers = self.backend.requests[-1]
        lowered = {k.lower(): v.lower() for k, v in headers.items()}
        self.assertNotIn("upgrade", lowered)
        self.assertNotIn("upgrade", lowered.get("connection", ""))

    def test_balancer_member_after_a_refusing_one(self):
        for _ in range(2):  # one of them first tries the dead member
            with self.connect("/lb/echo") as ws:
                ws.send("lb")
                self.assertEqual(ws.recv(timeout=10), "lb")

    def test_backend_down_is_502(self):
        with self.assertRaises(InvalidStatus) as caught:
            self.connect("/down/echo")
        self.assertEqual(caught.exception.response.status_code, 502)

    def test_a_plain_request_on_a_websocket_route_is_proxied(self):
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        s.sendall(b"GET /ws/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while True:
            piece = s.recv(65536)
            if not piece:
                break
            answer += piece
        s.close()
        # (websockets answers a plain GET 426 Upgrade Required.)
        self.assertTrue(answer.startswith(b"HTTP/1.1 426 "), answer[:200])

    def test_an_idle_tunnel_is_closed_after_its_timeout(self):
        with self.connect("/idle/echo", ping_interval=None) as ws:
            ws.send("once")
            self.assertEqual(ws.recv(timeout=10), "once")
            with self.assertRaises(ConnectionClosed):
                ws.recv(timeout=15)
        self.assertIn("WebSocket idle for 1s, closed", self.server.output())
        self.assertIn("closed by the idle timeout after ", self.server.output())

    def test_a_refusal_is_relayed_as_a_response(self):
        with self.assertRaises(InvalidStatus) as caught:
            self.connect("/ws/deny")
        response = caught.exception.response
        self.assertEqual(response.status_code, 403)
        self.assertEqual(response.body, b"not you\n")
        # Framed as the backend framed it (a length, not chunked).
        self.assertEqual(response.headers["Content-Length"], "8")
        self.assertNotIn("Transfer-Encoding", response.headers)

    def test_hop_by_hop_fields_other_than_the_upgrade_are_dropped(self):
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        s.sendall(
            b"GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: keep-alive, Upgrade, X-Secret\r\nX-Secret: 1\r\n"
            b"Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            b"X-End: to-end\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            piece = s.recv(1)
            if not piece:
                break
            head += piece
        s.close()
        self.assertTrue(head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n"), head)
        lines = head.lower().split(b"\r\n")
        self.assertIn(b"upgrade: websocket", lines)
        self.assertIn(b"connection: upgrade", lines)
        self.assertIn(b"sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=", lines)
        path, headers = self.backend.requests[-1]
        lowered = {k.lower(): v for k, v in headers.items()}
        for name in ("x-secret", "keep-alive", "te", "proxy-connection"):
            self.assertNotIn(name, lowered)
        self.assertEqual(lowered["connection"], "Upgrade")
        self.assertEqual(lowered["upgrade"], "websocket")
        self.assertEqual(lowered["x-end"], "to-end")


def self_signed(folder):
    """A certificate for 127.0.0.1 (and its key), PEM files in ``folder``."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = os.path.join(folder, "cert.pem")
    key_path = os.path.join(folder, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


class SecureBackendTests(SynchronousTestCase):
    """A wss:// backend: the tunnel is TLS, the backend's certificate checked."""

    def test_wss_backend(self):
        if serve is None:
            raise SkipTest("websockets is not installed")
        import ssl

        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder, True)
        cert, key = self_signed(folder)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        backend = Backend(ssl=context)
        self.addCleanup(backend.stop)
        path = os.path.join(folder, "site.conf")
        with open(path, "w") as f:
            f.write(
                "Listen tcp:0:interface=127.0.0.1\nPlugin proxy\n"
                f"SSLProxyCACertificateFile {cert}\n"
                f"ProxyPass /s/ wss://127.0.0.1:{backend.port}/\n"
            )
        server = TwistdProcess(path)
        self.addCleanup(server.stop)
        with connect(f"ws://127.0.0.1:{server.port}/s/echo", open_timeout=10) as ws:
            ws.send("over TLS")
            self.assertEqual(ws.recv(timeout=10), "over TLS")
        self.assertEqual(backend.requests[-1][0], "/echo")
        # A plain request on the route goes over https (websockets answers 426).
        s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        s.sendall(b"GET /s/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while True:
            piece = s.recv(65536)
            if not piece:
                break
            answer += piece
        s.close()
        self.assertTrue(answer.startswith(b"HTTP/1.1 426 "), answer[:200])


class UntrustedBackendTests(SynchronousTestCase):
    def test_an_untrusted_certificate_is_502(self):
        if serve is None:
            raise SkipTest("websockets is not installed")
        import ssl

        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder, True)
        cert, key = self_signed(folder)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        backend = Backend(ssl=context)
        self.addCleanup(backend.stop)
        path = os.path.join(folder, "site.conf")
        with open(path, "w") as f:
            f.write(
                "Listen tcp:0:interface=127.0.0.1\nPlugin proxy\n"
                f"ProxyPass /s/ wss://127.0.0.1:{backend.port}/\n"
            )
        server = TwistdProcess(path)
        self.addCleanup(server.stop)
        with self.assertRaises(InvalidStatus) as caught:
            connect(f"ws://127.0.0.1:{server.port}/s/echo", open_timeout=10)
        self.assertEqual(caught.exception.response.status_code, 502)
        self.assertEqual(backend.requests, [])
        self.assertIn("TLS failed", server.output())


class UnixAndTLSTests(SynchronousTestCase):
    """A backend on a UNIX socket; a client over TLS to axkit."""

    def test_unix_backend_behind_a_tls_listener(self):
        if serve is None:
            raise SkipTest("websockets is not installed")
        import ssl

        from websockets.sync.server import unix_serve

        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder, True)
        sock = os.path.join(folder, "app.sock")

        def echo(ws):
            for message in ws:
                ws.send(message)

        backend = unix_serve(echo, sock, max_size=None)
        threading.Thread(target=backend.serve_forever, daemon=True).start()
        self.addCleanup(backend.shutdown)
        cert, key = self_signed(folder)
        path = os.path.join(folder, "site.conf")
        with open(path, "w") as f:
            f.write(
                f"Listen ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}\n"
                "Plugin proxy\n"
                f"ProxyPass /u/ unix:{sock}|http://localhost/ upgrade=websocket\n"
            )
        server = TwistdProcess(path)
        self.addCleanup(server.stop)
        client_context = ssl.create_default_context(cafile=cert)
        url = f"wss://127.0.0.1:{server.port}/u/echo"
        with connect(url, ssl=client_context, open_timeout=10, max_size=None) as ws:
            payload = os.urandom(300000)
            ws.send(payload)
            self.assertEqual(ws.recv(timeout=10), payload)
            ws.send("text")
            self.assertEqual(ws.recv(timeout=10), "text")
        self.assertEqual(ws.close_code, 1000)
        # The close handshake over TLS, then the TCP close: no TLS error
        # (a half-close under TLS once broke it; give the server a moment).
        self.assertFalse(server.wait_for_output("Traceback", timeout=1.0), server.output())
