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

from urllib.parse import quote

from twisted.internet.defer import succeed

from axkit.config import (
    ANY,
    APPEND,
    PREPEND,
    RAW,
    SERVER_ONLY,
    Directive,
    duration,
    flag,
    many,
    string,
    url_path,
)
from axkit.hooks import DECLINED, DONE, OK
from axkit.http.paths import prefix_match
from axkit.log import PluginLogger
from axkit.notes import X_SENDFILE
from axkit.proxy import client, websocket, xsendfile
from axkit.proxy.backend import parse_proxy_pass
from axkit.proxy.balancer import parse_balancer
from axkit.proxy.forward import Forward
from axkit.proxy.hop import REQUEST_OWN, end_to_end

HANDLER = "proxy-server"
NOTE = "proxy.route"
_PATH_SAFE = "/:@!$&'()*+,;=~"
log = PluginLogger("proxy")


class ProxyPassDirective(Directive):
    def parse(self, words, ctx):
        return parse_proxy_pass(list(words), ctx)

    @property
    def usage(self):
        return "ProxyPass URL-PATH URL|! [timeout=DURATION max=N upgrade=websocket]"


class Proxy:
    """Forwards URL prefixes to HTTP backends (ProxyPass)."""

    name = "proxy"
    run_before = ("alias", "wsgi", "asgi", "cgi", "uri_to_file", "mime_map", "serve_file")
    directives = [
        ProxyPassDirective(
            "ProxyPass",
            RAW,
            scopes=SERVER_ONLY,
            merge=PREPEND,
            doc="ProxyPass URL-PATH URL [timeout= max= upgrade=websocket]: send "
            "requests under URL-PATH to the backend URL (http://host:port/path, "
            "unix:/path.sock|http://host/path, balancer://NAME/path), the rest "
            "of the path appended. `!` as URL excludes a path. First match wins.",
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
        Directive(
            "ProxyPassReverse",
            (url_path, string),
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
            if route.backend is None and route.balancer is None:
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
            return self._send(request, conf, route, rest, route.backend, route.base)
        balancer = next((b for b in conf.proxy if b.name == route.balancer), None)
        if balancer is None:
            log.error(
                "ProxyPass {prefix}: no <Proxy balancer://{name}>",
                prefix=route.prefix,
                name=route.balancer,
                request=request,
            )
            return 500
        return self._balance(request, conf, route, rest, balancer, ())

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
            return succeed(DONE)
        balancer.started(member)
        backend = member.backend
        forward = self._forward(
            request,
            conf,
            route,
            rest,
            backend,
            backend.base.rstrip("/") + route.base,
            member.max or route.max,
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

    def _send(self, request, conf, route, rest, backend, base):
        return self._forward(request, conf, route, rest, backend, base, route.max).start()

    def _forward(self, request, conf, route, rest, backend, base, max_idle, timeout=None):
        url = "http://" + backend.netloc + base + quote(rest, safe=_PATH_SAFE)
        if request.query is not None:
            url += "?" + request.query
        agent = client.agent_for(request.reactor, backend, max_idle)
        if timeout is None:
            timeout = route.timeout if route.timeout is not None else conf.proxy_timeout
        fields = request_fields(request, conf, backend)
        if route.upgrade == "websocket" and websocket.wanted(request):
            return websocket.Tunnel(request, backend, url, fields, timeout)
        if backend.tls:
            return _Refused(request, backend)
        return Forward(request, agent, backend, url, fields, timeout, _Answer(conf, request))


def request_fields(request, conf, backend):
    """The fields sent to the backend: the client's end-to-end ones, the
    Host, and the X-Forwarded-* ones (ProxyAddHeaders)."""
    fields = end_to_end(request.headers, REQUEST_OWN)
    client_host = request.headers.get("host")
    host = client_host if conf.proxy_preserve_host and client_host else backend.netloc
    fields.insert(0, ("Host", host))
    if conf.proxy_add_headers:
        # Apache appends to a value the client (or a proxy before us) sent.
        for name, value in (
            ("X-Forwarded-For", request.client_address),
            ("X-Forwarded-Host", client_host),
            ("X-Forwarded-Server", getattr(request.server, "name", None) or request.host),
        ):
            if not value:
                continue
            old = [v for n, v in fields if n.lower() == name.lower()]
            if old:
                fields = [(n, v) for n, v in fields if n.lower() != name.lower()]
                value = ", ".join(old + [value])
            fields.append((name, value))
        fields = [(n, v) for n, v in fields if n.lower() != "x-forwarded-proto"]
        fields.append(("X-Forwarded-Proto", "https" if request.secure else "http"))
    return fields


class _Refused:
    """A plain request on a wss:// route (only WebSockets are tunnelled)."""

    def __init__(self, request, backend):
        self.request, self.backend = request, backend
        self.on_success = self.on_failure = None

    def start(self):
        return websocket.refuse_tls(self.request, self.backend)


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
        url = url.partition("|")[2] if url.lower().startswith("unix:") else url
        if value.startswith(url):
            scheme = "https" if request.secure else "http"
            host = request.headers.get("host") or request.host
            rest = value[len(url) :]
            if prefix.endswith("/") and rest.startswith("/"):
                rest = rest[1:]
            return f"{scheme}://{host}{prefix}{rest}"
    return value
