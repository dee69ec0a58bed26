"""What a listener needs beside its factory: the accept backlog, the
descriptor limit MaxConnections needs, and how its address is logged.
Used by the one-process server (axkit.server) and by Workers N
(axkit.workers)."""

from twisted.logger import Logger

log = Logger(namespace="axkit.server")


# Twisted listens with a backlog of 50: a burst of new connections (or a
# pause at MaxConnections) overflows it and clients retransmit their SYN a
# second later.  nginx uses 511; so do we, unless the endpoint says.
DEFAULT_BACKLOG = 511


def with_backlog(endpoint):
    """The endpoint string with backlog=511 added for TCP/SSL listeners."""
    kind = endpoint.split(":", 1)[0].lower()
    if kind in ("tcp", "tcp6", "ssl") and "backlog=" not in endpoint:
        return f"{endpoint}:backlog={DEFAULT_BACKLOG}"
    return endpoint


def raise_fd_limit(gate, config):
    """MaxConnections needs as many descriptors: raise the soft limit
    toward the hard one, and cap ``gate.maximum`` below what is possible
    (accepting past the descriptor limit would fail with EMFILE)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, ValueError, OSError):
        return
    # Beside the connections: 64 for the server itself, and what each
    # plugin says it may hold open (IAxKitPlugin.descriptors_reserved).
    conf = config.global_resolved.conf
    reserve = 64
    for plugin in config.plugins.values():
        reserved = getattr(plugin, "descriptors_reserved", None)
        if reserved is not None:
            reserve += reserved(conf)
    want = gate.maximum + max(256, reserve)
    if soft != resource.RLIM_INFINITY and soft < want:
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and gate.maximum > soft - reserve:
        capped = max(1, soft - reserve)
        log.warn(
            "MaxConnections {maximum} is more than the open-file limit "
            "allows ({soft}); using {capped}",
            maximum=gate.maximum,
            soft=soft,
            capped=capped,
        )
        gate.maximum = capped


def describe(address, scheme="http"):
    """``scheme://host:port/`` for an IP address, else the socket's name."""
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is not None:
        return f"{scheme}://{host}:{port}/" if ":" not in host else f"{scheme}://[{host}]:{port}/"
    return str(getattr(address, "name", address))
