"""Shared helpers of the HTTP engine tests: an echo site, raw socket exchanges."""

from twisted.internet import defer, reactor
from twisted.internet.protocol import ClientFactory, Protocol

from axkit.testing import MemorySite

ECHO_CONFIG = """
    Listen tcp:0:interface=127.0.0.1
    Plugin tests.httpplugins.Status
    Plugin tests.httpplugins.Inject
    Plugin tests.httpplugins.Echo
"""


def memory_site(test, extra="", plugins=None):
    site = MemorySite(ECHO_CONFIG + (plugins or "") + extra, route_logs=False)
    test.addCleanup(site.close)
    return site


class _Collect(Protocol):
    def __init__(self, payload, done, pieces):
        self.payload = payload
        self.done = done
        self.pieces = pieces
        self.data = []

    def connectionMade(self):
        if self.pieces:
            first, *rest = self.pieces
            self.transport.write(first)
            delay = 0.05
            for piece in rest:
                reactor.callLater(delay, self._send, piece)
                delay += 0.05
        else:
            self.transport.write(self.payload)

    def _send(self, piece):
        if self.transport.connected:
            self.transport.write(piece)

    def dataReceived(self, data):
        self.data.append(data)

    def connectionLost(self, reason):
        if not self.done.called:
            self.done.callback(b"".join(self.data))


def raw_exchange(port, payload=b"", pieces=(), timeout=10):
    """Send ``payload`` (or ``pieces`` 50 ms apart), read until the server
    closes; fails with a timeout if it never does."""
    done = defer.Deferred()
    factory = ClientFactory()
    factory.buildProtocol = lambda addr: _Collect(payload, done, list(pieces))
    reactor.connectTCP("127.0.0.1", port, factory)
    done.addTimeout(timeout, reactor)
    return done


def send_then_half_close(port, data, timeout=10.0):
    """Blocking: send ``data``, close the sending side (a FIN, as
    `nc -N`), read until the server closes."""
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        pieces = []
        while True:
            piece = s.recv(65536)
            if not piece:
                break
            pieces.append(piece)
        return b"".join(pieces)
    finally:
        s.close()
