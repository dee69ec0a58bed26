"""The proxy's own HTTP/1.1 client (axkit.proxy.client), end to end: a real
axkit on 127.0.0.1 in front of scripted backends that answer with exact
bytes and record exactly what they received on which connection."""

import datetime
import os
import socket

from twisted.internet import defer, reactor, ssl
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import SynchronousTestCase, TestCase

from axkit.config import ConfigErrors
from axkit.proxy import client
from axkit.proxy.connecting import DirectEndpoint
from axkit.testing import load_config
from tests.rawclient import exchange, request_bytes
from tests.test_proxy_e2e import head_and_body

OK_1 = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

# path -> the bytes answered (a callable gets the connection's number of
# requests so far and returns the bytes, or None to close without answering)
SCRIPTS = {
    "/plain": OK_1,
    "/continue": b"HTTP/1.1 100 Continue\r\n\r\n" + OK_1,
    "/hints": b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" + OK_1,
    "/close-delimited": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close",
    "/connection-close": b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
    "/head": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
    "/no-content": b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
    "/chunked": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    ),
    "/garbage": b"NOT HTTP AT ALL\r\n\r\n",
    "/switch": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
    # the second request on a connection finds it closed (a stale kept one)
    "/stale": lambda n: OK_1 if n == 1 else None,
}


class Scripted(Protocol):
    def connectionMade(self):
        self.factory.connections += 1
        self.number = self.factory.connections
        self.buffer = b""
        self.served = 0

    def dataReceived(self, data):
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            fields = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
            if "content-length" in fields:
                need = int(fields["content-length"])
                if len(rest) < need:
                    return
                body, rest = rest[:need], rest[need:]
            elif fields.get("transfer-encoding") == "chunked":
                if b"0\r\n\r\n" not in rest:
                    return
                body, _, rest = rest.partition(b"0\r\n\r\n")
                body += b"0\r\n\r\n"
            else:
                body = b""
            self.buffer = rest
            self.served += 1
            method, target, _ = lines[0].split(" ")
            self.factory.seen.append((self.number, method, target, head, body))
            script = SCRIPTS.get(target.split("?")[0], OK_1)
            answer = script(self.served) if callable(script) else script
            if answer is None:
                self.transport.loseConnection()
                return
            self.transport.write(answer)
            if target.startswith("/close-delimited"):
                self.transport.loseConnection()


class ClientCase(TestCase):
    extra = ""

    @defer.inlineCallbacks
    def setUp(self):
        from axkit.testing import start_server

        self.factory = Factory.forProtocol(Scripted)
        self.factory.connections, self.factory.seen = 0, []
        self.port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        bport = self.port.getHost().port
        self.server = yield start_server(
            f"Plugin proxy\nProxyPass / http://127.0.0.1:{bport}/ timeout=2\n{self.extra}"
        )
        self.addCleanup(self.server.stop)
        self.addCleanup(client.close_all)

    def ask(self, path, method="GET", headers=(), body=b"", **kw):
        return exchange(self.server.port, request_bytes(path, headers, method, body=body), **kw)


