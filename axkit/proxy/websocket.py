"""WebSocket passthrough: ``ProxyPass /ws/ http://host/ upgrade=websocket``
(or a ``ws://``/``wss://`` URL, as mod_proxy_wstunnel writes it).

A GET asking for ``Upgrade: websocket`` with ``Connection: Upgrade`` on
such a route gets a backend connection of its own (not one of the pool's:
it becomes the tunnel).  Its head goes out with ``Upgrade`` and
``Connection: Upgrade`` kept -- every other hop-by-hop rule as for any
proxied request -- and the answer's head is read with httptools:

* ``101``: relayed (``request.upgrade``), then bytes are copied both ways
  as they are.  Each side's reading is the other's push producer, so a
  side that reads slowly pauses the reads of the other: what is held in
  between stays within the transports' buffers.  A FIN from one side is
  passed on to the other; once both sides have closed their sending side,
  or either connection is lost, both close.  A tunnel with nothing moving
  either way for its timeout (``timeout=``, else ProxyTimeout) is closed.
* anything else: relayed as an ordinary response, then the backend
  connection is closed.

Failures before the head are answered as Forward answers them (502, 504),
with one log line naming the backend; an open tunnel's end is one info line
(bytes each way, who closed, how long).

Why over 500 lines: a tunnel's states (connecting, head, answer, tunnel,
closed) and the ways each one ends are one story; split, each half would
need the other's states.
"""

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectError, ConnectionRefusedError
from twisted.internet.interfaces import (
    IHalfCloseableDescriptor,
    IHalfCloseableProtocol,
    IPushProducer,
    ISSLTransport,
)
from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer

from axkit.hooks import DONE
from axkit.http.framing import split_tokens
from axkit.http.head import HeaderInjection
from axkit.log import PluginLogger
from axkit.reactor import dispatch_directly

from .client import CONNECT_TIMEOUT, backend_endpoint
from .connecting import DirectEndpoint
from .hop import RESPONSE_OWN, end_to_end
from .tls import TLSSettings

log = PluginLogger("proxy")

# The backend's answer head may be no larger (as the engine's LimitRequestFieldSize
# default bounds a client's).
MAX_HEAD = 65536

_UPGRADE = frozenset(("upgrade",))
_NONE = frozenset()

# The tunnel's states.
CONNECTING, HEAD, ANSWER, TUNNEL, CLOSED = range(5)
# Sides (a bit set of the ones that have sent their FIN).
CLIENT, BACKEND = 1, 2


def wanted(request):
    """Whether ``request`` asks for a WebSocket the engine can hand over:
    a GET with ``Upgrade: websocket`` and ``Connection: Upgrade`` (HTTP/1.1,
    no body)."""
    if request.method != "GET" or not request.upgrade_requested:
        return False
    return "websocket" in split_tokens(request.headers.get("upgrade") or "")


