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

from axkit.asgi import bridge as bridges
from axkit.asgi.cycle import HTTPCycle
from axkit.asgi.lifespan import Lifespan, LifespanFailed
from axkit.asgi.loader import LoadError, load_app
from axkit.asgi.scope import match_mount, mount_prefix
from axkit.config import MAP, SERVER_ONLY, ConfigError, Directive, one_of, url_path
from axkit.hooks import DECLINED, OK

log = Logger(namespace="axkit.asgi")

HANDLER = "asgi"
NOTE = "asgi.mount"
# How long a lifespan startup may take before the server gives up.
STARTUP_TIMEOUT = 60.0


def _target(word, ctx):
    """package.module:app, or a Python file (relative to the config file)."""
    if word.endswith(".py") or "/" in word:
        import os

        return os.path.normpath(os.path.join(ctx.base_dir, os.path.expanduser(word)))
    module, _, attribute = word.partition(":")
    if (
        not module
        or not all(part.isidentifier() for part in module.split("."))
        or (attribute and not all(p.isidentifier() for p in attribute.split(".")))
    ):
        raise ConfigError(f"expected package.module:app or a .py file, got {word!r}")
    return word


_target.label = "TARGET"


class Mount:
    """One mounted app: where (``url_path``, ``root_path``), what (``target``),
    and, once started, the app, its lifespan and its state."""

    __slots__ = ("url_path", "root_path", "target", "lifespan_mode", "app", "lifespan", "state")

    def __init__(self, url_path, target, lifespan_mode):
        self.url_path = url_path
        self.root_path = mount_prefix(url_path)
        self.target = target
        self.lifespan_mode = lifespan_mode
        self.app = None
        self.lifespan = None
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
            (url_path, _target),
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
        self._routes = weakref.WeakKeyDictionary()  # conf -> ((prefix, Mount), ...)
        self._mounts = []
        self.bridge = None

    # -- service start and stop ----------------------------------------------------

    def startup(self, config, reactor):
        """Import every mounted app and run its lifespan startup, before the
        server listens.  Raises (with a message for the admin) if one fails."""
        seen = {}
        for server in config.servers:
            conf = server.base.conf
            aliases = getattr(conf, "asgi_alias", None) or {}
            for url, target in aliases.items():
                key = (target, conf.asgi_lifespan)
                if key not in seen:
                    seen[key] = self._start_app(target, conf.asgi_lifespan, url, reactor)
        self._apps = seen

    def _start_app(self, target, mode, url, reactor):
        started = _APPS.get((target, mode))
        if started is not None:
            return started
        try:
            app = load_app(target)
        except LoadError as e:
            raise RuntimeError(f"ASGIAlias {url} {target}: {e}") from None
        self.bridge = bridges.bridge(reactor)
        lifespan = Lifespan(app, target, mode)
        try:
            self.bridge.run_sync(lifespan.startup(), STARTUP_TIMEOUT)
        except LifespanFailed as e:
            raise RuntimeError(f"ASGIAlias {url}: {e}") from None
        except TimeoutError:
            raise RuntimeError(
                f"ASGIAlias {url} {target}: lifespan startup took longer "
                f"than {STARTUP_TIMEOUT:.0f}s"
            ) from None
        _APPS[(target, mode)] = started = (app, lifespan)
        log.info("ASGI app {target} ready at {url}", target=target, url=url)
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
                mount = Mount(url, target, mode)
                if started is not None:
                    mount.app, mount.lifespan = started
                    mount.state = started[1].state if started[1].supported else None
                routes.append((mount.root_path, mount))
            routes.sort(key=lambda r: len(r[0]), reverse=True)
            routes = self._routes[conf] = tuple(routes)
        return routes

    def hook_uri_translation(self, request, conf):
        if not conf.asgi_alias:
            return DECLINED
        found = match_mount(self._routes_for(conf), request.path)
        if found is None:
            return DECLINED
        prefix, mount = found
        request.notes[NOTE] = mount
        request.handler = HANDLER
        request.path_info = request.path[len(prefix) :]
        return OK

    # -- response ---------------------------------------------------------------

    def hook_response(self, request, conf):
        mount = request.notes.get(NOTE)
        if mount is None or request.handler != HANDLER:
            return DECLINED
        if mount.app is None:
            log.error(
                "ASGI app {target} at {mount} was not started (a mount added by "
                "a reload needs a restart) -> 503",
                target=mount.target,
                mount=mount.url_path,
                request=request,
                plugin="asgi",
            )
            return 503
        HTTPCycle(request, mount, bridges._BRIDGE).r_start()
        return OK