class Answers(ClientCase):
    @defer.inlineCallbacks
    def test_interim_answers_are_skipped(self):
        for path in ("/continue", "/hints"):
            status, fields, body = head_and_body((yield self.ask(path)))
            self.assertEqual((status, body), ("HTTP/1.1 200 OK", b"ok"), path)

    @defer.inlineCallbacks
    def test_close_delimited_answer_is_passed_whole_and_not_reused(self):
        status, fields, body = head_and_body((yield self.ask("/close-delimited")))
        self.assertEqual(status, "HTTP/1.1 200 OK")
        # Its end known only at the close: chunked to an HTTP/1.1 client.
        self.assertIn(("Transfer-Encoding", "chunked"), fields)
        self.assertEqual(body, b"f\r\nuntil the close\r\n0\r\n\r\n")
        yield self.ask("/plain")
        self.assertEqual(self.factory.connections, 2)

    @defer.inlineCallbacks
    def test_connection_close_answer_is_not_reused(self):
        yield self.ask("/connection-close")
        yield self.ask("/plain")
        self.assertEqual(self.factory.connections, 2)

    @defer.inlineCallbacks
    def test_complete_keep_alive_answers_reuse_the_connection(self):
        for path in ("/plain", "/chunked", "/no-content", "/plain"):
            yield self.ask(path)
        self.assertEqual(self.factory.connections, 1)

    @defer.inlineCallbacks
    def test_one_kept_connection_parses_every_kind_of_answer_in_turn(self):
        # (The response parser serves the next answer after one llhttp
        # ended itself; a HEAD's answer, cut at its head, gets a new one.)
        expected = [
            ("/plain", "GET", b"ok"),
            ("/continue", "GET", b"ok"),
            ("/chunked", "GET", b"abcde"),
            ("/head", "HEAD", b""),
            ("/plain", "GET", b"ok"),
            ("/no-content", "GET", b""),
            ("/hints", "GET", b"ok"),
            ("/chunked", "GET", b"abcde"),
        ]
        for path, method, want in expected:
            status, fields, body = head_and_body((yield self.ask(path, method=method)))
            self.assertEqual(body, want, path)
        self.assertEqual(self.factory.connections, 1)

    @defer.inlineCallbacks
    def test_chunked_answer(self):
        status, fields, body = head_and_body((yield self.ask("/chunked")))
        self.assertEqual(status, "HTTP/1.1 200 OK")
        # (whole in one read: sent with its length)
        self.assertEqual(body, b"abcde")
        self.assertIn(("Content-Length", "5"), fields)

    @defer.inlineCallbacks
    def test_head_answer_ends_at_its_head_and_the_connection_is_reused(self):
        raw = yield self.ask("/head", method="HEAD")
        status, fields, body = head_and_body(raw)
        self.assertEqual(status, "HTTP/1.1 200 OK")
        self.assertIn(("Content-Length", "100"), fields)
        self.assertEqual(body, b"")
        status, fields, body = head_and_body((yield self.ask("/plain")))
        self.assertEqual(body, b"ok")
        self.assertEqual(self.factory.connections, 1)

    @defer.inlineCallbacks
    def test_204_has_no_body_and_keeps_its_fields(self):
        status, fields, body = head_and_body((yield self.ask("/no-content")))
        self.assertEqual((status, body), ("HTTP/1.1 204 No Content", b""))
        self.assertIn(("X-A", "1"), fields)

    @defer.inlineCallbacks
    def test_not_http_is_502_and_the_connection_dropped(self):
        self.assertEqual(head_and_body((yield self.ask("/garbage")))[0], "HTTP/1.1 502 Bad Gateway")
        yield self.ask("/plain")
        self.assertEqual(self.factory.connections, 2)

    @defer.inlineCallbacks
    def test_unasked_101_is_502(self):
        self.assertEqual(head_and_body((yield self.ask("/switch")))[0], "HTTP/1.1 502 Bad Gateway")


class Requests(ClientCase):
    @defer.inlineCallbacks
    def test_head_in_one_piece_and_our_own_framing(self):
        yield self.ask("/up", "POST", [("Content-Length", "5")], b"hello")
        data = request_bytes("/up", [("Transfer-Encoding", "chunked")], "POST")
        yield exchange(self.server.port, data, pieces=[b"5\r\nhello\r\n", b"0\r\n\r\n"], gap=0.05)
        (_, _, _, head1, body1), (_, _, _, head2, body2) = self.factory.seen
        self.assertIn(b"\r\ncontent-length: 5", head1.lower())
        self.assertEqual(body1, b"hello")
        self.assertIn(b"\r\ntransfer-encoding: chunked", head2.lower())
        self.assertNotIn(b"content-length", head2.lower())
        self.assertEqual(body2, b"5\r\nhello\r\n0\r\n\r\n")

    @defer.inlineCallbacks
    def test_empty_post_says_content_length_0(self):
        yield self.ask("/p", "POST", [("Content-Length", "0")])
        self.assertIn(b"\r\ncontent-length: 0", self.factory.seen[0][3].lower())

    @defer.inlineCallbacks
    def test_stale_kept_connection_get_is_sent_again_on_a_new_one(self):
        yield self.ask("/stale")
        raw = yield self.ask("/stale")  # the kept connection closes on it
        status, fields, body = head_and_body(raw)
        self.assertEqual((status, body), ("HTTP/1.1 200 OK", b"ok"))
        self.assertEqual(self.factory.connections, 2)
        self.assertEqual([s[0] for s in self.factory.seen], [1, 1, 2])

    @defer.inlineCallbacks
    def test_stale_kept_connection_post_is_never_sent_twice(self):
        yield self.ask("/stale")
        raw = yield self.ask("/stale", "POST", body=b"pay")
        self.assertEqual(head_and_body(raw)[0], "HTTP/1.1 502 Bad Gateway")
        self.assertEqual([s[1] for s in self.factory.seen], ["GET", "POST"])


