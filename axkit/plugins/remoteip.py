"""remoteip: the real client's address behind a front end (Apache's mod_remoteip).

::

    Plugin remoteip
    RemoteIPHeader X-Forwarded-For
    RemoteIPTrustedProxy 10.0.0.0/8 192.0.2.7

When the connection's peer is a trusted proxy, the header's addresses are
read right to left: each trusted one is a hop to strip, and the first
address that is not trusted is the client (if every one is trusted, the
leftmost).  From any other peer the header is ignored: a client cannot
claim an address by sending the header itself.  The result replaces
``request.client_address`` in ``post_read_request``, before access
control, handlers and the access log read it, so ``Require ip``, CGI and
WSGI ``REMOTE_ADDR``, ``%a``/``%h`` all see the client.  The header keeps
only the addresses left unread (it is removed when all were used), as
mod_remoteip does; ``request.notes["remoteip.proxies"]`` lists the hops
stripped, nearest first.

Without RemoteIPTrustedProxy only loopback peers (127.0.0.0/8, ::1) are
trusted -- mod_remoteip would trust every peer, which is never what a
server facing the internet wants.  ``RemoteIPProxyProtocol On`` (a core
directive, see axkit/http/proxy_header.py) takes the peer from a PROXY
protocol header instead; the two combine (HAProxy in front of nginx).
"""

import ipaddress

from axkit.config import APPEND, SERVER_ONLY, ConfigError, Directive, many
from axkit.hooks import DECLINED
from axkit.http.headers import FIELD_NAME
from axkit.log import PluginLogger

log = PluginLogger("remoteip")

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
PROXIES_NOTE = "remoteip.proxies"


def cidr(word, ctx=None):
    """An address or network: 10.0.0.0/8, 192.0.2.7, 2001:db8::/32."""
    try:
        return ipaddress.ip_network(word, strict=False)
    except ValueError:
        raise ConfigError(f"expected an IP address or CIDR network, got {word!r}") from None


cidr.label = "CIDR"


def _header(word, ctx=None):
    if FIELD_NAME.match(word) is None:
        raise ConfigError(f"{word!r} is not a header field name")
    return word.lower()


_header.label = "HEADER"


def _address(text):
    """An ip_address from a header item ("1.2.3.4", "[2001:db8::1]", "1.2.3.4:5678"
    as some proxies write it), or None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address, networks):
    return any(address in net for net in networks)


def real_client(peer, values, networks):
    """``(client, unread, hops)`` by mod_remoteip's rule: ``peer`` the
    connection's address, ``values`` the header's comma-separated items in
    order, ``networks`` the trusted proxies.  ``client`` is None when the
    peer is not trusted (the header is ignored)."""
    current = _address(peer or "")
    if current is None or not _trusted(current, networks):
        return None, values, []
    items = list(values)
    hops = []
    while items and _trusted(current, networks):
        candidate = _address(items[-1])
        if candidate is None:
            # Garbage where an address should be: stop at the last
            # address we could trust (mod_remoteip does the same).
            break
        items.pop()
        hops.append(str(current))
        current = candidate
    if not hops:
        return None, values, []
    return str(current), items, hops


class RemoteIP:
    """Sets request.client_address from RemoteIPHeader when the peer is trusted."""

    name = "remoteip"
    directives = [
        Directive(
            "RemoteIPHeader",
            _header,
            scopes=SERVER_ONLY,
            default=None,
            doc="The header a trusted front end puts the client's address in "
            "(X-Forwarded-For, X-Real-IP, ...): read right to left, trusted hops "
            "stripped, the first untrusted address is the client.",
        ),
        Directive(
            "RemoteIPTrustedProxy",
            many(cidr),
            scopes=SERVER_ONLY,
            merge=APPEND,
            doc="Addresses or CIDR networks of the front ends whose RemoteIPHeader "
            "is believed (default: loopback only). May repeat.",
        ),
    ]

    def __init__(self):
        self._networks = {}

    def networks(self, conf):
        """The trusted networks of a merged Conf, flattened once."""
        found = self._networks.get(conf.remote_ip_trusted_proxy)
        if found is None:
            found = []
            for value in conf.remote_ip_trusted_proxy:
                found.extend(value if isinstance(value, tuple | list) else (value,))
            found = tuple(found) or LOOPBACK
            self._networks[conf.remote_ip_trusted_proxy] = found
        return found

    def hook_post_read_request(self, request, conf):
        name = conf.remote_ip_header
        if name is None:
            return DECLINED
        fields = request.headers.get_all(name)
        if not fields:
            return DECLINED
        values = [v.strip() for field in fields for v in field.split(",") if v.strip()]
        client, unread, hops = real_client(request.client_address, values, self.networks(conf))
        if client is None:
            return DECLINED
        request.client_address = client
        request.notes[PROXIES_NOTE] = hops
        if unread:
            request.headers.set(name, ", ".join(unread))
        else:
            request.headers.remove(name)
        return DECLINED
