"""proxy: a reverse proxy in Apache mod_proxy's words.

    ProxyPass /app/ http://127.0.0.1:8000/ timeout=30 max=16
    ProxyPass /sock/ unix:/run/app.sock|http://localhost/
    ProxyPass /static/ !
    ProxyPassReverse /app/ http://127.0.0.1:8000/
    ProxyPreserveHost Off
    ProxyAddHeaders On
    XSendFile On
    XSendFilePath /srv/files

uri_translation (before alias, wsgi, cgi and the file plugins, as Apache
runs mod_proxy's translate_name first): the first ProxyPass line whose
URL-path matches the request's normalised path, in config order (a
<Server>'s lines first), claims the request (``request.handler =
"proxy-server"``); ``!`` leaves a path to the other plugins.  response:
the request goes to the backend (axkit.proxy.forward) with its
end-to-end fields, the body streamed both ways.  Only the configured
backend is ever contacted: the request's target, Host and path choose
the URL *path* only.
"""

import re
from urllib.parse import quote

from axkit.config import (
    ANY,
    APPEND,
    PREPEND,
    RAW,
    SERVER_ONLY,
    ConfigError,
    Directive,
    duration,
    flag,
    many,
    one_of,
    string,
)
from axkit.hooks import DECLINED, DONE, OK
from axkit.http.headers import HOP_BY_HOP
from axkit.http.paths import prefix_match
from axkit.log import PluginLogger
from axkit.notes import X_SENDFILE
from axkit.proxy import client, websocket, xsendfile
from axkit.proxy.backend import parse_proxy_pass, parse_reverse
from axkit.proxy.balancer import parse_balancer
from axkit.proxy.client import PoolSpec
from axkit.proxy.forward import Forward
from axkit.proxy.hop import REQUEST_OWN, connection_listed, end_to_end
from axkit.proxy.tls import TLSSettings, ca_file

HANDLER = "proxy-server"
NOTE = "proxy.route"
_PATH_SAFE = "/:@!$&'()*+,;=~"
# A path of only these needs no quoting (quote's safe set and the unreserved).
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_.\-~/:@!$&'()*+,;=]*\Z").match
log = PluginLogger("proxy")


class _Parsed(Directive):
    """A directive whose words one function parses."""

    def __init__(self, name, args, parse, usage, **kw):
        super().__init__(name, args, **kw)
        self._parse = parse
        self._usage = usage

    def parse(self, words, ctx):
        return self._parse(list(words), ctx)

    @property
    def usage(self):
        return self._usage


