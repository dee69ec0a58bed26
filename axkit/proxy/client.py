"""The proxy's HTTP/1.1 client: keep-alive connections to one backend.

A ``Pool`` per backend (and per ``max=``/``ttl=``/TLS settings) keeps idle
connections, most recently used first, each closed after ``ttl=`` seconds
unused; with ``max=`` no more than that many are open at once (Apache's
hard cap: a request finding them all busy waits for one).  A
``BackendConnection`` is a plain Twisted protocol on a TCP, UNIX or TLS
client endpoint; it parses answers with
httptools (llhttp) and hands them to one exchange at a time
(axkit.proxy.forward.Forward): ``answer_head`` (the status and the
end-to-end fields: hop-by-hop ones, those a Connection field lists, the
framing, Date and Server are dropped here), ``answer_body``,
``answer_end``, ``answer_lost``.  It never chooses where to connect:
the endpoint is the backend's, fixed at config time.

Why not Twisted's Agent: measured (bench/RESULTS.md), its client spent
about 300 us of a proxied request's 450 (a LineReceiver call and a
Headers object per field, several Deferreds per request); this one
spends a few: one parser call per read, the head in one write.
"""

import socket
from collections import deque

from httptools import HttpParserCallbackError, HttpParserError, HttpResponseParser
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, UNIXClientEndpoint, wrapClientTLS
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from axkit._compat import can_send_now
from axkit.http.framing import split_tokens
from axkit.http.headers import HOP_BY_HOP
from axkit.reactor import dispatch_directly

from .connecting import DirectEndpoint
from .hop import RESPONSE_OWN

CONNECT_TIMEOUT = 10
DEFAULT_MAX = 16  # idle connections kept per backend without a ProxyPass max=
DEFAULT_TTL = 60.0  # seconds an idle connection is kept (ProxyPass ttl=)

_log = Logger()
_pools = {}  # (reactor, PoolSpec key) -> Pool

_BODYLESS = frozenset((204, 304))
# Fields of an answer that never reach the exchange: hop-by-hop ones and
# those the engine writes itself (framing, Date, Server).
_DROPPED = frozenset(n.encode("ascii") for n in HOP_BY_HOP | RESPONSE_OWN)
_NOT_FIELDS = frozenset(("keep-alive", "close"))  # Connection options, not field names
_KEEP_ALIVE = [b"keep-alive"]  # the usual Connection field of an answer: nothing listed


class _Refused(Exception):
    """An answer this client does not take (raised from a parser callback)."""


