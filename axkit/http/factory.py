"""Listening: the factory that builds a connection per client, and the gate
that stops accepting past MaxConnections."""

from twisted.internet.interfaces import IProtocolNegotiationFactory
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from zope.interface import implementer

from ..reactor import dispatch_directly
from .connection import HTTPConnection
from .deadlines import DeadlineWheel

log = Logger(namespace="axkit.http")


@implementer(IProtocolNegotiationFactory)
@dispatch_directly  # its listening ports' accepts (see axkit.reactor)
class HTTPFactory(Factory):
    """Builds a connection per client for one listening endpoint.

    What its connections (and the handlers, through ``request.channel``)
    share: ``reactor``, ``wheel`` (the timer service, see DeadlineWheel),
    ``now()`` (the reactor's clock), ``draining`` (shutting down: no more
    keep-alive)."""

    protocol = HTTPConnection
    noisy = False

    def acceptableProtocols(self):
        # TLS: what ALPN may choose.  Twisted answers a client offering ALPN
        # (every browser, curl) with a fatal "internal error" alert when the
        # factory names no protocol at all.
        return [b"http/1.1", b"http/1.0"]

    def __init__(self, handler, reactor=None, gate=None):
        if reactor is None:
            from twisted.internet import reactor
        self.handler = handler
        self.reactor = reactor
        self.connections = set()
        self.closed_requests = 0  # requests of the connections closed so far
        self.draining = False
        self.wheel = DeadlineWheel(reactor)
        self.gate = gate
        self.now = reactor.seconds
        self._tls = None

    def buildProtocol(self, addr):
        gate = self.gate
        if gate is not None and not gate.admit():
            return None
        return HTTPConnection(self)

    def limits(self):
        return self.handler.limits()

    def is_secure(self, transport):
        if self._tls is None:
            from twisted.internet.interfaces import ISSLTransport

            self._tls = ISSLTransport
        return self._tls.providedBy(transport)

    def connection_opened(self, connection):
        self.connections.add(connection)
        if self.gate is not None:
            self.gate.opened()

    def connection_closed(self, connection):
        self.connections.discard(connection)
        self.closed_requests += connection.requests  # (systemd's STATUS= figures)
        if self.gate is not None:
            self.gate.closed()

    def drain(self):
        """Stop keeping connections alive; close the idle ones now."""
        self.draining = True
        for connection in list(self.connections):
            connection.drain()

    def abort_all(self):
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abortConnection()


class ConnectionGate:
    """MaxConnections across every listener: past it, stop accepting (the
    listening sockets stop being read) until connections close."""

    def __init__(self, maximum):
        self.maximum = maximum
        self.count = 0
        self.ports = []
        self.paused = False

    def admit(self):
        # An accept burst may pass the limit before the ports are paused.
        if self.maximum and self.count >= self.maximum:
            self._pause()
            return False
        return True

    def opened(self):
        self.count += 1
        if self.maximum and self.count >= self.maximum:
            self._pause()

    def closed(self):
        self.count -= 1
        if self.paused and self.count < self.maximum:
            self.paused = False
            log.info("{count} connections: accepting again", count=self.count)
            for port in self.ports:
                port.startReading()

    def _pause(self):
        if not self.paused:
            self.paused = True
            log.warn(
                "MaxConnections ({maximum}) reached: not accepting until connections close",
                maximum=self.maximum,
            )
            for port in self.ports:
                port.stopReading()


class Drain:
    """Close the idle keep-alive connections of ``factories`` now, let the
    others finish their response, and fire ``done`` once none is left --
    or, ``timeout`` seconds on, cut what is left (``on_cut(count)`` says
    so first).  ``cut(log)`` ends the wait at once (a second SIGTERM).
    Shared by the graceful stop (axkit.server) and --reload's restart."""

    POLL = 0.02  # seconds between looks at what is left

    def __init__(self, reactor, factories, timeout, on_cut):
        from twisted.internet.defer import Deferred

        self.reactor = reactor
        self.factories = list(factories)
        self.on_cut = on_cut
        self.deadline = reactor.seconds() + timeout
        self.done = Deferred()
        for factory in self.factories:
            factory.drain()
        self._check()

    def open_count(self):
        return sum(len(f.connections) for f in self.factories)

    def cut(self, on_cut=None):
        """Abort what is left and fire ``done`` (once)."""
        if self.done.called:
            return
        (on_cut or self.on_cut)(self.open_count())
        for factory in self.factories:
            factory.abort_all()
        self.done.callback(None)

    def _check(self):
        if self.done.called:
            return  # cut meanwhile
        if not self.open_count():
            self.done.callback(None)
        elif self.reactor.seconds() >= self.deadline:
            self.cut()
        else:
            self.reactor.callLater(self.POLL, self._check)