class Proxy:
    """Forwards URL prefixes to HTTP backends (ProxyPass)."""

    name = "proxy"
    run_before = ("alias", "wsgi", "asgi", "cgi", "uri_to_file", "mime_map", "serve_file")
    directives = [
        _Parsed(
            "ProxyPass",
            RAW,
            parse_proxy_pass,
            "ProxyPass URL-PATH URL|! [timeout=DURATION max=N ttl=DURATION upgrade=websocket]",
            scopes=SERVER_ONLY,
            merge=PREPEND,
            doc="ProxyPass URL-PATH URL [timeout= max= ttl= upgrade=websocket]: send "
            "requests under URL-PATH to the backend URL (http://host:port/path, "
            "https://host/path, unix:/path.sock|http://host/path, balancer://NAME/path), "
            "the rest of the path appended. `!` as URL excludes a path. First match "
            "wins. max=: the most connections open to the backend at once (Apache's hard "
            "cap; more requests wait for one within timeout=), as many kept idle; without "
            "it no cap and 16 kept. ttl=: how long one is kept unused (60s).",
        ),
        Directive(
            "Proxy",
            string,
            scopes=SERVER_ONLY,
            merge=APPEND,
            section=parse_balancer,
            doc="<Proxy balancer://NAME> BalancerMember URL [loadfactor= max= "
            "timeout= retry=]... ProxySet lbmethod=byrequests|bybusyness "
            "failures=N retry=DURATION </Proxy>: a group of backends for "
            "ProxyPass URL-PATH balancer://NAME/.",
        ),
        _Parsed(
            "ProxyPassReverse",
            RAW,
            parse_reverse,
            "ProxyPassReverse URL-PATH URL",
            scopes=SERVER_ONLY,
            merge=PREPEND,
            doc="ProxyPassReverse URL-PATH URL: rewrite Location, Content-Location "
            "and URI fields of backend answers that start with URL to this "
            "server's URL-PATH.",
        ),
        Directive(
            "ProxyPreserveHost",
            flag,
            scopes=ANY,
            default=False,
            doc="On: send the client's Host field to the backend instead of the backend's.",
        ),
        Directive(
            "ProxyTimeout",
            duration,
            scopes=ANY,
            default=60.0,
            doc="How long to wait for a backend's answer (and between pieces of "
            "it): 504 before the head, a cut connection after. ProxyPass "
            "timeout= overrides it.",
        ),
        Directive(
            "ProxyAddHeaders",
            flag,
            scopes=ANY,
            default=True,
            doc="Add X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Server and "
            "X-Forwarded-Proto to proxied requests.",
        ),
        Directive(
            "SSLProxyVerify",
            one_of("none", "require"),
            scopes=SERVER_ONLY,
            default="require",
            doc="require (the default; Apache's is none): check an https:// backend's "
            "certificate and name against the system's CAs or SSLProxyCACertificateFile; "
            "none: encrypt without checking.",
        ),
        Directive(
            "SSLProxyCACertificateFile",
            ca_file,
            scopes=SERVER_ONLY,
            doc="A PEM file of the CA certificates https:// backends are checked "
            "against (instead of the system's).",
        ),
        Directive(
            "XSendFile",
            flag,
            scopes=ANY,
            default=False,
            doc="On: an X-Sendfile: /path field in the answer of a proxied backend, "
            "a CGI program or a WSGI/ASGI application makes axkit send that file "
            "itself (ranges, validators, HEAD, zero-copy); the field never reaches "
            "the client.",
        ),
        Directive(
            "XSendFilePath",
            many(xsendfile.real_folder),
            scopes=ANY,
            merge=APPEND,
            doc="XSendFilePath DIR...: the only folders X-Sendfile may name files "
            "in (after symlinks are resolved); anything else is a 404.",
        ),
    ]

    def shutdown(self):
        """Close the kept backend connections after the drain (SIGTERM)."""
        return client.close_all()

    def check_config(self, conf):
        """Resolve each ProxyPass once, when the config loads: a backend's
        pool settings (its max=, ttl=, the server's SSLProxy* lines), or the
        <Proxy balancer://NAME> it names -- an unknown one refuses the config."""
        tls = TLSSettings(conf.ssl_proxy_verify == "require", conf.ssl_proxy_ca_certificate_file)
        balancers = {}
        for balancer in conf.proxy:
            balancers[balancer.name] = balancer
            for member in balancer.members:
                member.spec = _resolved(
                    member.spec, PoolSpec(member.backend, member.max, member.ttl, tls), member.where
                )
        for route in conf.proxy_pass:
            if route.balancer is not None:
                target = balancers.get(route.balancer)
                if target is None:
                    raise ConfigError(
                        f"ProxyPass {route.prefix}: no <Proxy balancer://{route.balancer}> "
                        "in this server"
                    ).located(*route.where)
            elif route.backend is not None:
                target = PoolSpec(route.backend, route.max, route.ttl, tls)
            else:
                continue
            route.target = _resolved(route.target, target, route.where)

    def wants_hook(self, hook, conf):
        if hook == "uri_translation":
            return bool(conf.proxy_pass)
        if hook == "fixup":
            return bool(conf.x_send_file)
        return True

    def hook_fixup(self, request, conf):
        """XSendFile On: every handler's fields are checked for X-Sendfile
        (request.add_handler_fields calls the checker)."""
        request.notes[X_SENDFILE] = xsendfile.checker(conf.x_send_file_path)
        return DECLINED

    def hook_uri_translation(self, request, conf):
        notes = request.notes
        notes.pop(NOTE, None)
        path = request.path
        for route in conf.proxy_pass:
            n = prefix_match(route.prefix, path)
            if n is None:
                continue
            if route.target is None:
                return DECLINED  # ProxyPass /path !
            notes[NOTE] = (route, path[n:])
            request.handler = HANDLER
            return OK
        return DECLINED

    def hook_response(self, request, conf):
        found = request.notes.get(NOTE)
        if found is None or request.handler != HANDLER:
            return DECLINED
        route, rest = found
        if route.balancer is None:
            spec = route.target
            return self._forward(request, conf, route, rest, spec, route.base).start()
        return self._balance(request, conf, route, rest, route.target, ())

    def _balance(self, request, conf, route, rest, balancer, tried):
        now = request.reactor.seconds()
        member = balancer.pick(now, tried)
        if member is None:
            log.error(
                "balancer://{name}: every member is down -> 503",
                name=balancer.name,
                request=request,
            )
            request.send_error(503)
            return DONE
        balancer.started(member)
        forward = self._forward(
            request,
            conf,
            route,
            rest,
            member.spec,
            member.backend.base.rstrip("/") + route.base,
            member.timeout or balancer.timeout,
        )
        if isinstance(forward, websocket.Tunnel):
            forward.on_closed = lambda: balancer.ended(member)  # (busy while it lasts)
        else:
            request.when_ended(lambda: balancer.ended(member))

        def failed(forward, nothing_sent):
            balancer.failed(member, request.reactor.seconds())
            if nothing_sent and not request.finished:
                if balancer.pick(request.reactor.seconds(), tried + (member,)) is not None:
                    return self._balance(request, conf, route, rest, balancer, tried + (member,))
            return None

        forward.on_success = lambda: balancer.succeeded(member)
        forward.on_failure = failed
        return forward.start()

    def _forward(self, request, conf, route, rest, spec, base, timeout=None):
        target = base + (rest if _PLAIN_PATH(rest) else quote(rest, safe=_PATH_SAFE))
        if request.query is not None:
            target += "?" + request.query
        if timeout is None:
            timeout = route.timeout if route.timeout is not None else conf.proxy_timeout
        backend = spec.backend
        fields = request_fields(request, conf, backend)
        if route.upgrade == "websocket" and websocket.wanted(request):
            url = "http://" + backend.netloc + target
            return websocket.Tunnel(request, backend, url, fields, timeout, spec.tls)
        answer = _Answer(conf, request) if conf.proxy_pass_reverse else None
        return Forward(request, spec, target, fields, timeout, answer)