@dispatch_directly  # (twisted.logger only: no legacy log context per read)
class BackendConnection(Protocol):
    """One keep-alive connection; serves one exchange at a time."""

    # The state of one exchange (reset by send; class-level defaults).
    length = None  # the answer's Content-Length (an int), if it has one
    framed = False  # it has a Content-Length or a Transfer-Encoding
    listing = None  # its Connection fields' values
    upgrade = None  # its Upgrade field's value (relayed on a 426 only)
    status = 0
    head_done = False
    complete = False
    got_bytes = False
    bodyless = False
    until_close = False
    keep = False
    # llhttp ended the last answer itself (not a HEAD's, cut at its head):
    # the parser is at the start of the next one and serves again.
    clean = False
    paused = False  # reading paused by the exchange (the client is slow)

    def __init__(self, pool):
        self.pool = pool
        self.exchange = None
        self.parser = None
        self.reused = False  # it served a whole answer before this one
        self.idle_since = 0.0
        self.lost = None  # Deferreds waiting for connectionLost (close_all)
        self.sock = None
        self.fields = []

    made = None  # DirectEndpoint's Deferred, fired once connected

    def connectionMade(self):
        self.pool.track(self)
        # A plain socket (TCP, UNIX; not TLS) takes a write at once when
        # nothing is queued: no epoll update and no extra reactor turn.
        get = getattr(self.transport, "getHandle", None)
        handle = get() if get is not None else None
        self.sock = handle if isinstance(handle, socket.socket) else None
        made = self.made
        if made is not None:
            self.made = None
            if made.called:  # (given up meanwhile)
                self.transport.loseConnection()
            else:
                made.callback(self)

    def write(self, data):
        """Write to the backend: at once on a plain socket with nothing
        queued, else through the transport (which keeps the order)."""
        sock = self.sock
        if sock is not None and can_send_now(self.transport):
            try:
                sent = sock.send(data)
            except OSError:
                sent = 0  # (the transport finds the error and closes)
            if sent == len(data):
                return
            data = data[sent:]
        self.transport.write(data)

    # -- one exchange ---------------------------------------------------

    def send(self, exchange, head, bodyless):
        """Start an exchange: write the request head (one write).  With
        ``bodyless`` (a HEAD request) the answer ends at its head."""
        self.fields = []
        self.length = self.listing = self.upgrade = None
        self.status = 0
        self.framed = self.head_done = self.complete = self.got_bytes = False
        self.until_close = self.keep = False
        self.exchange = exchange
        self.bodyless = bodyless
        if not self.clean:
            self.parser = HttpResponseParser(self)
        self.clean = False
        self.write(head)

    def pause_reading(self):
        """The exchange's client is slow: stop reading the answer."""
        self.paused = True
        self.transport.pauseProducing()

    def resume_reading(self):
        self.paused = False
        self.transport.resumeProducing()

    def looks_alive(self):
        """Whether a kept connection is still open, checked on the socket
        (Apache's check before reusing one for a request that may not be
        retried): no EOF and no stray bytes are waiting."""
        try:
            sock = self.transport.getHandle()
            if not isinstance(sock, socket.socket):
                return True  # (TLS: the check below the TLS layer is not ours to make)
            sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        except (OSError, AttributeError):
            return False
        return False  # EOF, or bytes nobody asked for

    # -- httptools callbacks ----------------------------------------------

    def on_header(self, name, value):
        # The end-to-end fields only (RFC 9110 7.6.1), decoded: the framing
        # and the hop-by-hop ones are noted or dropped here.
        if self.head_done:
            return  # (a trailer)
        lname = name.lower()
        if lname in _DROPPED:
            if lname == b"content-length":
                self.framed = True
                self.length = int(value)  # (llhttp checked it: digits, once)
            elif lname == b"transfer-encoding":
                self.framed = True
                self.length = None
            elif lname == b"connection":
                self.listing = [value] if self.listing is None else self.listing + [value]
            elif lname == b"upgrade":
                self.upgrade = value
            return
        self.fields.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self):
        exchange = self.exchange
        if exchange is None:
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            # An interim answer (100 Continue, 103 Early Hints): the engine
            # speaks 100-continue with its own client; the final one follows.
            # (101 is not asked for here: WebSocket tunnels have their own.)
            if status == 101:
                raise _Refused("101 Switching Protocols without an Upgrade asked for")
            self.fields, self.length, self.framed, self.listing = [], None, False, None
            self.upgrade = None
            return
        self.status = status
        listing = self.listing
        if listing is not None and listing != _KEEP_ALIVE:
            listed = set()
            for value in listing:
                listed.update(split_tokens(value.decode("latin-1")))
            listed -= _NOT_FIELDS
            if listed:
                self.fields = [f for f in self.fields if f[0].lower() not in listed]
        if status == 426 and self.upgrade is not None:
            # A 426 says which protocol in its Upgrade field (RFC 9110
            # 15.5.22): relayed, as Apache and nginx do (and the tunnel).
            self.fields.append(("Upgrade", self.upgrade.decode("latin-1")))
        self.head_done = True
        if self.bodyless or status in _BODYLESS:
            self.complete = True
            self.keep = self.parser.should_keep_alive()
        else:
            self.until_close = not self.framed
        exchange.answer_head(self, status, self.fields)

    def on_body(self, data):
        if self.complete:
            self.keep = False  # bytes after a bodyless answer: not HTTP we can trust
            return
        exchange = self.exchange
        if exchange is not None:
            exchange.answer_body(data)

    def on_message_complete(self):
        if not self.head_done:
            return  # an interim answer
        if not self.bodyless:
            self.clean = True
        if self.complete:
            return  # (a 204's, a 304's: complete at the head)
        self.complete = True
        self.keep = self.parser.should_keep_alive()

    # -- transport events -------------------------------------------------

    def dataReceived(self, data):
        exchange = self.exchange
        if exchange is None:  # bytes on an idle connection: not to be trusted
            self.transport.abortConnection()
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except HttpParserError as e:
            self.keep = False
            self.exchange = None
            self.transport.abortConnection()
            cause = e.__context__ if isinstance(e, HttpParserCallbackError) else None
            if cause is not None and not isinstance(cause, _Refused):
                _log.failure("proxy: handling an answer", Failure(cause))
                exchange.answer_broken(self, "internal error handling the answer")
            else:
                exchange.answer_broken(self, f"bad answer: {cause or e}")
            return
        if self.exchange is exchange:
            if self.complete:
                self.exchange = None
                exchange.answer_end(self)
            elif exchange.head_pending:
                exchange.answer_flush()

    def done(self, reusable):
        """The exchange is over: keep the connection for the next one when
        its answer was complete, it allowed keep-alive and the request was
        sent whole, else close it."""
        self.exchange = None
        if reusable and self.complete and self.keep and self.transport is not None:
            self.reused = True
            if self.paused:
                # (The client's side paused our reads when the answer
                # ended: a kept connection must read its next answer.)
                self.resume_reading()
            self.pool.release(self)
        else:
            self.transport.loseConnection()

    def abort(self):
        self.exchange = None
        if self.transport is not None:
            self.transport.abortConnection()

    def connectionLost(self, reason):
        self.pool.forget(self)
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            if self.head_done and self.until_close:
                self.complete = True  # an answer delimited by the close
                exchange.answer_end(self)
            else:
                exchange.answer_lost(self, reason)
        for d in self.lost or ():
            d.callback(None)


