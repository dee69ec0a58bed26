"""Every private Twisted or CPython internal axkit relies on, in one place.

axkit's fast paths lean on a few internals that no public API offers: the
epoll reactor's bookkeeping, the write buffer of Twisted's TCP transport,
twistd's exit signal, CPython's C helper behind ``subprocess``.  Each one is
wrapped here in a small named function or constant whose docstring says
what it relies on, which versions it was tested with, and what happens
where it is missing (the fallback).  Nothing else in axkit is to name a
private attribute of Twisted or CPython (tests/test_compat.py checks, and
lists the files still waiting to be switched over).

tests/test_compat.py checks each one still exists and behaves as relied on,
so an upgrade that drops or changes one fails a test there -- instead of
silently turning a fast path off (a slower server nobody notices) or, worse,
leaving it on and wrong.

One package, three modules, all to audit at an upgrade: this one (Twisted's
reactor, TCP transport, twistd, PROXY parsers, plugin scan, Workers'
sockets), ``processes`` (Twisted's process support and CPython's subprocess
helper, for axkit.cgi) and ``aio`` (asyncio, for axkit.asgi).  Callers
import everything from ``axkit._compat`` itself.  To admit a new Twisted or
Python: run that test module on it, fix what fails here, then raise the
bound in pyproject.toml and the versions below.

Tested on CPython 3.11.7 (Linux, epoll) with Twisted 26.10.0 (the whole
suite on both reactors), 26.4.0 and 24.3.0 (tests/test_compat.py, and the
whole suite on axkit's reactor: 24.3.0 fails only its TLS tests, inside
pyOpenSSL 26, which Twisted before 26.4 does not support); "tested" below
means these.
"""

from twisted.internet import tcp as _tcp

TESTED_TWISTED = ("24.3.0", "26.4.0", "26.10.0")
TESTED_PYTHON = (3, 11, 7)


# -- Twisted's epoll reactor (axkit.reactor) ---------------------------------

try:
    from twisted.internet.epollreactor import EPollReactor
except ImportError:  # no epoll: not Linux
    EPollReactor = None


def epoll_reactor_supported():
    """Whether this Twisted's ``EPollReactor`` has the internals
    `EPollReactorBase` hands to axkit's reactor: the methods
    ``_doReadOrWrite(selectable, fd, event)`` (posixbase._PollLikeMixin) and
    ``_add(xer, primary, other, selectables, event, antievent)``, and the
    ``_poller`` (a ``select.epoll``) and ``_selectables`` (fd -> selectable)
    that its ``__init__`` sets (found in its code's names: no reactor is
    made to look).

    Tested Twisted versions have them all.  Missing: `axkit.reactor.install`
    refuses and ``twistd axkit`` runs on Twisted's default reactor --
    correct, with the per-event log context back (about 14% more
    instructions per small request)."""
    if EPollReactor is None:
        return False
    names = EPollReactor.__init__.__code__.co_names
    return (
        all(hasattr(EPollReactor, name) for name in ("_doReadOrWrite", "doPoll", "_add"))
        and "_selectables" in names
        and "_poller" in names
    )


if EPollReactor is not None:

    class EPollReactorBase(EPollReactor):
        """Twisted's EPollReactor with the private parts a replacement
        ``doPoll`` needs under names of ours: `epoll_parts`, and
        `registering`, called as Twisted registers a reader or writer.

        Relies on what `epoll_reactor_supported` checks, and on
        ``EPollReactor.doPoll`` doing no more than poll ``_poller`` and hand
        each event to ``_doReadOrWrite`` (tests/test_compat.py fingerprints
        it: a Twisted whose doPoll does more fails there).  Tested with
        Twisted 24.3 to 26.10."""

        def epoll_parts(self):
            """``(epoll, selectables, dispatch)``: the reactor's
            ``select.epoll`` (Twisted's ``_poller``), its dict fd -> selectable
            (``_selectables``) and ``dispatch(selectable, fd, event)``, the
            bound ``_doReadOrWrite`` that does a selectable's read or write
            and handles its end.  Looked up at each call (a test may swap the
            poller)."""
            return self._poller, self._selectables, self._doReadOrWrite

        def registering(self, selectable, selectables):
            """Called as Twisted is about to register ``selectable`` for
            reading or writing (``selectables``: the dict it will be added
            to, by fd).  Does nothing here; subclasses override it."""

        def disconnect_selectable(self, selectable, why, is_read):
            """Twisted's end of a selectable after ``doRead`` returned or
            raised ``why`` (``_disconnectSelectable``: half-close for a
            clean end of a read, else ``connectionLost``)."""
            self._disconnectSelectable(selectable, why, is_read)

        def _add(self, xer, primary, other, selectables, event, antievent):
            # Twisted's private registration of every addReader/addWriter.
            self.registering(xer, selectables)
            EPollReactor._add(self, xer, primary, other, selectables, event, antievent)
