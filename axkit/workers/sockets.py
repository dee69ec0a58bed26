"""The listening sockets of ``Workers N``: bound once by the supervisor
(before twistd drops privileges), adopted by every worker.

Two ways to share a listener among workers, both here because both were
measured (bench/workers_bench.py, bench/RESULTS.md):

``shared``
    one socket per listener; every worker adopts a copy of it and the
    kernel hands each new connection to whichever worker accepts first.
``reuseport``
    ``SO_REUSEPORT``: one socket per listener *per worker slot*, all bound
    to the same address; the kernel spreads new connections over them by a
    hash of the client's address and port.  A slot's socket outlives its
    worker (the supervisor holds it), so a replacement adopts it and the
    connections queued meanwhile are not lost.  Only for tcp: and ssl:
    listeners; unix: and systemd: ones are always shared.

The endpoint strings are Twisted's; what a string asks for (port, backlog,
interface, TLS context) is read by handing it to ``serverFromString`` with a
reactor that only records the call -- Twisted's own parser, no second one.
"""

import os
import socket

from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.internet.protocol import Factory

from axkit.server import with_backlog

SHARED = "shared"
REUSEPORT = "reuseport"
MODES = (SHARED, REUSEPORT)
# Which one Workers uses (see docs/deployment.md, "Workers", for why);
# $AXKIT_WORKERS_SOCKETS overrides it for the benchmark.
DEFAULT_MODE = REUSEPORT


def mode():
    chosen = os.environ.get("AXKIT_WORKERS_SOCKETS", DEFAULT_MODE)
    return chosen if chosen in MODES else DEFAULT_MODE


class _Recorder:
    """A reactor that records the one listen call an endpoint makes."""

    def __init__(self):
        self.kind = None
        self.args = {}

    def listenTCP(self, port, factory, backlog=50, interface=""):
        self.kind, self.args = "tcp", {"port": port, "backlog": backlog, "interface": interface}

    def listenSSL(self, port, factory, contextFactory, backlog=50, interface=""):
        self.kind = "ssl"
        self.args = {
            "port": port,
            "backlog": backlog,
            "interface": interface,
            "context": contextFactory,
        }

    def listenUNIX(self, address, factory, backlog=50, mode=0o666, wantPID=0):
        self.kind, self.args = "unix", {"address": address}

    def adoptStreamPort(self, fileDescriptor, addressFamily, factory):
        self.kind, self.args = "adopted", {"fd": fileDescriptor}


def parse(endpoint):
    """``(kind, args)`` of an endpoint string: kind is tcp, ssl, unix or
    adopted (systemd:); args what Twisted would listen with."""
    from axkit.tls import is_tls, parse_tls_endpoint

    if is_tls(endpoint):  # axkit's own TLS listener (axkit/tls.py): SNI, reloads
        options = parse_tls_endpoint(with_backlog(endpoint))
        port, backlog = int(options["port"]), int(options.get("backlog", 50))
        return "ssl", {"port": port, "backlog": backlog, "interface": options.get("interface", "")}
    recorder = _Recorder()
    serverFromString(recorder, with_backlog(endpoint)).listen(Factory())
    return recorder.kind, recorder.args


class Listener:
    """One Listen endpoint, bound in the supervisor: ``sockets`` holds one
    socket (shared) or one per worker slot (reuseport)."""

    def __init__(self, endpoint, mode_):
        self.endpoint = endpoint
        self.kind, self.args = parse(endpoint)
        self.mode = mode_ if self.kind in ("tcp", "ssl") else SHARED
        self.sockets = []
        self.port = None  # the Twisted port of a shared listener (not read)
        self.address = None

    def bind(self, reactor, slots):
        """Bind (and listen): raises SystemExit with the reason if it cannot."""
        try:
            if self.mode == SHARED:
                idle = Factory()
                idle.noisy = False
                d = serverFromString(reactor, with_backlog(self.endpoint)).listen(idle)
                found = []
                d.addBoth(found.append)
                result = found[0]
                if isinstance(result, Exception) or hasattr(result, "getErrorMessage"):
                    raise SystemExit(
                        f"axkit: cannot listen on {self.endpoint}: {result.getErrorMessage()}"
                    )
                self.port = result
                self.port.stopReading()  # the workers accept, never the supervisor
                self.address = self.port.getHost()
                self.sockets = [socket.socket(fileno=os.dup(self.port.fileno()))]
            else:
                self.grow(slots)
        except OSError as e:
            self.close()
            raise SystemExit(f"axkit: cannot listen on {self.endpoint}: {e.strerror or e}")

    def grow(self, slots):
        """More reuseport sockets when Workers grows on a reload."""
        while self.mode == REUSEPORT and len(self.sockets) < max(1, slots):
            self.sockets.append(self._bind_reuseport())

    def _bind_reuseport(self):
        interface = self.args["interface"] or ""
        port = self.args["port"]
        if self.sockets:  # port 0: every socket on the first one's port
            port = self.sockets[0].getsockname()[1]
        family = socket.AF_INET6 if ":" in interface else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.bind((interface, port))
            s.listen(self.args["backlog"])
            s.setblocking(False)  # (a flag of the socket, shared with the workers)
        except OSError:
            s.close()
            raise
        if self.address is None:
            from twisted.internet.address import IPv4Address, IPv6Address

            host, bound = s.getsockname()[:2]
            kind = IPv6Address if family == socket.AF_INET6 else IPv4Address
            self.address = kind("TCP", host, bound)
        return s

    def shrink(self, slots):
        """Close the reuseport sockets of slots past ``slots`` (Workers
        shrank on a reload and their workers are gone)."""
        while self.mode == REUSEPORT and len(self.sockets) > max(1, slots):
            self.sockets.pop().close()

    def socket_for(self, slot):
        return self.sockets[slot % len(self.sockets)]

    def close(self):
        """Close the sockets; a Deferred that fires once closed (a unix:
        socket file is removed then)."""
        for s in self.sockets:
            s.close()
        self.sockets = []
        port, self.port = self.port, None
        return defer.maybeDeferred(port.stopListening) if port is not None else defer.succeed(None)


def adopter(reactor, inherited, tls=None):
    """The ``AxKitService.adopt`` of a worker: ``inherited`` maps endpoint
    -> (fd, family), ``tls`` TLS endpoint -> axkit.tls.Certificates (the
    config's); returns ``adopt(endpoint, factory)`` -> Deferred port."""

    def adopt(endpoint, factory):
        if endpoint not in inherited:
            return defer.fail(RuntimeError(f"no socket was passed for {endpoint}"))
        fd, family = inherited[endpoint]
        os.set_blocking(fd, False)
        if endpoint.split(":", 1)[0].lower() == "ssl":
            from twisted.protocols.tls import TLSMemoryBIOFactory

            from axkit.tls import SNIConnectionCreator

            creator = SNIConnectionCreator((tls or {})[endpoint])
            factory = TLSMemoryBIOFactory(creator, False, factory)
        if family == socket.AF_UNIX:
            from axkit._compat import adopt_unix_port

            port = adopt_unix_port(reactor, fd, factory)
        else:
            port = reactor.adoptStreamPort(fd, family, factory)
        os.close(fd)  # the port holds its own copy
        return defer.succeed(port)

    return adopt
