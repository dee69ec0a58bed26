"""Handlers that take an Upgrade with ``request.upgrade`` (the tests of the
hand-over load them by dotted path)."""

from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Protocol
from zope.interface import implementer

from axkit.hooks import DECLINED, DONE, OK

# The protocols the handlers made, newest last.
made = []


@implementer(IHalfCloseableProtocol)
class Echo(Protocol):
    """Echoes what it reads; records what it saw."""

    def __init__(self):
        self.received = []
        self.half_closed = False
        self.lost = None
        self.connected_with = None

    def connectionMade(self):
        self.connected_with = self.transport

    def dataReceived(self, data):
        self.received.append(data)
        self.transport.write(data)

    def readConnectionLost(self):
        self.half_closed = True

    def writeConnectionLost(self):
        pass

    def connectionLost(self, reason):
        self.lost = reason


class Upgrader:
    """/now: upgraded at once; /later: after 1 s on the clock; /plain:
    answered 200 though an Upgrade was asked; /slow: 200 after 1 s."""

    name = "upgrader"

    def hook_response(self, request, conf):
        if request.path == "/plain":
            request.send(200, b"plain " + str(request.upgrade_requested).encode())
            return DONE
        if request.path == "/slow":
            request.reactor.callLater(1, request.send, 200, b"slow")
            return OK
        if request.path == "/force":
            request.upgrade(Echo())  # (no Upgrade asked: raises)
            return DONE
        if request.path not in ("/now", "/later"):
            return DECLINED
        if not request.upgrade_requested:
            request.send(426, b"upgrade wanted")
            return DONE

        def switch():
            protocol = Echo()
            made.append(protocol)
            request.response_headers.set("Upgrade", "echo")
            request.upgrade(protocol)

        if request.path == "/now":
            switch()
            return DONE
        request.reactor.callLater(1, switch)
        return OK