else:
    EPollReactorBase = None


def twisted_waker_classes():
    """Twisted's own waker classes: the pipe ``callFromThread`` writes to
    (``_UnixWaker``, or ``_SocketWaker``) and the SIGCHLD one
    (``_SIGCHLDWaker``), from the private ``twisted.internet._signals``
    (tested).

    axkit.reactor dispatches them without the log context (a CGI program's
    start and end each pass through one).  Missing: an empty tuple, and
    they go through Twisted's ``callWithLogger`` -- correct, a few calls
    more per CGI request."""
    try:
        from twisted.internet import _signals
    except ImportError:  # pragma: no cover - other Twisted
        return ()
    return tuple(
        getattr(_signals, name)
        for name in ("_UnixWaker", "_SocketWaker", "_SIGCHLDWaker")
        if hasattr(_signals, name)
    )


# -- twistd's exit status (axkit.server) -------------------------------------


def forget_exit_signal(reactor, signums):
    """After a graceful stop that ``reactor`` began for one of ``signums``
    (SIGTERM, SIGINT), forget the signal, so twistd exits 0 instead of
    killing itself with it again at the end (status -15/-2, which systemd
    and shells report as a failure).  Returns True if it was forgotten.

    Relies on the reactor's private ``_exitSignal`` (set by
    ``ReactorBase.sigTerm``/``sigInt``; declared by the private
    ``twisted.internet.interfaces._ISupportsExitSignalCapturing``), which
    twistd's ``ApplicationRunner.startReactor`` reads once the reactor has
    stopped (tested).  Missing: nothing is forgotten and
    a graceful stop ends with the signal's status -- the stop itself is
    unchanged."""
    if getattr(reactor, "_exitSignal", None) in signums:
        reactor._exitSignal = None
        return True
    return False


# -- Twisted's TCP transport (axkit.http.connection, axkit.http.producers) ---

TCPServer = _tcp.Server
"""The class of a plain server-side TCP transport (``twisted.internet.tcp.
Server``).  A TLS connection's transport is another class wrapping one."""

TCPPort = _tcp.Port
"""The class of a plain TCP listening port (``twisted.internet.tcp.Port``)."""

TCPConnection = _tcp.Connection
"""The base class of Twisted's TCP transports, server and client side
(``twisted.internet.tcp.Connection``): a socket of its own to ``sendfile``
into, once `write_buffered` says Twisted holds nothing for it."""


def tcp_read_supported():
    """Whether axkit's reactor may read a plain TCP transport itself (as
    ``tcp.Connection.doRead`` does: ``socket.recv(bufferSize)``, then the
    protocol's ``dataReceived``, an empty read being the end): the
    transport's ``socket``, ``bufferSize`` and ``protocol`` attributes and
    the reactor's ``_disconnectSelectable`` (undocumented; tested)."""
    return (
        hasattr(TCPConnection, "bufferSize")
        and hasattr(TCPConnection, "doRead")
        and EPollReactor is not None
        and hasattr(EPollReactor, "_disconnectSelectable")
    )


def plain_tcp(transport):
    """``(peer, socket)`` of a plain TCP server-side transport -- exactly
    `TCPServer`, never TLS -- or None.  ``peer`` is the address tuple
    ``accept()`` gave (``Server.client``: no IPv4Address built), ``socket``
    the connected socket, for sending without queueing and for reading the
    kernel's send queue.

    Relies on ``tcp.Server.client`` and ``tcp.Connection.socket``
    (undocumented attributes; tested).  Missing (another class): None,
    and the connection goes the way a TLS one does (getPeer, every write
    through the transport)."""
    if type(transport) is TCPServer:
        return transport.client, transport.socket
    return None


