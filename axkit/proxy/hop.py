"""Hop-by-hop fields (RFC 9110 section 7.6.1): what never crosses the proxy.

``Connection`` and every field it lists, plus the fixed set below, are
stripped in both directions; the proxy frames each body itself, so
``Content-Length`` and ``Transfer-Encoding`` never pass as they came.
"""

# (Always hop-by-hop: axkit.http.headers.HOP_BY_HOP, RFC 9110 7.6.1 and
# Proxy-Connection, a de-facto one.)
from axkit.http.framing import split_tokens
from axkit.http.headers import HOP_BY_HOP

# Request fields the proxy sets itself: Host (the backend's, or the
# client's under ProxyPreserveHost), the body's framing, and Expect (the
# engine has answered 100-continue when the body was asked for).
REQUEST_OWN = frozenset(("host", "content-length", "expect"))

# Response fields the engine writes itself (framing, Date, Server).
RESPONSE_OWN = frozenset(("content-length", "date", "server"))


def connection_listed(pairs):
    """The lowered names listed by every ``Connection`` field of ``pairs``."""
    listed = set()
    for name, value in pairs:
        if name.lower() == "connection":
            listed.update(split_tokens(value))
    return listed


_DROPS = {}  # (own, keep) -> the names always dropped


def end_to_end(pairs, own=frozenset(), keep=frozenset()):
    """The (name, value) pairs of ``pairs`` that are end-to-end: neither
    hop-by-hop, nor listed in a Connection field, nor in ``own``.  Names in
    ``keep`` (``upgrade`` for a WebSocket tunnel) are kept if not listed
    as hop-by-hop by a Connection field other than as themselves."""
    drop = _DROPS.get((own, keep))
    if drop is None:
        drop = _DROPS[(own, keep)] = (HOP_BY_HOP | own) - keep
    out = []
    listing = None
    for pair in pairs:
        name = pair[0].lower()
        if name in drop:
            if name == "connection":
                listing = [pair] if listing is None else listing + [pair]
            continue
        out.append(pair)
    if listing is not None:
        listed = connection_listed(listing) - keep
        if listed:
            out = [p for p in out if p[0].lower() not in listed]
    return out