def _resolved(old, new, where):
    """``new``, unless the line was resolved already (a global ProxyPass
    seen from several servers) to something else."""
    if old is None:
        return new
    if isinstance(old, PoolSpec) and isinstance(new, PoolSpec) and old.key == new.key:
        return old
    if old is new:
        return old
    raise ConfigError(
        "this line means different backends (or TLS settings) in different "
        "<Server> sections: write it inside each <Server>"
    ).located(*where)


_FORWARDED = frozenset(("x-forwarded-for", "x-forwarded-host", "x-forwarded-server"))
# A client's fields that do not pass as they are (ProxyAddHeaders On):
# hop-by-hop, the proxy's own, and the X-Forwarded-* ones it sets.
_ASIDE = HOP_BY_HOP | REQUEST_OWN | _FORWARDED | {"x-forwarded-proto"}


def request_fields(request, conf, backend):
    """The fields sent to the backend: the Host, the client's end-to-end
    ones, and the X-Forwarded-* ones (ProxyAddHeaders)."""
    headers = request.headers
    client_host = headers.get("host")
    host = client_host if conf.proxy_preserve_host and client_host else backend.netloc
    fields = [("Host", host)]
    if not conf.proxy_add_headers:
        fields += end_to_end(headers, REQUEST_OWN)
        return fields
    # One pass: the end-to-end fields go on, the others are set aside (the
    # common request has none, or a Connection: keep-alive).
    aside = None
    for pair in headers:
        name = pair[0].lower()
        if name not in _ASIDE:
            fields.append(pair)
        elif name != "host":
            aside = [pair] if aside is None else aside + [pair]
    prior = None
    if aside is not None:
        listed = connection_listed(aside)
        if listed:
            fields[1:] = [p for p in fields[1:] if p[0].lower() not in listed]
        for name, value in aside:
            name = name.lower()
            if name in _FORWARDED and name not in listed:
                # Apache appends to a value the client (or a proxy before us) sent.
                if prior is None:
                    prior = {}
                prior.setdefault(name, []).append(value)
    server = getattr(request.server, "name", None) or request.host
    if prior is None:
        client = request.client_address
        if client:
            fields.append(("X-Forwarded-For", client))
        if client_host:
            fields.append(("X-Forwarded-Host", client_host))
        if server:
            fields.append(("X-Forwarded-Server", server))
    else:
        for name, value in (
            ("X-Forwarded-For", request.client_address),
            ("X-Forwarded-Host", client_host),
            ("X-Forwarded-Server", server),
        ):
            old = prior.get(name.lower())
            if old:
                value = ", ".join(old + [value]) if value else ", ".join(old)
            if value:
                fields.append((name, value))
    fields.append(("X-Forwarded-Proto", "https" if request.secure else "http"))
    return fields


class _Answer:
    """What happens to a backend's head before it is sent: ProxyPassReverse.
    (X-Sendfile: request.add_handler_fields, as for every handler.)"""

    __slots__ = ("conf", "request")

    def __init__(self, conf, request):
        self.conf = conf
        self.request = request

    def __call__(self, forward, status, fields):
        conf = self.conf
        if conf.proxy_pass_reverse:
            fields = [(n, reverse(self.request, conf, n, v)) for n, v in fields]
        return fields


_REVERSED = frozenset(("location", "content-location", "uri"))


def reverse(request, conf, name, value):
    """ProxyPassReverse: a backend URL in a redirect becomes ours."""
    if name.lower() not in _REVERSED:
        return value
    for prefix, url in conf.proxy_pass_reverse:
        if value.startswith(url):
            scheme = "https" if request.secure else "http"
            host = request.headers.get("host") or request.host
            rest = value[len(url) :]
            if prefix.endswith("/") and rest.startswith("/"):
                rest = rest[1:]
            return f"{scheme}://{host}{prefix}{rest}"
    return value
