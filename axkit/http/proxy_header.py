"""The PROXY protocol (HAProxy's, v1 and v2): the real client's address,
sent by a front end as the very first bytes of a connection.

When the listener's default server says ``RemoteIPProxyProtocol On``, a new
connection does not start reading HTTP: a ProxyHeaderReader stands in as
the transport's protocol until the header has arrived whole, sets the
connection's peer from it (TCP4/TCP6; UNKNOWN and LOCAL keep the real
peer), then hands the transport back and feeds the connection what
followed the header.  Only then do the `connect` hooks run, so everything
from there on sees the client's address.  A header that is missing,
malformed or not complete within RequestHeaderTimeout closes the
connection: a listener that expects the header never guesses.

Parsing is Twisted's (``twisted.protocols.haproxy``, through axkit._compat);
this module only frames: how many bytes make a header, and when to give up.
Connections of other listeners never come here (one flag test per
connection).
"""

import ipaddress

from twisted.logger import Logger

from axkit._compat import proxy_header_parsers, swap_protocol

from .states import IDLE

log = Logger(namespace="axkit.http")

parse_v1, parse_v2, V2_PREFIX = proxy_header_parsers()
V1_PREFIX = b"PROXY "
V1_MAX = 107  # the longest v1 line, CRLF included (the spec's figure)
V2_FIXED = 16  # signature, version/command, family, length


def expect_proxy_header(connection):
    """Put a ProxyHeaderReader in front of ``connection`` (just made)."""
    connection._set_deadline(IDLE, connection.limits.header_timeout)
    reader = ProxyHeaderReader(connection)
    if not swap_protocol(connection.transport, reader):
        log.error(
            "RemoteIPProxyProtocol needs a plain tcp: or unix: listener; "
            "closing a connection from {client}",
            client=connection.peer_host,
        )
        connection.transport.abortConnection()


def header_length(data):
    """How many bytes of ``data`` the PROXY header takes: an int once it is
    complete, 0 while more is needed, -1 when it cannot be one."""
    if data[:1] == V2_PREFIX[:1]:
        if not V2_PREFIX.startswith(data[:12]):
            return -1
        if len(data) < V2_FIXED:
            return 0
        return V2_FIXED + int.from_bytes(data[14:16], "big")
    if len(data) < len(V1_PREFIX):
        return 0 if V1_PREFIX.startswith(data) else -1
    if not data.startswith(V1_PREFIX):
        return -1
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        return 0 if len(data) < V1_MAX else -1
    return end + 2


def parse_header(header):
    """``(host, port)`` of the client the header names, or None to keep
    the connection's own peer (UNKNOWN, LOCAL, a UNIX-socket source).
    Raises ValueError for a header that does not parse."""
    if header == b"PROXY UNKNOWN\r\n":
        return None  # valid (the spec's health check); Twisted wants more words
    try:
        if header.startswith(V1_PREFIX):
            info = parse_v1(header[:-2])
        else:
            info = parse_v2(header)
    except Exception as e:
        # Twisted's InvalidProxyHeader and its kin; anything else a
        # hostile header makes the parsers raise is refused the same way.
        raise ValueError(f"bad PROXY header: {e.__class__.__name__}") from None
    source = info.source
    host = getattr(source, "host", None)
    if not host:
        return None
    try:
        # One spelling per address (2001:db8::9, not 2001:db8:0:0:0:0:0:9),
        # and a v1 line's words checked for being an address at all.
        host = str(ipaddress.ip_address(host))
    except ValueError:
        raise ValueError("bad PROXY header: not an IP address") from None
    return host, source.port


class ProxyHeaderReader:
    """The transport's protocol while the PROXY header is being read."""

    __slots__ = ("connection", "buffer")

    def __init__(self, connection):
        self.connection = connection
        self.buffer = b""

    def dataReceived(self, data):
        connection = self.connection
        data = self.buffer + data
        size = header_length(data)
        if size == 0 or size > len(data):
            self.buffer = data
            return
        try:
            if size < 0:
                raise ValueError("no PROXY header")
            peer = parse_header(data[:size])
        except ValueError as e:
            log.info("closing connection from {client}: {why}", client=connection.peer_host, why=e)
            self.buffer = b""
            connection.transport.abortConnection()
            return
        self.buffer = b""
        if peer is not None:
            connection.peer_host, connection.peer_port = peer
        transport = connection.transport
        swap_protocol(transport, connection)
        connection.handler.connection_made(connection)
        rest = data[size:]
        if rest and connection.connected and not connection.closing:
            connection.dataReceived(rest)

    def connectionLost(self, reason):
        self.connection.connectionLost(reason)

    def makeConnection(self, transport):  # pragma: no cover - never called
        raise NotImplementedError