class _Conn:
    """A stand-in connection for the pool's bookkeeping."""

    def __init__(self):
        self.closed = False
        self.transport = self
        self.idle_since = 0.0

    def loseConnection(self):
        self.closed = True


class PoolTest(SynchronousTestCase):
    def test_idle_connections_close_after_ttl_and_max_is_kept(self):
        clock = Clock()
        pool = client.Pool(clock, endpoint=None, max_idle=2, ttl=10)
        a, b, c = _Conn(), _Conn(), _Conn()
        pool.release(a)
        clock.advance(5)
        pool.release(b)
        pool.release(c)  # over max=2: closed at once
        self.assertTrue(c.closed)
        clock.advance(5)  # a idle 10 s: closed; b 5 s: kept
        self.assertEqual((a.closed, b.closed), (True, False))
        clock.advance(5)
        self.assertTrue(b.closed)
        self.assertEqual(pool.idle, [])
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_most_recently_used_first(self):
        clock = Clock()
        pool = client.Pool(clock, endpoint=None, max_idle=4, ttl=10)
        a, b = _Conn(), _Conn()
        pool.release(a)
        pool.release(b)
        self.assertIs(pool.acquire(), b)
        pool.close()


class _Endpoint:
    """Connection attempts the test ends: each a Deferred in ``attempts``."""

    def __init__(self):
        self.attempts = []

    def connect(self, factory):
        d = defer.Deferred()
        self.attempts.append(d)
        return d


def _opened(pool, endpoint, n):
    """Complete connection attempt ``n``: a connection the pool tracks."""
    conn = _Conn()
    pool.track(conn)
    endpoint.attempts[n].callback(conn)
    return conn


class HardCapTest(SynchronousTestCase):
    """ProxyPass max=N: at most N connections open at once (Apache's max=)."""

    def setUp(self):
        self.endpoint = _Endpoint()
        self.pool = client.Pool(Clock(), self.endpoint, max_idle=2, ttl=10, max_open=2)

    def test_a_request_beyond_max_waits_for_a_released_connection(self):
        pool, endpoint = self.pool, self.endpoint
        pool.acquire(), pool.acquire()
        third = pool.acquire()  # two attempts under way: the cap
        self.assertEqual(len(endpoint.attempts), 2)
        got = []
        third.addCallback(got.append)
        a = _opened(pool, endpoint, 0)
        _opened(pool, endpoint, 1)
        self.assertEqual(got, [])
        pool.release(a)  # a's answer ended: the waiting request takes it
        self.assertEqual(got, [a])
        self.assertEqual((len(endpoint.attempts), pool.idle), (2, []))

    def test_a_lost_connection_makes_room_for_a_waiting_request(self):
        pool, endpoint = self.pool, self.endpoint
        pool.acquire(), pool.acquire()
        waiting = pool.acquire()
        a = _opened(pool, endpoint, 0)
        _opened(pool, endpoint, 1)
        pool.forget(a)  # (connectionLost)
        self.assertEqual(len(endpoint.attempts), 3)
        got = []
        waiting.addCallback(got.append)
        c = _opened(pool, endpoint, 2)
        self.assertEqual(got, [c])

    def test_a_failed_attempt_lets_the_next_request_try(self):
        pool, endpoint = self.pool, self.endpoint
        pool.acquire().addErrback(lambda f: None)
        pool.acquire()
        waiting = pool.acquire()
        endpoint.attempts[0].errback(ConnectionRefusedError())
        self.assertEqual(len(endpoint.attempts), 3)
        got = []
        waiting.addCallback(got.append)
        c = _opened(pool, endpoint, 2)
        self.assertEqual(got, [c])

    def test_a_request_that_stops_waiting_leaves_the_queue(self):
        pool, endpoint = self.pool, self.endpoint
        pool.acquire(), pool.acquire()
        waiting = pool.acquire()
        waiting.addErrback(lambda f: f.trap(defer.CancelledError))
        waiting.cancel()  # (its deadline, or its client gone)
        a = _opened(pool, endpoint, 0)
        pool.release(a)
        self.assertEqual(pool.idle, [a])  # kept, not handed to nobody

    def test_without_max_there_is_no_cap(self):
        pool = client.Pool(Clock(), self.endpoint, max_idle=2, ttl=10)
        for _ in range(5):
            pool.acquire()
        self.assertEqual(len(self.endpoint.attempts), 5)

    def test_max_is_the_cap_and_the_idle_bound(self):
        config = load_config("Plugin proxy\nProxyPass / http://127.0.0.1:9/ max=3\n")
        (route,) = config.servers[0].base.conf.proxy_pass
        self.assertEqual((route.target.max_open, route.target.max_idle), (3, 3))
        config = load_config("Plugin proxy\nProxyPass / http://127.0.0.1:9/\n")
        (route,) = config.servers[0].base.conf.proxy_pass
        self.assertEqual((route.target.max_open, route.target.max_idle), (None, 16))


