"""WebSocket upgrade edge cases found by running axkit beside Apache 2.4.71
and nginx 1.22 (docs/proxy.md, "Edge cases"): in memory, the engine on a
MemorySite and the backend driven by hand."""

from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from axkit.proxy import client
from axkit.testing import MemorySite

from .test_proxy_websocket_memory import SWITCH, UPGRADE


class EdgeTests(SynchronousTestCase):
    def setUp(self):
        self.site = MemorySite(
            "Plugin proxy\nProxyPass /ws/ http://127.0.0.1:9/ upgrade=websocket timeout=5\n"
        )
        self.addCleanup(self.site.close)
        self.conn = self.site.connect()

    def backend(self):
        factory = self.site.clock.tcpClients[-1][2]
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        return protocol, transport

    def plain_backend(self):
        """A plain request's pool connection: lost at the end, and the
        pools (module-wide) emptied, so no later test waits on it."""
        protocol, transport = self.backend()
        self.addCleanup(client.close_all)
        self.addCleanup(protocol.connectionLost, Failure(ConnectionDone()))
        return protocol, transport

    def answer(self):
        head, _, body = self.conn.transport.value().partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        return lines[0], [line.lower() for line in lines[1:]], body

    def test_a_426_keeps_its_upgrade_field(self):
        # RFC 9110 15.5.22: a 426 MUST say which protocol in Upgrade;
        # Apache and nginx both relay the backend's.
        self.conn.send(UPGRADE)
        protocol, _ = self.backend()
        protocol.dataReceived(
            b"HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nContent-Length: 4\r\n\r\nno!\n"
        )
        status, fields, body = self.answer()
        self.assertEqual(status, "HTTP/1.1 426 Upgrade Required")
        self.assertIn("upgrade: websocket", fields)
        self.assertEqual(body, b"no!\n")

    def test_other_refusals_drop_upgrade(self):
        self.conn.send(UPGRADE)
        protocol, _ = self.backend()
        protocol.dataReceived(
            b"HTTP/1.1 403 Forbidden\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n"
        )
        status, fields, _ = self.answer()
        self.assertEqual(status, "HTTP/1.1 403 Forbidden")
        self.assertFalse([f for f in fields if f.startswith("upgrade:")])

    def test_frame_bytes_in_the_101_s_packet_reach_the_client(self):
        self.conn.send(UPGRADE)
        protocol, _ = self.backend()
        protocol.dataReceived(SWITCH + b"\x81\x05hello")
        status, _, rest = self.answer()
        self.assertEqual(status, "HTTP/1.1 101 Switching Protocols")
        self.assertEqual(rest, b"\x81\x05hello")

    def test_frames_sent_before_the_101_reach_the_backend_after_the_head(self):
        self.conn.send(UPGRADE + b"\x81\x05early")
        protocol, transport = self.backend()
        self.assertNotIn(b"early", transport.value())
        transport.clear()
        protocol.dataReceived(SWITCH)
        self.assertEqual(transport.value(), b"\x81\x05early")

    def test_http_1_0_is_not_tunnelled(self):
        # RFC 9110 7.8: a server MUST ignore Upgrade in an HTTP/1.0
        # request (Apache and nginx tunnel it; Apache then sent frames
        # with no 101 head). It is proxied as a plain request.
        self.conn.send(UPGRADE.replace(b"HTTP/1.1", b"HTTP/1.0", 1))
        _, transport = self.plain_backend()
        sent = transport.value().lower()
        self.assertNotIn(b"upgrade: websocket", sent)
        self.assertNotIn(b"connection: upgrade", sent)

    def test_upgrade_without_connection_upgrade_is_not_tunnelled(self):
        self.conn.send(UPGRADE.replace(b"Connection: Upgrade\r\n", b""))
        _, transport = self.plain_backend()
        self.assertNotIn(b"upgrade: websocket", transport.value().lower())

    def test_keep_alive_and_upgrade_in_connection_is_tunnelled(self):
        self.conn.send(UPGRADE.replace(b"Connection: Upgrade", b"Connection: keep-alive, Upgrade"))
        protocol, transport = self.backend()
        self.assertIn(b"Connection: Upgrade\r\n", transport.value())
        protocol.dataReceived(SWITCH)
        self.assertEqual(self.answer()[0], "HTTP/1.1 101 Switching Protocols")


class PlainRouteTests(SynchronousTestCase):
    """A 426 through a plain ProxyPass (no upgrade= key) keeps its Upgrade
    field too, as Apache and nginx relay it (RFC 9110 15.5.22); other
    answers never carry one."""

    def setUp(self):
        self.site = MemorySite("Plugin proxy\nProxyPass /p/ http://127.0.0.1:9/ timeout=5\n")
        self.addCleanup(self.site.close)
        self.conn = self.site.connect()

    def answer_with(self, head):
        self.conn.send(b"GET /p/x HTTP/1.1\r\nHost: a\r\n\r\n")
        factory = self.site.clock.tcpClients[-1][2]
        protocol = factory.buildProtocol(None)
        protocol.makeConnection(StringTransport())
        self.addCleanup(client.close_all)
        self.addCleanup(protocol.connectionLost, Failure(ConnectionDone()))
        protocol.dataReceived(head)
        head, _, body = self.conn.transport.value().partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        return lines[0], [line.lower() for line in lines[1:]], body

    def test_a_426_keeps_its_upgrade_field(self):
        status, fields, body = self.answer_with(
            b"HTTP/1.1 426 Upgrade Required\r\nUpgrade: TLS/1.3\r\n"
            b"Connection: Upgrade\r\nContent-Length: 3\r\n\r\nno\n"
        )
        self.assertEqual(status, "HTTP/1.1 426 Upgrade Required")
        self.assertIn("upgrade: TLS/1.3".lower(), fields)
        self.assertEqual(body, b"no\n")

    def test_a_200_drops_it(self):
        status, fields, _ = self.answer_with(
            b"HTTP/1.1 200 OK\r\nUpgrade: TLS/1.3\r\nContent-Length: 0\r\n\r\n"
        )
        self.assertEqual(status, "HTTP/1.1 200 OK")
        self.assertFalse([f for f in fields if f.startswith("upgrade:")])
