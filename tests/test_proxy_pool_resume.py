"""A kept backend connection is handed back reading: the client's side may
pause the backend's reads while an answer streams, and that answer may end
while they are paused (the proxy client, in memory)."""

from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from axkit.proxy import client
from axkit.testing import MemorySite


class PausedAtTheEnd(SynchronousTestCase):
    def setUp(self):
        self.site = MemorySite("Plugin proxy\nProxyPass /p/ http://127.0.0.1:9/ timeout=5\n")
        self.addCleanup(self.site.close)
        self.addCleanup(client.close_all)

    def test_an_answer_ending_while_paused_leaves_the_connection_reading(self):
        conn = self.site.connect()
        conn.send(b"GET /p/stream HTTP/1.1\r\nHost: a\r\n\r\n")
        factory = self.site.clock.tcpClients[-1][2]
        backend = factory.buildProtocol(None)
        transport = StringTransport()
        backend.makeConnection(transport)
        self.addCleanup(backend.connectionLost, Failure(ConnectionDone()))
        backend.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabc")
        self.assertIsNotNone(conn.transport.producer)
        conn.transport.producer.pauseProducing()  # the client's socket is full
        self.assertEqual(transport.producerState, "paused")
        backend.dataReceived(b"def")  # the answer ends while paused
        self.assertTrue(conn.transport.value().endswith(b"\r\n\r\nabcdef"))
        # The connection went back to the pool: it must read its next answer.
        self.assertEqual(transport.producerState, "producing")
        clients = len(self.site.clock.tcpClients)
        transport.clear()
        conn.send(b"GET /p/next HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(len(self.site.clock.tcpClients), clients)  # the kept one
        self.assertTrue(transport.value().startswith(b"GET /next HTTP/1.1\r\n"))
        backend.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        self.assertTrue(conn.transport.value().endswith(b"\r\n\r\nok"))