class BalancerConfig(SynchronousTestCase):
    def test_unknown_balancer_is_a_config_error_at_its_line(self):
        with self.assertRaises(ConfigErrors) as caught:
            load_config("Plugin proxy\n\nProxyPass /x/ balancer://nope/\n")
        self.assertIn(":3: ProxyPass /x/: no <Proxy balancer://nope>", str(caught.exception))

    def test_balancer_resolved_once(self):
        config = load_config(
            "Plugin proxy\nProxyPass /x/ balancer://app/\n"
            "<Proxy balancer://app>\nBalancerMember http://127.0.0.1:9\n</Proxy>\n"
        )
        (route,) = config.servers[0].base.conf.proxy_pass
        (balancer,) = config.servers[0].base.conf.proxy
        self.assertIs(route.target, balancer)
        self.assertIsNotNone(balancer.members[0].spec)

    def test_https_and_ttl_are_accepted(self):
        config = load_config(
            "Plugin proxy\nProxyPass /x/ https://127.0.0.1:9/ ttl=5 max=2\nSSLProxyVerify none\n"
        )
        (route,) = config.servers[0].base.conf.proxy_pass
        self.assertEqual((route.target.ttl, route.target.max_idle), (5.0, 2))
        self.assertFalse(route.target.tls.verify)