class _Factory(Factory):
    noisy = False  # no "Starting factory" line per backend connection

    def __init__(self, pool):
        self.pool = pool

    def buildProtocol(self, addr):
        return BackendConnection(self.pool)


class Pool:
    """Keep-alive connections to one backend endpoint: up to ``max_idle``
    kept unused, and with ``max_open`` (ProxyPass ``max=``, Apache's hard
    cap) no more than that many open at once -- a request finding them all
    busy waits for one (first come, first served) within its timeout."""

    def __init__(self, reactor, endpoint, max_idle, ttl, max_open=None):
        self.reactor = reactor
        self.endpoint = endpoint
        self.max_idle = max_idle
        self.max_open = max_open
        self.ttl = ttl
        self.idle = []  # most recently used last
        self.open = set()
        self.connecting = 0  # connection attempts under way
        self.waiting = deque()  # Deferreds of requests waiting for a connection (max_open)
        self.factory = _Factory(self)
        self._sweep = None
        self.closed = False  # close() was called: PoolSpec.pool makes a new one

    def acquire(self, fresh=False):
        """A kept connection (returned as it is), or a Deferred firing with
        a new one (or, at ``max_open``, with the first one released).
        ``fresh``: not a kept connection (one released to a waiting request
        has just ended an answer whole: it counts as fresh)."""
        idle = self.idle
        if idle and not fresh:
            now = self.reactor.seconds()
            while idle:
                conn = idle.pop()
                if now - conn.idle_since < self.ttl:
                    return conn
                conn.transport.loseConnection()
        cap = self.max_open
        if cap is not None and len(self.open) + self.connecting >= cap:
            if idle:  # (fresh) room is made: the oldest kept one goes
                idle.pop(0).transport.loseConnection()
            d = Deferred(self._cancel_wait)
            self.waiting.append(d)
            return d
        return self._connect()

    def _connect(self):
        self.connecting += 1
        d = self.endpoint.connect(self.factory)
        d.addBoth(self._connect_done)
        return d

    def _connect_done(self, result):
        self.connecting -= 1
        if self.waiting and isinstance(result, Failure):
            self._wake()
        return result

    def _cancel_wait(self, d):
        try:
            self.waiting.remove(d)
        except ValueError:
            pass  # (already handed a connection attempt)

    def _wake(self):
        """Room under ``max_open``: connect for the requests waiting."""
        waiting = self.waiting
        while waiting and len(self.open) + self.connecting < self.max_open:
            self._connect().addBoth(self._hand_over, waiting.popleft())

    def _hand_over(self, result, d):
        if not d.called:
            if isinstance(result, Failure):
                d.errback(result)
            else:
                d.callback(result)
        elif not isinstance(result, Failure):
            result.complete = result.keep = True  # its request went away: kept unused
            result.done(True)
        return None

    def release(self, conn):
        waiting = self.waiting
        if waiting:
            # A request waits for a connection (max_open): this one, now.
            waiting.popleft().callback(conn)
            return
        idle = self.idle
        if len(idle) >= self.max_idle:
            conn.transport.loseConnection()
            return
        conn.idle_since = self.reactor.seconds()
        idle.append(conn)
        if self._sweep is None:
            self._sweep = self.reactor.callLater(self.ttl, self._expire)

    def _expire(self):
        """Close the connections idle longer than ttl (one timer per pool,
        not one per request)."""
        self._sweep = None
        cutoff = self.reactor.seconds() - self.ttl
        old = [c for c in self.idle if c.idle_since <= cutoff]
        if old:
            self.idle = [c for c in self.idle if c.idle_since > cutoff]
            for conn in old:
                conn.transport.loseConnection()
        if self.idle:
            wait = self.idle[0].idle_since + self.ttl - self.reactor.seconds()
            self._sweep = self.reactor.callLater(max(wait, 0.01), self._expire)

    def track(self, conn):
        self.open.add(conn)

    def forget(self, conn):
        self.open.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)
        if self.waiting and not self.closed:
            self._wake()

    def close(self):
        """Close every connection; a Deferred firing when they are gone."""
        self.closed = True
        if self._sweep is not None and self._sweep.active():
            self._sweep.cancel()
        self._sweep = None
        waits = []
        for conn in list(self.open):
            if conn.transport is None or conn.transport.disconnected:
                continue
            d = Deferred()
            conn.lost = (conn.lost or []) + [d]
            waits.append(d)
            conn.exchange = None
            conn.transport.abortConnection()
        self.idle = []
        waiting, self.waiting = self.waiting, deque()
        for d in waiting:
            d.cancel()
        return DeferredList(waits) if waits else succeed(None)