class Tunnel:
    """One WebSocket request's exchange with ``backend``: the same face as
    axkit.proxy.forward.Forward (``start()``, ``on_success``,
    ``on_failure``), so a balancer uses either."""

    def __init__(self, request, backend, url, fields, timeout, tls=None):
        self.request = request
        self.backend = backend
        # (url: http://netloc/path?query, the path part is what is asked.)
        self.target = url.split("://", 1)[1][len(backend.netloc) :] or "/"
        self.fields = fields
        self.timeout = timeout
        self.tls = tls  # axkit.proxy.tls.TLSSettings (SSLProxy*), for wss:// and https://
        self.done = Deferred()
        self.on_success = None
        self.on_failure = None
        # on_closed(): when the tunnel is over, however (a balancer keeps
        # its member busy until then, not only until the 101).
        self.on_closed = None
        self.state = CONNECTING
        self.peer = None  # the _Backend protocol
        self.client = None  # the client's transport, after the 101
        self.fins = 0
        self.connecting = None
        self.timed_out = False
        self.deadline = request.deadline(self._expired)
        # For the line logged when an open tunnel closes: bytes each way,
        # who closed first, how long it lasted.
        self.up = self.down = 0
        self.closed_by = None
        self.opened = None  # (reactor, seconds) at the 101
        self.where = None  # (path, client address)

    def start(self):
        request = self.request
        backend = self.backend
        reactor = request.reactor
        if backend.tls:
            tls = self.tls if self.tls is not None else TLSSettings()
            endpoint = backend_endpoint(reactor, backend, tls)
        else:  # (no wrapping protocol: the reactor dispatches its reads directly)
            endpoint = DirectEndpoint(
                reactor, backend.host, backend.port, backend.socket, CONNECT_TIMEOUT
            )
        self.deadline.after(self.timeout)
        request.when_ended(self._request_ended)
        self.connecting = endpoint.connect(_OneShot(_Backend(self)))
        self.connecting.addCallbacks(self._connected, self._not_connected)
        return self.done

    # -- before the answer ---------------------------------------------------

    def _connected(self, peer):
        self.connecting = None
        if self.state == CLOSED:
            peer.transport.loseConnection()
            return
        self.peer = peer
        self.state = HEAD
        request = self.request
        lines = [f"GET {self.target} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in self.fields]
        lines.append("Upgrade: " + request.headers.get("upgrade", "websocket"))
        lines.append("Connection: Upgrade")
        peer.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def _not_connected(self, failure):
        self.connecting = None
        if self.state == CLOSED:
            return None
        if self.timed_out:
            return self._fail(f"no connection within {self.timeout:g}s", 504, True)
        if failure.check(ConnectionRefusedError, ConnectError):
            return self._fail(f"cannot connect: {failure.value}", 502, True)
        return self._fail(failure.getErrorMessage() or failure.type.__name__, 502, True)

    def _fail(self, why, status, nothing_sent=False):
        """Before the head: answer ``status`` (or another balancer member)."""
        self.deadline.cancel()
        state = self.state
        self._end()
        if self.peer is not None:
            self.peer.transport.abortConnection()
        if self.on_failure is not None and state in (CONNECTING, HEAD):
            retry = self.on_failure(self, nothing_sent)
            if retry is not None:
                self._log(why + ", trying another member")
                retry.addBoth(lambda _: self._done())
                return None
        self._log(why)
        request = self.request
        if status is not None and not request.headers_sent:
            request.send_error(status)
        elif not request.finished:
            request.abort()
        self._done()
        return None

    def _end(self):
        """Every way the exchange ends comes here (once)."""
        self.state = CLOSED
        closed, self.on_closed = self.on_closed, None
        if closed is not None:
            closed()

    def _log(self, why):
        request = self.request
        log.error(
            "backend {backend}: {why} (WebSocket {path})",
            backend=str(self.backend),
            why=why,
            path=request.path,
            request=request,
        )

    def _done(self):
        if not self.done.called:
            self.done.callback(DONE)

    def _request_ended(self):
        """The request ended before a 101 took it (the client went, or the
        engine answered in our place): drop the backend."""
        if self.state in (TUNNEL, CLOSED):
            return
        self._end()
        self.deadline.cancel()
        if self.connecting is not None:
            self.connecting.cancel()
        if self.peer is not None:
            self.peer.transport.abortConnection()
        self._done()

    def _expired(self):
        if self.state == TUNNEL:
            log.info(
                "backend {backend}: WebSocket idle for {timeout:g}s, closed",
                backend=str(self.backend),
                timeout=self.timeout,
            )
            self.close("the idle timeout")
        elif self.state in (CONNECTING, HEAD):
            self.timed_out = True
            if self.connecting is not None:
                self.connecting.cancel()  # -> _not_connected
            else:
                self._fail(f"no answer within {self.timeout:g}s", 504)
        elif self.state == ANSWER:
            self._fail(f"no data for {self.timeout:g}s after the head", None)

    # -- the answer ------------------------------------------------------------

    def head(self, status, fields):
        """A non-101 answer's head: relayed as an ordinary response."""
        if self.on_success is not None:
            self.on_success()
        request = self.request
        self.state = ANSWER
        length = None
        chunked = False
        for name, value in fields:  # (the framing, before it is stripped)
            name = name.lower()
            if name == "content-length" and value.strip().isdigit():
                length = int(value)
            elif name == "transfer-encoding":
                chunked = True
        # A 426 says which protocol in its Upgrade field (RFC 9110 15.5.22):
        # kept, as Apache and nginx relay it.
        fields = end_to_end(fields, RESPONSE_OWN, keep=_UPGRADE if status == 426 else _NONE)
        self.peer.close_delimited = length is None and not chunked
        try:
            if request.add_handler_fields(fields) is False:
                self._end()  # answered otherwise (X-Sendfile)
                self.deadline.cancel()
                self.peer.transport.loseConnection()
                self._done()
                return
            request.start_response(status, length)
        except HeaderInjection as e:
            self._fail(f"bad field in the answer: {e}", 502)
            return
        request.register_producer(_Reads(self.peer.transport), True)
        self.deadline.after(self.timeout)

    def body(self, data):
        if self.state == ANSWER:
            self.deadline.extend(self.timeout)
            self.request.write(data)

    def answered(self):
        if self.state != ANSWER:
            return
        self._end()
        self.deadline.cancel()
        request = self.request
        request.unregister_producer()
        request.finish()
        self.peer.transport.loseConnection()
        self._done()

    def switch(self, fields, rest):
        """The 101: relay its head, hand the client's connection to the tunnel."""
        if self.on_success is not None:
            self.on_success()
        request = self.request
        fields = end_to_end(fields, RESPONSE_OWN, keep=_UPGRADE)
        if not any(n.lower() == "upgrade" for n, _ in fields):
            self._fail("answered 101 without an Upgrade field", 502)
            return
        self.state = TUNNEL  # (before the hand-over: the client's bytes may follow at once)
        try:
            request.add_handler_fields(fields)
            request.upgrade(_Client(self))
        except HeaderInjection as e:
            self.state = HEAD
            self._fail(f"bad field in the answer: {e}", 502)
            return
        except RuntimeError as e:  # (the client went meanwhile)
            self.state = HEAD
            self._fail(str(e), None)
            return
        self.deadline.after(self.timeout)
        reactor = request.reactor
        self.opened = (reactor, reactor.seconds())
        self.where = (request.path, request.client_address)
        if rest and self.client is not None:
            self.down += len(rest)
            self.client.write(rest)
        self._done()
        # A tunnel may stay open for days: keep only what relaying needs.
        self.request = self.fields = None
        self.peer.parser = self.peer.fields = None

    # -- the tunnel ----------------------------------------------------------

    def client_connected(self, transport):
        self.client = transport
        backend = self.peer.transport
        # Each side's transport pauses the other's reads while it is full.
        transport.registerProducer(_Reads(backend), True)
        backend.registerProducer(_Reads(transport), True)

    def from_client(self, data):
        if self.state == TUNNEL:
            self.deadline.extend(self.timeout)
            self.up += len(data)
            self.peer.transport.write(data)

    def from_backend(self, data):
        if self.state == TUNNEL:
            self.deadline.extend(self.timeout)
            self.down += len(data)
            self.client.write(data)

    def half_closed(self, side):
        """``side`` sent its FIN: pass it on; with both sent, close."""
        if self.state != TUNNEL:
            return
        if self.closed_by is None:
            self.closed_by = "the client" if side == CLIENT else "the backend"
        self.fins |= side
        if self.fins == CLIENT | BACKEND:
            self.close()
            return
        other = self.peer.transport if side == CLIENT else self.client
        if IHalfCloseableDescriptor.providedBy(other) and not ISSLTransport.providedBy(other):
            other.loseWriteConnection()
        else:
            # TLS cannot half-close: its transport claims the interfaces of
            # the TCP connection under it and would shut that one's sending
            # side, under the TLS layer (which then breaks).  Close instead.
            self.close()

    def close(self, by="the client"):
        """Close both sides (each once what it holds is sent)."""
        if self.state == CLOSED:
            return
        if self.state == TUNNEL:
            self._log_closed(self.closed_by or by)
        self._end()
        self.deadline.cancel()
        for transport in (self.client, self.peer.transport if self.peer else None):
            if transport is not None:
                # (The other side's reads were its producer: a TLS transport
                # would not send its close_notify while one is registered,
                # and the client would wait for the close.)
                transport.unregisterProducer()
                transport.loseConnection()

    def _log_closed(self, by):
        """One line when an open tunnel ends (its open was the access log's
        101): what an operator needs to account for it."""
        reactor, opened = self.opened or (None, 0.0)
        path, client = self.where or ("?", "?")
        log.info(
            "backend {backend}: WebSocket {path} from {client} closed by {by} after "
            "{duration:.1f}s: {up} bytes from the client, {down} from the backend",
            backend=str(self.backend),
            path=path,
            client=client,
            by=by,
            duration=reactor.seconds() - opened if reactor is not None else 0.0,
            up=self.up,
            down=self.down,
        )

    def backend_lost(self, protocol, reason):
        state = self.state
        if state == TUNNEL:
            self.close("the backend")
        elif state == HEAD:
            if type(reason.value).__module__.startswith("OpenSSL"):
                self._fail(f"TLS failed: {reason.getErrorMessage()}", 502, False)
            else:
                self._fail("connection closed before an answer", 502, False)
        elif state == ANSWER:
            if protocol.close_delimited:
                self.answered()
            else:
                self._fail("answer cut", None)


@implementer(IPushProducer)
class _Reads:
    """One side's reading, as the other side's push producer: paused while
    the other's buffer is full.  (Not the transport itself: a transport
    told to stopProducing closes, and under TLS it would close the TCP
    connection beneath the TLS layer; closing is the tunnel's business.)"""

    __slots__ = ("transport",)

    def __init__(self, transport):
        self.transport = transport

    def pauseProducing(self):
        self.transport.pauseProducing()

    def resumeProducing(self):
        self.transport.resumeProducing()

    def stopProducing(self):
        pass


class _OneShot(Factory):
    """connectProtocol's factory, without a "Starting factory" line per tunnel."""

    noisy = False

    def __init__(self, protocol):
        self.protocol_instance = protocol

    def buildProtocol(self, addr):
        return self.protocol_instance


@dispatch_directly  # (twisted.logger only: no legacy log context per read)
@implementer(IHalfCloseableProtocol)
class _Backend(Protocol):
    """The tunnel's backend connection: reads the answer's head (httptools),
    then relays."""

    made = None  # DirectEndpoint's Deferred, fired once connected

    def __init__(self, tunnel):
        self.tunnel = tunnel
        self.parser = HttpResponseParser(self)
        self.fields = []
        self.status = None
        self.size = 0
        self.close_delimited = False

    def connectionMade(self):
        made = self.made
        if made is not None:
            self.made = None
            if made.called:  # (given up meanwhile)
                self.transport.loseConnection()
            else:
                made.callback(self)

    def dataReceived(self, data):
        tunnel = self.tunnel
        if tunnel.state == TUNNEL:
            tunnel.from_backend(data)
            return
        if tunnel.state not in (HEAD, ANSWER):
            return
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade as e:
            if self.status == 101 and tunnel.state == HEAD:
                rest = bytes(data[e.args[0] :]) if e.args else b""
                tunnel.switch(self.fields, rest)
            else:
                tunnel._fail("an upgrade nobody asked for", 502)
        except HttpParserError as e:
            cause = e.__context__ if e.__context__ is not None else e
            tunnel._fail(f"malformed answer: {cause}", 502)

    # httptools callbacks
    def on_header(self, name, value):
        self.size += len(name) + len(value) + 4
        if self.size > MAX_HEAD:
            raise ValueError(f"answer head larger than {MAX_HEAD} bytes")
        self.fields.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self):
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self.fields = []  # (an interim answer: skipped)
            return
        self.status = status
        if status != 101:
            self.tunnel.head(status, self.fields)

    def on_body(self, body):
        self.tunnel.body(body)

    def on_message_complete(self):
        if self.status is not None and self.status != 101:
            self.tunnel.answered()

    def readConnectionLost(self):
        if self.tunnel.state == TUNNEL:
            self.tunnel.half_closed(BACKEND)
        else:
            self.transport.loseConnection()

    def writeConnectionLost(self):
        pass

    def connectionLost(self, reason):
        self.tunnel.backend_lost(self, reason)


@dispatch_directly
@implementer(IHalfCloseableProtocol)
class _Client(Protocol):
    """The client's side of the tunnel (what ``request.upgrade`` connects)."""

    def __init__(self, tunnel):
        self.tunnel = tunnel

    def connectionMade(self):
        self.tunnel.client_connected(self.transport)

    def dataReceived(self, data):
        self.tunnel.from_client(data)

    def readConnectionLost(self):
        self.tunnel.half_closed(CLIENT)

    def writeConnectionLost(self):
        pass

    def connectionLost(self, reason):
        self.tunnel.close()