def make_cert(folder, name="localhost"):
    """A self-signed certificate for ``name`` and its key (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
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


class HttpsBackends(TestCase):
    """https:// backends: verified by default; a CA file or `SSLProxyVerify
    none` for a self-signed one."""

    @defer.inlineCallbacks
    def start(self, extra):
        from axkit.testing import start_server

        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        cert_path, key_path = make_cert(folder)
        with open(cert_path) as c, open(key_path) as k:
            pem = ssl.PrivateCertificate.loadPEM(c.read() + k.read())
        self.factory = Factory.forProtocol(Scripted)
        self.factory.connections, self.factory.seen = 0, []
        port = reactor.listenSSL(0, self.factory, pem.options(), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        bport = port.getHost().port
        conf = f"Plugin proxy\nProxyPass / https://localhost:{bport}/ timeout=5\n"
        conf += extra.replace("CERT", cert_path)
        self.server = yield start_server(conf)
        self.addCleanup(self.server.stop)
        self.addCleanup(client.close_all)

    def ask(self, path):
        return exchange(self.server.port, request_bytes(path))

    @defer.inlineCallbacks
    def test_unknown_ca_is_refused_by_default(self):
        yield self.start("")
        raw = yield self.ask("/plain")
        self.assertEqual(head_and_body(raw)[0], "HTTP/1.1 502 Bad Gateway")
        self.assertEqual(self.factory.seen, [])

    @defer.inlineCallbacks
    def test_ca_file_trusts_it(self):
        yield self.start("SSLProxyCACertificateFile CERT\n")
        for _ in range(3):
            status, fields, body = head_and_body((yield self.ask("/plain")))
            self.assertEqual((status, body), ("HTTP/1.1 200 OK", b"ok"))
        self.assertEqual(self.factory.connections, 1)  # kept alive over TLS
        self.assertIn(b"host: localhost:", self.factory.seen[0][3].lower())

    @defer.inlineCallbacks
    def test_verify_none_accepts_it(self):
        yield self.start("SSLProxyVerify none\n")
        status, fields, body = head_and_body((yield self.ask("/chunked")))
        self.assertEqual((status, body), ("HTTP/1.1 200 OK", b"abcde"))

    def test_bad_ca_file_is_a_config_error(self):
        with self.assertRaises(ConfigErrors) as caught:
            load_config(
                "Plugin proxy\nProxyPass / https://localhost:9/\n"
                "SSLProxyCACertificateFile /nonexistent/ca.pem\n"
            )
        self.assertIn("ca.pem", str(caught.exception))


class _SlowReader(Protocol):
    """Reads a request body slowly (pausing its transport), then answers."""

    calls = []

    def connectionMade(self):
        self.buffer = b""
        self._wait()

    def _wait(self):
        self.transport.pauseProducing()
        self.calls.append(reactor.callLater(0.3, self._read_on))

    def _read_on(self):
        if self.transport.connected:
            self.transport.resumeProducing()

    def dataReceived(self, data):
        self.buffer += data
        head, sep, body = self.buffer.partition(b"\r\n\r\n")
        if not sep:
            return
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(body) >= length:
            self.buffer = body[length:]
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")
            self._wait()


class UploadThenNext(TestCase):
    @defer.inlineCallbacks
    def test_the_next_request_is_read_after_a_paused_upload(self):
        """A body that ends while the backend's socket is full leaves the
        client's connection reading: the next request on it is answered."""
        from axkit.testing import start_server

        port = reactor.listenTCP(0, Factory.forProtocol(_SlowReader), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.addCleanup(lambda: [c.cancel() for c in _SlowReader.calls if c.active()])
        server = yield start_server(
            f"Plugin proxy\nProxyPass / http://127.0.0.1:{port.getHost().port}/ timeout=20\n"
            "KeepAliveTimeout 30\n"
        )
        self.addCleanup(server.stop)
        self.addCleanup(client.close_all)
        body = b"b" * (8 * 1024 * 1024)
        data = b""
        for _ in range(2):
            data += request_bytes("/up", method="POST", body=body, close=False)
        data += request_bytes("/last")
        raw = yield exchange(server.port, data, timeout=25)
        self.assertEqual(raw.count(b"HTTP/1.1 200 OK"), 3, raw[-300:])


class _FakeRequest:
    """What Forward uses of a request, recording the body's pauses."""

    method = "POST"
    content_length = 10
    path = "/up"

    def __init__(self):
        self.events = []
        self.headers = {}
        self.reactor = Clock()

    def deadline(self, on_expire):
        class D:
            def after(self, s):
                pass

            extend = after

            def cancel(self):
                pass

        return D()

    def watch(self, watcher):
        pass

    def stream_body(self, on_data, on_end):
        self.on_data, self.on_end = on_data, on_end

    def pause_body(self):
        self.events.append("pause")

    def resume_body(self):
        self.events.append("resume")


class _FakeTransport:
    def __init__(self):
        self.producer = None
        self.written = []

    def registerProducer(self, producer, streaming):
        self.producer = producer

    def unregisterProducer(self):
        self.producer = None  # (as Twisted's: no resumeProducing)


class _FakeConn:
    def __init__(self):
        self.transport = _FakeTransport()

    def send(self, exchange, head, bodyless):
        self.head = head

    def write(self, data):
        self.transport.written.append(data)


class UploadPauseTaken(SynchronousTestCase):
    def test_a_body_ending_while_paused_is_resumed(self):
        """The backend's socket filled on the body's last piece (Twisted
        paused the _Upload) and the body ended: reading the client's
        connection is resumed, or its next request would never be read."""
        from axkit.proxy.forward import Forward

        request = _FakeRequest()
        spec = client.PoolSpec(load_config("Plugin proxy\nProxyPass / http://127.0.0.1:9/\n")
                               .servers[0].base.conf.proxy_pass[0].backend)  # fmt: skip
        forward = Forward(request, spec, "/up", [("Host", "x")], 5)
        forward.body, forward.head = "length", b"POST /up HTTP/1.1\r\n\r\n"  # (start's)
        conn = _FakeConn()
        forward._connected(conn)
        request.on_data(b"0123456789")
        conn.transport.producer.pauseProducing()  # the backend's socket is full
        request.on_end()
        self.assertIsNone(conn.transport.producer)
        self.assertEqual(request.events, ["pause", "resume"])


class TLSCreators(SynchronousTestCase):
    """A backend name's TLS client context is made once, not per connection."""

    def test_one_creator_per_hostname(self):
        from axkit.proxy.tls import TLSSettings

        for verify in (True, False):
            settings = TLSSettings(verify)
            first = settings.creator("backend.example")
            self.assertIs(settings.creator("backend.example"), first)
            self.assertIsNot(settings.creator("other.example"), first)


class Held(Protocol):
    """A backend that answers only when the test says (one request at a time)."""

    def connectionMade(self):
        self.factory.connections += 1

    def dataReceived(self, data):
        if b"\r\n\r\n" in data:
            self.factory.held.append(self.transport)
            waiters, self.factory.waiters = self.factory.waiters, []
            for d in waiters:
                d.callback(None)


class HardCapEndToEnd(TestCase):
    """max=2 through a real server: four requests at once, two connections."""

    @defer.inlineCallbacks
    def setUp(self):
        from axkit.testing import start_server

        self.factory = Factory.forProtocol(Held)
        self.factory.connections, self.factory.held, self.factory.waiters = 0, [], []
        self.port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        bport = self.port.getHost().port
        self.server = yield start_server(
            f"Plugin proxy\nProxyPass / http://127.0.0.1:{bport}/ max=2 timeout=20\n"
        )
        self.addCleanup(self.server.stop)
        self.addCleanup(client.close_all)

    def ask(self, path):
        return exchange(self.server.port, request_bytes(path))

    @defer.inlineCallbacks
    def held(self, n):
        """Until the backend holds ``n`` requests."""
        while len(self.factory.held) < n:
            d = defer.Deferred()
            self.factory.waiters.append(d)
            yield d

    @defer.inlineCallbacks
    def test_requests_beyond_max_wait_for_a_connection(self):
        answers = [self.ask("/a"), self.ask("/b")]
        yield self.held(2)
        (pool,) = client._pools.values()
        answers += [self.ask("/c"), self.ask("/d")]
        for _ in range(2000):  # (a bounded wait: both reach the pool and wait)
            if len(pool.waiting) == 2 or self.factory.connections > 2:
                break
            yield deferLater(reactor, 0.001, lambda: None)
        self.assertEqual((self.factory.connections, len(pool.open)), (2, 2))
        self.assertEqual(len(pool.waiting), 2)
        for transport in self.factory.held:
            transport.write(OK_1)
        del self.factory.held[:]
        yield self.held(2)  # the waiting two, on the same two connections
        for transport in self.factory.held:
            transport.write(OK_1)
        bodies = [head_and_body(raw)[2] for raw in (yield defer.gatherResults(answers))]
        self.assertEqual(bodies, [b"ok"] * 4)
        self.assertEqual(self.factory.connections, 2)


class DirectEndpointTest(TestCase):
    """Plain backends are connected without an endpoint's wrapping protocol
    (so the reactor dispatches their reads directly)."""

    def setUp(self):
        self.factory = Factory.forProtocol(Protocol)
        self.port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.pool = client.Pool(reactor, None, max_idle=2, ttl=10)
        self.addCleanup(self.pool.close)

    def endpoint(self, port):
        return DirectEndpoint(reactor, "127.0.0.1", port)

    @defer.inlineCallbacks
    def test_the_transport_carries_the_protocol_itself(self):
        conn = yield self.endpoint(self.port.getHost().port).connect(self.pool.factory)
        self.assertIsInstance(conn, client.BackendConnection)
        self.assertIs(conn.transport.protocol, conn)
        self.assertIn(conn, self.pool.open)

    def test_cancelled_before_connected(self):
        d = self.endpoint(self.port.getHost().port).connect(self.pool.factory)
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        self.assertEqual(self.pool.open, set())

    @defer.inlineCallbacks
    def test_refused(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
        s.close()
        with self.assertRaises(ConnectionRefusedError):
            yield self.endpoint(closed).connect(self.pool.factory)
