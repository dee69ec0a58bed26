"""The WebSocket tunnel in memory: the engine on a MemorySite, the backend
connection on the site's fake reactor, driven by hand -- the failures
before the answer (with the fake clock for the timeout) and backpressure
both ways."""

from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from axkit.testing import MemorySite

UPGRADE = (
    b"GET /ws/chat?room=1 HTTP/1.1\r\nHost: front\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
SWITCH = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"


class MemoryTunnelTests(SynchronousTestCase):
    def setUp(self):
        self.site = MemorySite(
            "Plugin proxy\nProxyPass /ws/ http://127.0.0.1:9/ upgrade=websocket timeout=5\n"
        )
        self.addCleanup(self.site.close)
        self.conn = self.site.connect()
        self.conn.send(UPGRADE)

    def backend(self):
        """Accept the tunnel's backend connection: (protocol, transport)."""
        host, port, factory = self.site.clock.tcpClients[-1][:3]
        self.assertEqual((host, port), ("127.0.0.1", 9))
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        return protocol, transport

    def status(self):
        return self.conn.transport.value().split(b"\r\n", 1)[0]

    def logged(self, text):
        return [e for e in self.site.events if text in str(e.get("why", ""))]

    def test_the_request_sent_to_the_backend(self):
        _, transport = self.backend()
        head = transport.value().decode("latin-1").split("\r\n")
        self.assertEqual(head[0], "GET /chat?room=1 HTTP/1.1")
        self.assertIn("Upgrade: websocket", head)
        self.assertIn("Connection: Upgrade", head)
        self.assertIn("Host: 127.0.0.1:9", head)

    def test_refused_is_502(self):
        factory = self.site.clock.tcpClients[-1][2]
        factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
        self.assertEqual(self.status(), b"HTTP/1.1 502 Bad Gateway")
        self.assertTrue(self.logged("cannot connect"))

    def test_no_answer_within_the_timeout_is_504(self):
        self.backend()
        self.site.clock.advance(4)
        self.assertEqual(self.conn.transport.value(), b"")
        self.site.clock.advance(3)
        self.assertEqual(self.status(), b"HTTP/1.1 504 Gateway Timeout")
        self.assertTrue(self.logged("no answer within 5s"))

    def test_closed_before_an_answer_is_502(self):
        protocol, _ = self.backend()
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.status(), b"HTTP/1.1 502 Bad Gateway")
        self.assertTrue(self.logged("connection closed before an answer"))

    def test_a_malformed_answer_is_502(self):
        protocol, transport = self.backend()
        protocol.dataReceived(b"HTTP/1.1 abc\r\n\r\n")
        self.assertEqual(self.status(), b"HTTP/1.1 502 Bad Gateway")
        self.assertTrue(transport.disconnecting or transport.disconnected)

    def test_101_without_upgrade_is_502(self):
        protocol, _ = self.backend()
        protocol.dataReceived(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n")
        self.assertEqual(self.status(), b"HTTP/1.1 502 Bad Gateway")

    def test_the_tunnel_relays_and_pauses_both_ways(self):
        protocol, transport = self.backend()
        protocol.dataReceived(SWITCH + b"early frame")
        client = self.conn.transport
        self.assertTrue(client.value().startswith(b"HTTP/1.1 101 Switching Protocols\r\n"))
        self.assertTrue(client.value().endswith(b"\r\n\r\nearly frame"))
        self.conn.send(b"from the client")
        self.assertTrue(transport.value().endswith(b"from the client"))
        protocol.dataReceived(b" from the backend")
        self.assertTrue(client.value().endswith(b"early frame from the backend"))
        # The client's socket is full: the backend's reads pause, and resume.
        client.producer.pauseProducing()
        self.assertEqual(transport.producerState, "paused")
        client.producer.resumeProducing()
        self.assertEqual(transport.producerState, "producing")
        # The backend's socket is full: the client's reads pause.
        transport.producer.pauseProducing()
        self.assertEqual(client.producerState, "paused")
        transport.producer.resumeProducing()
        self.assertEqual(client.producerState, "producing")

    def test_an_idle_tunnel_closes_after_the_timeout(self):
        protocol, transport = self.backend()
        protocol.dataReceived(SWITCH)
        self.site.clock.advance(4)
        self.conn.send(b"keep me")  # (moves the deadline on)
        self.site.clock.advance(4)
        self.assertFalse(self.conn.transport.disconnecting)
        self.site.clock.advance(3)
        self.assertTrue(self.conn.transport.disconnecting)
        self.assertTrue(transport.disconnecting)

    def test_closing_unregisters_the_reads_producers_first(self):
        # A TLS transport sends its close_notify (and closes) only once no
        # producer is registered on it: the tunnel's close must unregister
        # the other side's reads, or a wss client waits for the close.
        protocol, transport = self.backend()
        protocol.dataReceived(SWITCH)
        client = self.conn.transport
        self.assertIsNotNone(client.producer)
        self.assertIsNotNone(transport.producer)
        protocol.readConnectionLost()  # the backend's FIN after its Close frame
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertTrue(client.disconnecting)
        self.assertIsNone(client.producer)
        self.assertIsNone(transport.producer)

    def test_the_client_going_closes_the_backend(self):
        protocol, transport = self.backend()
        protocol.dataReceived(SWITCH)
        self.conn.lose()
        self.assertTrue(transport.disconnecting)

    def test_the_client_going_before_the_answer_drops_the_backend(self):
        _, transport = self.backend()
        self.conn.lose()
        self.assertTrue(transport.disconnected or transport.disconnecting)


class BalancedTunnelTests(SynchronousTestCase):
    """A tunnel keeps its balancer member busy while it lasts (bybusyness)."""

    def setUp(self):
        self.site = MemorySite(
            "Plugin proxy\n"
            "<Proxy balancer://app>\n"
            "    BalancerMember http://127.0.0.1:9\n"
            "    BalancerMember http://127.0.0.1:10\n"
            "    ProxySet lbmethod=bybusyness\n"
            "</Proxy>\n"
            "ProxyPass /ws/ balancer://app/ upgrade=websocket\n"
        )
        self.addCleanup(self.site.close)
        (self.balancer,) = self.site.config.global_resolved.conf.proxy
        self.members = self.balancer.members

    def open(self):
        conn = self.site.connect()
        conn.send(UPGRADE)
        host, port, factory = self.site.clock.tcpClients[-1][:3]
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        return conn, port, protocol, transport

    def test_busy_until_the_tunnel_closes(self):
        conn, port, protocol, _ = self.open()
        protocol.dataReceived(SWITCH)
        self.assertTrue(conn.transport.value().startswith(b"HTTP/1.1 101 "))
        busy = {m.backend.port: m.busy for m in self.members}
        self.assertEqual(busy[port], 1)
        # The next one goes to the other member.
        _, second, _, _ = self.open()
        self.assertNotEqual(second, port)
        conn.lose()
        self.assertEqual({m.backend.port: m.busy for m in self.members}[port], 0)

    def test_a_refusing_member_is_not_left_busy(self):
        conn = self.site.connect()
        conn.send(UPGRADE)
        first = self.site.clock.tcpClients[-1]
        first[2].clientConnectionFailed(None, Failure(ConnectionRefusedError()))
        second = self.site.clock.tcpClients[-1]
        self.assertNotEqual(first[1], second[1])
        busy = {m.backend.port: m.busy for m in self.members}
        self.assertEqual(busy[first[1]], 0)
        self.assertEqual(busy[second[1]], 1)
