"""asgi: ASGI 3 applications (Starlette, FastAPI, Django's asgi.py...) in
the server, HTTP and lifespan.

uri_translation: a URL under an ``ASGIAlias`` prefix (the longest wins)
belongs to that app: the request is claimed (``request.handler = "asgi"``)
so the file plugins leave it alone.  response: the app runs on the asyncio
loop (see axkit.asgi.bridge) and answers through axkit.asgi.cycle.

startup (before the server listens): every mounted app is imported and its
lifespan startup run -- a failure stops the server with a clear message.
shutdown (after the last request at SIGTERM): lifespan shutdown, then the
loop stops.
"""

import weakref

from twisted.internet.defer import gatherResults, succeed
from twisted.logger import Logger

from axkit._compat import weak_key_data
from axkit.asgi import bridge as bridges
from axkit.asgi.cycle import HTTPCycle
from axkit.asgi.lifespan import Lifespan, LifespanFailed
from axkit.asgi.loader import LoadError, load_app, parse_target
from axkit.config import MAP, SERVER_ONLY, Directive, one_of, url_path
from axkit.hooks import DECLINED, OK
from axkit.http.paths import longer_app_mount, sort_mounts

log = Logger(namespace="axkit.asgi")

HANDLER = "asgi"
NOTE = "asgi.mount"
# How long a lifespan startup may take before the server gives up.
STARTUP_TIMEOUT = 60.0


class Mount:
    """One mounted app: where (``url_path``; ``root_path`` is it without
    its trailing slash), what (``target``), and once started its app and
    what its lifespan startup stored (``state``)."""

    __slots__ = ("url_path", "root_path", "target", "app", "state")

    def __init__(self, url_path, target):
        self.url_path = url_path
        self.root_path = url_path.rstrip("/")
        self.target = target
        self.app = None
        self.state = None


# Started apps, by (target, lifespan mode): shared by the plugin instances of
# successive configs (SIGHUP), so an app is imported and started once.
_APPS = {}


class ASGI:
    """Runs ASGI 3 applications mounted with ASGIAlias (HTTP and lifespan)."""

    name = "asgi"
    run_before = ("uri_to_file", "mime_map", "serve_file", "serve_dir")
    directives = [
        Directive(
            "ASGIAlias",
            (url_path, parse_target),
            scopes=SERVER_ONLY,
            merge=MAP,
            to_items=lambda v: [(v[0], v[1])],
            doc="Mount an ASGI app at a URL prefix: ASGIAlias /api "
            "myproject.asgi:app, or a file that defines app or application "
            "(ASGIAlias / /srv/site/app.py). The app sees root_path = the "
            "prefix. May repeat; the longest prefix wins.",
        ),
        Directive(
            "ASGILifespan",
            one_of("auto", "on", "off"),
            scopes=SERVER_ONLY,
            default="auto",
            doc="Run the apps' lifespan protocol: on (startup must succeed "
            "before the server listens), auto (an app without lifespan "
            "support is served anyway), off.",
        ),
    ]

    def __init__(self):
        self._routes = weakref.WeakKeyDictionary()  # conf -> ((url_path, Mount), ...)
        self._routes_data = weak_key_data(self._routes)

    # -- service start and stop ----------------------------------------------------

    def startup(self, config, reactor):
        """Import every mounted app and run its lifespan startup, before the
        server listens.  Raises (with a message for the admin) if one fails."""
        for server in config.servers:
            conf = server.base.conf
            aliases = getattr(conf, "asgi_alias", None) or {}
            for url, target in aliases.items():
                self._start_app(target, conf.asgi_lifespan, url, reactor)

    def _start_app(self, target, mode, url, reactor):
        started = _APPS.get((target, mode))
        if started is not None:
            return started
        try:
            app = load_app(target)
        except LoadError as e:
            raise RuntimeError(f"ASGIAlias {url} {target}: {e}") from None
        bridge = bridges.bridge(reactor)
        lifespan = Lifespan(app, target.text, mode)
        try:
            bridge.run_sync(lifespan.startup(), STARTUP_TIMEOUT)
        except LifespanFailed as e:
            raise RuntimeError(f"ASGIAlias {url}: {e}") from None
        except TimeoutError:
            raise RuntimeError(
                f"ASGIAlias {url} {target}: lifespan startup took longer "
                f"than {STARTUP_TIMEOUT:.0f}s"
            ) from None
        _APPS[(target, mode)] = started = (app, lifespan)
        log.info("ASGI app {target} ready at {url}", target=target.text, url=url)
        return started

    def shutdown(self):
        """Lifespan shutdown of every app (after the last request); a Deferred."""
        b = bridges._BRIDGE
        if b is None:
            return succeed(None)
        apps = list(_APPS.values())
        _APPS.clear()
        ds = [b.run_deferred(lifespan.shutdown()) for _, lifespan in apps]

        def stopped(result):
            b.stop()
            if bridges._BRIDGE is b:
                bridges._BRIDGE = None
            return result

        def failed(f):
            log.failure("ASGI lifespan shutdown", failure=f)

        return gatherResults(ds, consumeErrors=True).addErrback(failed).addBoth(stopped)

    # -- uri_translation: ASGIAlias ---------------------------------------------------

    def _routes_for(self, conf):
        routes = self._routes.get(conf)
        if routes is None:
            mode = conf.asgi_lifespan
            routes = []
            for url, target in conf.asgi_alias.items():
                started = _APPS.get((target, mode))
                mount = Mount(url, target)
                if started is not None:
                    mount.app, lifespan = started
                    mount.state = lifespan.state if lifespan.supported else None
                routes.append((url, mount))
            routes = self._routes[conf] = sort_mounts(routes)
        return routes

    def hook_uri_translation(self, request, conf):
        if not conf.asgi_alias:
            return DECLINED
        routes = self._routes_data.get(weakref.ref(conf))  # (one C call)
        if routes is None:
            routes = self._routes_for(conf)
        path = request.path
        for prefix, mount in routes:
            # (axkit.http.paths.longest_prefix, inlined: this runs for every request.)
            if path.startswith(prefix):
                n = len(prefix)
                if prefix[-1:] == "/" or len(path) == n or path[n] == "/":
                    if (
                        getattr(conf, "wsgi_script_alias", None)
                        or getattr(conf, "script_alias", None)
                    ) and longer_app_mount(conf, path, prefix):
                        return DECLINED  # a CGI or WSGI mount below this one
                    request.notes[NOTE] = mount
                    request.handler = HANDLER
                    request.path_info = path[len(mount.root_path) :]
                    return OK
        return DECLINED

    # -- response ---------------------------------------------------------------

    def hook_response(self, request, conf):
        # (Taken out of the notes: empty notes keep the engine's checks of
        # them short while the answer goes out.)
        mount = request.notes.pop(NOTE, None)
        if mount is None or request.handler != HANDLER:
            return DECLINED
        if mount.app is None:
            log.error(
                "ASGI app {target} at {mount} was not started (a mount added by "
                "a reload needs a restart) -> 503",
                target=mount.target.text,
                mount=mount.url_path,
                request=request,
                plugin="asgi",
            )
            return 503
        HTTPCycle(request, mount, bridges._BRIDGE)
        return OK
