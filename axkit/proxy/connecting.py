"""Connecting to a plain (TCP or UNIX) backend without an endpoint's wrapper.

Twisted's client endpoints put a ``_WrappingProtocol`` between the
transport and the protocol: every read of a kept backend connection then
passes through one more ``dataReceived``, and the reactor, seeing a
protocol class it does not know, wraps each event in the legacy log
context (axkit.reactor dispatches directly only the classes registered
with ``dispatch_directly``).  ``DirectEndpoint`` has an endpoint's
``connect(factory)`` -> Deferred face but connects with
``reactor.connectTCP``/``connectUNIX``: the transport carries the
protocol itself, and the Deferred fires from the protocol's
``connectionMade`` (its ``made`` attribute; see
axkit.proxy.client.BackendConnection).  TLS backends keep Twisted's
endpoint (``wrapClientTLS``): their protocol is the TLS layer anyway.
"""

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import NotConnectingError
from twisted.internet.protocol import ClientFactory


class DirectEndpoint:
    """``connect(factory)``: a Deferred firing with the connected protocol
    (which must call ``made.callback(self)`` in its ``connectionMade``)."""

    def __init__(self, reactor, host=None, port=None, path=None, timeout=10):
        self.reactor = reactor
        self.host = host
        self.port = port
        self.path = path  # a UNIX socket, else host and port
        self.timeout = timeout

    def connect(self, factory):
        attempt = _Attempt(factory)
        d = attempt.d = Deferred(attempt.cancel)
        if self.path is not None:
            attempt.connector = self.reactor.connectUNIX(self.path, attempt, self.timeout)
        else:
            attempt.connector = self.reactor.connectTCP(self.host, self.port, attempt, self.timeout)
        return d


class _Attempt(ClientFactory):
    """One connection attempt (what an endpoint's wrapping factory does)."""

    noisy = False  # no "Starting factory" line per backend connection
    d = None
    connector = None
    cancelled = False

    def __init__(self, factory):
        self.factory = factory

    def buildProtocol(self, addr):
        protocol = self.factory.buildProtocol(addr)
        protocol.made = self.d  # (fired by its connectionMade)
        return protocol

    def clientConnectionFailed(self, connector, reason):
        d = self.d
        if not d.called:
            if self.cancelled:
                d.errback(CancelledError())
            else:
                d.errback(reason)

    def cancel(self, d):
        # Before the connection is made: stop trying (-> clientConnectionFailed).
        self.cancelled = True
        if self.connector is not None:
            try:
                self.connector.stopConnecting()
            except NotConnectingError:
                pass  # (connected meanwhile: the Deferred has fired)
