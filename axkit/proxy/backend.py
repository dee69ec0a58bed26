"""Backend URLs as ProxyPass and BalancerMember write them.

``http://host:port/base/`` over TCP; ``unix:/run/app.sock|http://localhost/``
(Apache's form) over a UNIX socket, the URL after ``|`` giving the Host and
the base path; ``https://host/base/`` over TLS (axkit.proxy.tls);
``balancer://NAME/base`` names a <Proxy balancer://NAME>.  ``ws://`` is
http for a route that tunnels WebSockets (mod_proxy_wstunnel's form),
``wss://`` is TLS for the tunnel only.
"""

from urllib.parse import urlsplit

from axkit.config import ConfigError, duration

KEYS = ("timeout", "max", "ttl", "upgrade")


class Backend:
    """Where to send: a TCP (host, port) or a UNIX socket path, the Host
    to name, and the base path the rest of the URL is appended to."""

    __slots__ = ("url", "host", "port", "socket", "netloc", "base", "key", "tls", "scheme")

    def __init__(self, url):
        self.url = url
        socket = None
        if url.lower().startswith("unix:"):
            socket, sep, url = url[5:].partition("|")
            if not sep or not socket:
                raise ConfigError(f"expected unix:/path/to.sock|http://host/path, got {self.url!r}")
        parts = urlsplit(url)
        self.scheme = scheme = parts.scheme.lower()
        if scheme not in ("http", "https", "ws", "wss") or (socket and scheme in ("https", "wss")):
            raise ConfigError(
                f"backend URL must be http:// or ws:// (or unix:...|http://), "
                f"or https:// or wss:// (TLS), got {self.url!r}"
            )
        self.tls = scheme in ("https", "wss")
        if not parts.hostname:
            raise ConfigError(f"backend URL has no host: {self.url!r}")
        if parts.query or parts.fragment:
            raise ConfigError(f"backend URL may not have a query or fragment: {self.url!r}")
        self.socket = socket
        self.host = parts.hostname
        try:
            self.port = parts.port or (443 if self.tls else 80)
        except ValueError:
            raise ConfigError(f"bad port in backend URL {self.url!r}") from None
        self.netloc = parts.netloc
        self.base = parts.path or "/"
        self.key = (socket, self.host, self.port, self.tls)

    def __repr__(self):
        return f"Backend({self.url!r})"

    def __str__(self):
        return self.url


class Route:
    """One ProxyPass line: URL prefix, target (a Backend or a balancer name
    and its base path), and its keys."""

    __slots__ = (
        "prefix",
        "backend",
        "balancer",
        "base",
        "timeout",
        "max",
        "ttl",
        "upgrade",
        "url",
        "where",
        "target",
    )

    def __init__(self, prefix, url, timeout=None, max=None, ttl=None, upgrade=None, where=None):
        self.prefix = prefix
        self.url = url
        self.timeout = timeout
        self.max = max
        self.ttl = ttl
        self.upgrade = upgrade
        self.where = where  # (file, line) for errors found after parsing
        # Resolved once the whole config is read (plugins.proxy.check_config):
        # the PoolSpec of a backend, or the Balancer a balancer:// URL names.
        self.target = None
        if url == "!":  # ProxyPass /path ! : not proxied
            self.backend = self.balancer = None
            self.base = ""
        elif url.lower().startswith("balancer://"):
            name, _, rest = url[len("balancer://") :].partition("/")
            if not name:
                raise ConfigError(f"balancer URL has no name: {url!r}")
            self.balancer, self.base, self.backend = name.lower(), "/" + rest, None
        else:
            self.backend, self.balancer = Backend(url), None
            self.base = self.backend.base
            if self.backend.scheme in ("ws", "wss") and upgrade is None:
                # (ws:// and wss:// tunnel WebSockets, as mod_proxy_wstunnel's.)
                self.upgrade = "websocket"

    def __repr__(self):
        return f"ProxyPass {self.prefix} {self.url}"


def parse_keys(words, allowed=KEYS):
    """``key=value`` words as a dict (timeout a duration, max a count)."""
    keys = {}
    for word in words:
        key, sep, value = word.partition("=")
        key = key.lower()
        if not sep or key not in allowed:
            raise ConfigError(f"unknown key {word!r} (known: {', '.join(allowed)})")
        if key in ("timeout", "ttl"):
            keys[key] = duration(value, None)
        elif key == "retry":
            keys[key] = duration(value, None)
        elif key in ("max", "loadfactor"):
            if not value.isdigit() or int(value) < 1:
                raise ConfigError(f"{key}= takes a positive number, got {value!r}")
            keys[key] = int(value)
        elif key == "upgrade":
            if value.lower() != "websocket":
                raise ConfigError(f"upgrade= takes websocket, got {value!r}")
            keys[key] = "websocket"
        else:
            keys[key] = value.lower()
    return keys


def parse_proxy_pass(words, ctx):
    """ProxyPass URL-PATH URL [key=value...] (or ``!`` to exclude a path)."""
    if len(words) < 2:
        raise ConfigError("ProxyPass takes URL-PATH URL [timeout=... max=... upgrade=websocket]")
    prefix, url = words[0], words[1]
    if not prefix.startswith("/"):
        raise ConfigError(f"ProxyPass: the URL-path must start with '/', got {prefix!r}")
    if url == "!":
        if len(words) > 2:
            raise ConfigError("ProxyPass URL-PATH ! takes no keys")
    return Route(prefix, url, where=(ctx.file, ctx.line), **parse_keys(words[2:]))


def parse_reverse(words, ctx):
    """ProxyPassReverse URL-PATH URL: the URL as the backend writes it in a
    redirect (a ``unix:...|`` prefix dropped), found once at load time."""
    if len(words) != 2:
        raise ConfigError("ProxyPassReverse takes URL-PATH URL")
    prefix, url = words
    if not prefix.startswith("/"):
        raise ConfigError(f"ProxyPassReverse: the URL-path must start with '/', got {prefix!r}")
    if url.lower().startswith("unix:"):
        url = url.partition("|")[2]
    return (prefix, url)
