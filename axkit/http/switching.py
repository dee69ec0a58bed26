"""Switching protocols (RFC 9110 §7.8): after a ``101`` the connection is
no longer HTTP, and its bytes go to another protocol (a WebSocket tunnel,
later an ASGI WebSocket).

llhttp stops after the head of a request that asks for an Upgrade
(parsing.py, ``_after_upgrade``).  What the client sent after that head is
held, unparsed, with reading paused (PAUSE_UPGRADE) until the request is
answered: a plain answer lets it be parsed as the next request; a 101
(``request.upgrade(protocol)``) hands it, and the connection, to the new
protocol.  From then on the connection is ``closing`` to HTTP: no
deadline, no keep-alive, no response to wait for (a graceful stop closes
it at once); it relays reads, the client's half-close and the
connection's loss to the protocol, which owns the transport (it writes,
pauses, registers producers and closes it itself).

`Switching` is a mixin of `axkit.http.connection.HTTPConnection` (methods
only; ``_switched`` holds the protocol).
"""

from twisted.internet.interfaces import IHalfCloseableProtocol

from .states import FINISHED, PAUSE_UPGRADE


class Switching:
    """Hand a connection to another protocol after a 101 (slots: see HTTPConnection)."""

    __slots__ = ()

    def upgradable(self, request):
        """Whether ``request`` asked for an Upgrade that can be taken: its
        head ended the HTTP stream (HTTP/1.1, no body, not CONNECT) and its
        answer has not begun."""
        return (
            self._upgrade is request
            and self._switched is None
            and not self.closing
            and request.version == "1.1"
            and request.method != "CONNECT"
            and request.body_complete
            and request.state != FINISHED
            and self.active is request
        )

    def switch_protocols(self, request, protocol):
        """(request.upgrade, after writing the 101 head.)  End ``request``
        (its watchers run, it is logged) and give the connection to
        ``protocol``."""
        self._switched = protocol
        self.closing = True  # no more HTTP: deadlines, keep-alive and drain stop
        self._deadline = None
        self._upgrade = False
        self.active = None  # (so ending the request does not close us)
        self.queue = None
        request.keep_alive = False
        request._finished()
        if self._paused & PAUSE_UPGRADE:
            self._hand_over()
        # else: still inside the parse of its head (answered at once):
        # _after_upgrade hands over what follows the head.

    def _upgrade_declined(self):
        """(connection._advance.)  The request asking for an Upgrade got a
        plain answer: what followed its head is the next request -- reading
        resumes and the held bytes are parsed."""
        self._upgrade = False
        self._paused &= ~PAUSE_UPGRADE
        if not self._paused and not self.closing and not self._read_closed:
            self.transport.resumeProducing()

    def _hand_over(self, rest=b""):
        """Connect the new protocol, then give it what was read after the head."""
        protocol = self._switched
        data = rest + self._unparsed if rest else self._unparsed
        self._unparsed = b""
        self.parser = None
        was_paused = self._paused
        self._paused = 0
        transport = self.transport
        if was_paused and not self._read_closed:
            transport.resumeProducing()
        protocol.makeConnection(transport)
        if data and self.connected:
            protocol.dataReceived(data)
        if self._read_closed and self.connected:
            self._relay_read_closed()

    def _relay_read_closed(self):
        protocol = self._switched
        if IHalfCloseableProtocol.providedBy(protocol):
            protocol.readConnectionLost()
        else:
            self.transport.loseConnection()