class PoolSpec:
    """What a pool is made from, resolved at config time: the backend, its
    ``max=`` (the most connections open at once, Apache's hard cap, and as
    many kept; without it no cap and DEFAULT_MAX kept) and ``ttl=``, and
    (https) the TLS client settings."""

    __slots__ = ("backend", "max_idle", "max_open", "ttl", "tls", "key", "_pool")

    def __init__(self, backend, max=None, ttl=None, tls=None):
        self.backend = backend
        self.max_open = max
        self.max_idle = max or DEFAULT_MAX
        self.ttl = ttl or DEFAULT_TTL
        self.tls = tls  # axkit.proxy.tls.TLSSettings or None
        self.key = (backend.key, max, self.ttl, tls.key if tls else None)
        self._pool = None

    def pool(self, reactor):
        pool = self._pool
        if pool is not None and pool.reactor is reactor and _pools.get(self.key) is pool:
            return pool
        pool = _pools.get(self.key)
        if pool is None or pool.reactor is not reactor:
            pool = Pool(reactor, self._endpoint(reactor), self.max_idle, self.ttl, self.max_open)
            _pools[self.key] = pool
        self._pool = pool
        return pool

    def _endpoint(self, reactor):
        backend = self.backend
        if backend.tls:
            return backend_endpoint(reactor, backend, self.tls)
        # (Plain: connected without an endpoint's wrapping protocol, so the
        # reactor dispatches the connection's reads directly.)
        return DirectEndpoint(reactor, backend.host, backend.port, backend.socket, CONNECT_TIMEOUT)


def backend_endpoint(reactor, backend, tls):
    """The client endpoint to ``backend`` (axkit.proxy.backend.Backend):
    TCP or ``unix:``, wrapped in TLS (``tls``, an
    axkit.proxy.tls.TLSSettings) for ``https://`` and ``wss://``."""
    if backend.socket is not None:
        endpoint = UNIXClientEndpoint(reactor, backend.socket, timeout=CONNECT_TIMEOUT)
    else:
        endpoint = TCP4ClientEndpoint(reactor, backend.host, backend.port, timeout=CONNECT_TIMEOUT)
    if backend.tls:
        endpoint = wrapClientTLS(tls.creator(backend.host), endpoint)
    return endpoint


def close_all():
    """Close every backend connection (server stop, tests' cleanup)."""
    pools = list(_pools.values())
    _pools.clear()
    return DeferredList([p.close() for p in pools])
