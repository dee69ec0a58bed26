"""Limits of the HTTP engine: each a directive with a sane default.

The engine reads them from the merged config of the listener's default
server when a connection opens (a request's Host is not known yet while
its headers are being read); LimitRequestBody is read again per request,
so a <Location> may raise or lower it.
"""

from axkit.config.directives import ANY, GLOBAL, SERVER, SERVER_ONLY, Directive
from axkit.config.types import count, duration, flag, size

LIMIT_DIRECTIVES = [
    Directive(
        "LimitRequestLine",
        size,
        scopes=SERVER_ONLY,
        default=8190,
        doc="Longest request line (method, target, version) in bytes; longer: 414.",
    ),
    Directive(
        "LimitRequestFieldSize",
        size,
        scopes=SERVER_ONLY,
        default=8190,
        doc="Longest single header field in bytes; longer: 431.",
    ),
    Directive(
        "LimitRequestFields",
        count,
        scopes=SERVER_ONLY,
        default=100,
        doc="Most header fields in one request; more: 431.",
    ),
    Directive(
        "LimitRequestHeaderSize",
        size,
        scopes=SERVER_ONLY,
        default=65536,
        doc="Largest whole header block (request line and fields) in bytes; larger: 431.",
    ),
    Directive(
        "LimitRequestBody",
        size,
        scopes=ANY,
        default=100 * 1024 * 1024,
        doc="Largest request body in bytes (0 = no limit); larger: 413.",
    ),
    Directive(
        "RequestHeaderTimeout",
        duration,
        scopes=SERVER_ONLY,
        default=20.0,
        doc="Deadline for a whole request header block, from its first byte; "
        "then 408 and the connection closes.",
    ),
    Directive(
        "RequestBodyTimeout",
        duration,
        scopes=SERVER_ONLY,
        default=60.0,
        doc="Longest wait between two pieces of a request body; then 408 and close.",
    ),
    Directive(
        "SendTimeout",
        duration,
        scopes=SERVER_ONLY,
        default=60.0,
        doc="Longest time a response may wait on a client that reads nothing "
        "(nginx's send_timeout: between two successful writes, not for the "
        "whole response); then the connection is cut. A slow program "
        "producing nothing is not the client's fault and is not cut.",
    ),
    Directive(
        "KeepAliveTimeout",
        duration,
        scopes=SERVER_ONLY,
        default=15.0,
        doc="How long an idle keep-alive connection is kept open.",
    ),
    Directive(
        "MaxKeepAliveRequests",
        count,
        scopes=SERVER_ONLY,
        default=1000,
        doc="Requests served on one connection before it is closed (0 = no limit).",
    ),
    Directive(
        "MaxConnections",
        count,
        scopes={GLOBAL},
        default=10000,
        doc="Open connections across all listeners; past it the server stops "
        "accepting until some close.",
    ),
    Directive(
        "GracefulShutdownTimeout",
        duration,
        scopes={GLOBAL},
        default=10.0,
        doc="On SIGTERM/SIGINT: how long responses in progress may take to "
        "finish before their connections are cut and the process exits.",
    ),
    Directive(
        "MaxPipelinedRequests",
        count,
        scopes={GLOBAL, SERVER},
        default=16,
        doc="Parsed requests waiting behind the one being answered; past it the "
        "connection stops reading until responses drain.",
    ),
    Directive(
        "RemoteIPProxyProtocol",
        flag,
        scopes=SERVER_ONLY,
        default=False,
        doc="On: every connection to the listeners of this server starts with "
        "a PROXY protocol header (v1 or v2, from HAProxy, nginx, a load "
        "balancer) naming the client; without one it is closed. Plain tcp: "
        "and unix: listeners; read from the listener's default server.",
    ),
]


class Limits:
    """The engine's limits for one connection, read from a merged Conf."""

    __slots__ = (
        "request_line",
        "field_size",
        "fields",
        "header_size",
        "body",
        "header_timeout",
        "body_timeout",
        "keepalive_timeout",
        "send_timeout",
        "max_requests",
        "max_pipelined",
        "proxy_protocol",
    )

    def __init__(self, conf):
        self.request_line = conf.limit_request_line
        self.field_size = conf.limit_request_field_size
        self.fields = conf.limit_request_fields
        self.header_size = conf.limit_request_header_size
        self.body = conf.limit_request_body
        self.header_timeout = conf.request_header_timeout
        self.body_timeout = conf.request_body_timeout
        self.keepalive_timeout = conf.keep_alive_timeout
        self.send_timeout = conf.send_timeout
        self.max_requests = conf.max_keep_alive_requests
        self.max_pipelined = conf.max_pipelined_requests
        self.proxy_protocol = conf.remote_ip_proxy_protocol