def accept_connections(port, reactor):
    """Accept the connections waiting on the listening TCP ``port`` (a
    ``tcp.Port``), as its ``doRead`` does, with less work per connection:
    no buffered-logs context, no address object (``factory.buildProtocol``
    gets the ``(host, port)`` tuple accept() returned -- axkit's
    HTTPFactory ignores it), no generator, and the socket made from
    ``socket._accept()``'s descriptor without the enum conversions of
    ``socket.accept()``.  The transport is the port's own class
    (``tcp.Server``), made as Twisted makes it.  Any accept error but
    EAGAIN (EMFILE, ENFILE, EPERM ...) is left to Twisted's ``doRead``,
    which recovers from it.

    Relies on ``socket.socket._accept`` (CPython's private C method;
    tested with 3.11) and on ``tcp.Port``'s ``socket``, ``factory``,
    ``transport``, ``sessionno``, ``numberAccepts`` and ``addressFamily``
    (undocumented; tested).  axkit.reactor uses it only when
    `accept_connections_supported` says so; elsewhere the port's own
    ``doRead`` runs."""
    import socket

    listener = port.socket
    factory = port.factory
    transport_class = port.transport
    family = port.addressFamily
    limit = port.numberAccepts
    accepted = 0
    while accepted < limit:
        try:
            fd, addr = listener._accept()
        except BlockingIOError:
            break
        except InterruptedError:
            continue
        except OSError:
            port.doRead()  # Twisted's recovery (EMFILE's reserved descriptor ...)
            return
        skt = socket.socket(family, socket.SOCK_STREAM, 0, fd)
        accepted += 1
        if len(addr) == 4:
            # IPv6: the scope id in the host, as Twisted's Port gives it.
            host = socket.getnameinfo(addr, socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
            addr = (host[0], *addr[1:])
        protocol = factory.buildProtocol(addr)
        if protocol is None:
            skt.close()
            continue
        session = port.sessionno
        port.sessionno = session + 1
        protocol.makeConnection(transport_class(skt, protocol, addr, port, session, reactor))
    # Twisted's scaling of its accept loop to the traffic.
    port.numberAccepts = limit + 20 if accepted == limit else max(1, accepted)


def accept_connections_supported():
    """Whether `accept_connections` can run here: CPython's
    ``socket._accept`` and Twisted's ``tcp.Port`` attributes it uses."""
    import socket

    return hasattr(socket.socket, "_accept") and all(
        hasattr(_tcp.Port, name) for name in ("transport", "addressFamily", "sessionno")
    )


def can_send_now(transport):
    """Whether bytes written straight to the socket of the plain TCP
    ``transport`` would leave in order: Twisted's write buffer
    (``dataBuffer`` and the private ``_tempDataBuffer``) is empty, no
    producer is registered and the transport is not closing.

    Relies on ``abstract.FileDescriptor``'s two-part write buffer (Twisted
    tested).  A Twisted that buffered elsewhere would make a direct
    send overtake bytes it still holds: tests/test_compat.py checks that
    what ``write`` keeps is seen here."""
    return (
        not transport.dataBuffer
        and not transport._tempDataBuffer
        and transport.producer is None
        and not transport.disconnecting
    )


def write_buffered(transport):
    """Bytes written to ``transport`` that Twisted still holds in its own
    buffer (``dataBuffer`` from ``offset`` on, plus the private
    ``_tempDataLen`` queued behind it), or None when ``transport`` has no
    such buffer (a TLS wrapper, a test transport).

    Relies on ``abstract.FileDescriptor`` (tested).  Missing:
    None -- sendfile is not used (files go through the bounded producer) and
    SendTimeout sees no buffer to watch at that level."""
    try:
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    except AttributeError:
        return None


def write_buffer_mark(transport):
    """A value that changes whenever Twisted sends from ``transport``'s write
    buffer: ``(id(dataBuffer), offset)``, or None without such a buffer
    (see `write_buffered`).  SendTimeout compares two marks to tell a
    client that reads from one that does not."""
    try:
        return id(transport.dataBuffer), transport.offset
    except AttributeError:
        return None


# -- weakref (bundled plugins' per-scope caches) -----------------------------


def weak_key_data(mapping):
    """The plain dict behind the ``weakref.WeakKeyDictionary`` ``mapping``,
    keyed by ``weakref.ref(key)``: ``weak_key_data(d).get(weakref.ref(k))``
    is ``d.get(k)`` in one C call (``WeakKeyDictionary.get`` is a Python
    method).  Read only; write through ``mapping``.

    Relies on ``WeakKeyDictionary.data`` (undocumented; tested with CPython
    3.11) staying the same dict for the mapping's life.  No
    fallback (an AttributeError at plugin creation)."""
    return mapping.data


# -- the PROXY protocol (axkit/http/proxy_header.py) -------------------------


def proxy_header_parsers():
    """``(parse_v1, parse_v2, V2_PREFIX)``: Twisted's PROXY protocol header
    parsers.  ``parse_v1(line)`` takes a v1 line without its CRLF,
    ``parse_v2(header)`` a whole v2 header; each returns a ``ProxyInfo``
    (``source`` None for UNKNOWN/LOCAL) or raises.

    Relies on the private ``twisted.protocols.haproxy._v1parser`` and
    ``_v2parser`` (tested with Twisted 25/26): the public API is only
    ``proxyEndpoint``, whose wrapper tells the protocol its peer before
    the header has arrived."""
    from twisted.protocols.haproxy._v1parser import V1Parser
    from twisted.protocols.haproxy._v2parser import V2Parser

    return V1Parser.parse, V2Parser.parse, V2Parser.PREFIX


def swap_protocol(transport, protocol):
    """Make ``protocol`` the one a plain TCP/UNIX server ``transport``
    delivers its events to; False (nothing done) for any other transport
    (TLS).  Relies on ``tcp.Connection.protocol`` (undocumented; tested)."""
    if not isinstance(transport, TCPConnection) or not hasattr(transport, "protocol"):
        return False
    transport.protocol = protocol
    return True


# -- Twisted's plugin scan (axkit.discovery) ---------------------------------


class _QuietPluginLog:
    """twisted.python.log, minus ``err``: what twisted.plugin logs for a
    dropin that fails to import."""

    def __init__(self, real):
        self._real = real

    def err(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        return getattr(self._real, name)


class quiet_dropin_failures:
    """A context manager: while inside, ``twisted.plugin.getCache`` (and so
    ``getPlugins``) does not log the traceback of a dropin that fails to
    import.  twistd's own scan (for ``twistd axkit``) has printed it once
    already, and every later scan would print it again -- axkit's scans
    stay quiet and name the failure themselves (axkit.discovery's
    broken_dropins).

    Relies on twisted.plugin calling ``log.err()`` on the module-level
    ``log`` (``from twisted.python import log``) for such a dropin (tested
    versions).  Missing (no ``log`` there): nothing is changed, and the
    traceback is printed by each scan, as without this."""

    def __enter__(self):
        import twisted.plugin as twisted_plugin

        self._real = getattr(twisted_plugin, "log", None)
        if self._real is not None and hasattr(self._real, "err"):
            twisted_plugin.log = _QuietPluginLog(self._real)
        return self

    def __exit__(self, *exc):
        import twisted.plugin as twisted_plugin

        if isinstance(getattr(twisted_plugin, "log", None), _QuietPluginLog):
            twisted_plugin.log = self._real
        return False


# -- Workers: a worker adopting a unix: listener (axkit.workers.sockets) -----


def adopt_unix_port(reactor, fd, factory):
    """``reactor.adoptStreamPort`` for an AF_UNIX listening socket, except
    that stopping the port leaves the socket file in place: Twisted's
    ``unix.Port.connectionLost`` unlinks its ``_bindPath`` even for an
    adopted socket, which would take the path away from the supervisor and
    every other worker when one worker stops.

    Nor does it ``shutdown()`` the socket on close (``_shouldShutdown``,
    which tcp.Port clears for adopted sockets but unix.Port does not):
    that would stop the listener in every process.

    Relies on ``unix.Port._fromListeningDescriptor`` (what adoptStreamPort
    calls), on ``tcp._SocketCloser._shouldShutdown``, and on
    ``connectionLost`` doing nothing beyond the unlink, the lock file (None
    for an adopted port) and ``tcp.Port.connectionLost``.
    Missing: ImportError/AttributeError at adoption, a worker that does
    not start (the supervisor logs it)."""
    from twisted.internet import tcp, unix

    class KeptPort(unix.Port):
        # Nor shut the socket down: shutdown() of a listening socket stops
        # it for every process holding it (tcp.Port skips it for an adopted
        # socket; unix.Port's own startListening does not).
        _shouldShutdown = False

        def connectionLost(self, reason):
            tcp.Port.connectionLost(self, reason)

    port = KeptPort._fromListeningDescriptor(reactor, fd, factory)
    port.startListening()
    return port


# -- the other two modules, re-exported: callers import from axkit._compat --

from axkit._compat.aio import asyncio_reactor_loop, stepped_event_loop  # noqa: E402, F401
from axkit._compat.processes import (  # noqa: E402, F401
    FORK_EXEC_PYTHONS,
    disown_popen,
    fork_exec_group_leader,
    stdin_writer,
    unwatch_exit,
    watch_exit,
)
