"""wsgi: run WSGI (PEP 3333) applications in-process -- Flask, Django, any.

uri_translation: a URL under a WSGIScriptAlias prefix (the longest one,
unless an Alias or Redirect, a longer ScriptAlias or a
``WSGIScriptAlias PREFIX off`` claims it) belongs to that application; the request is claimed
(``request.handler = "wsgi-script"``) so file plugins leave it alone.

response: its environ is built, its body (if any) starts streaming to
``wsgi.input``, and the application is called on a thread of the
application pool (WSGIThreads), never the reactor's; when every thread is
busy the request waits in a queue of WSGIQueueLimit, past which it is
answered 503.  The application thread and the reactor meet in an
Exchange (axkit.wsgi.exchange); PEP 3333's rules are kept in
axkit.wsgi.response.
"""

import weakref
from functools import partial

from twisted.logger import Logger

from axkit._compat import weak_key_data
from axkit.cgi.environ import flat
from axkit.config import (
    ANY,
    APPEND,
    GLOBAL,
    MAP,
    SERVER_ONLY,
    Directive,
    count,
    flag,
    many,
    path,
    url_path,
)
from axkit.hooks import DECLINED, OK
from axkit.http.paths import longer_app_mount, prefix_match, sort_mounts
from axkit.threads import has_threads
from axkit.wsgi import pool as pools
from axkit.wsgi.environ import build_environ
from axkit.wsgi.exchange import Exchange
from axkit.wsgi.handback import handback
from axkit.wsgi.input import NO_INPUT, Input
from axkit.wsgi.loader import OFF, target
from axkit.wsgi.mount import Mount
from axkit.wsgi.response import run

log = Logger(namespace="axkit.wsgi")

HANDLER = "wsgi-script"
NOTE = "wsgi.mount"


def _inline(fn, *args, **kw):
    return fn(*args, **kw)


class WSGI:
    """Serves WSGI applications from a thread pool (WSGIScriptAlias)."""

    name = "wsgi"
    # Claims its prefixes before the file plugins map them, and before
    # cgi so that the longer of a ScriptAlias and a WSGIScriptAlias wins.
    run_before = ("cgi", "uri_to_file", "mime_map", "serve_file", "serve_dir")
    directives = [
        Directive(
            "WSGIScriptAlias",
            (url_path, target),
            scopes=SERVER_ONLY,
            merge=MAP,
            to_items=lambda v: [(v[0], v[1])],
            doc="Mount a WSGI application at a URL prefix: WSGIScriptAlias /app "
            "/srv/app.wsgi (a file defining `application`; app.py:app names "
            "another callable) or WSGIScriptAlias / mysite.wsgi:application "
            "(a module on sys.path). SCRIPT_NAME is the prefix, PATH_INFO the "
            "rest. May repeat; the longest prefix wins; `off` as the target "
            "leaves a prefix to the other plugins (static files).",
        ),
        Directive(
            "WSGIChunkedRequest",
            flag,
            scopes=ANY,
            default=False,
            doc="On: a chunked request body streams to the application as it "
            "arrives, without CONTENT_LENGTH (mod_wsgi's On). Off (the "
            "default): it is received whole first (spooled to disk, bounded "
            "by LimitRequestBody) and the application sees its CONTENT_LENGTH, "
            "as behind nginx.",
        ),
        Directive(
            "WSGIPythonPath",
            many(path),
            scopes={GLOBAL},
            merge=APPEND,
            doc="Folders put first on sys.path before applications are imported.",
        ),
        Directive(
            "WSGIThreads",
            count,
            scopes={GLOBAL},
            default=16,
            doc="Threads running WSGI applications (all mounts share them).",
        ),
        Directive(
            "WSGIQueueLimit",
            count,
            scopes={GLOBAL},
            default=256,
            doc="Requests that may wait for a free application thread; past "
            "it: 503 with Retry-After.",
        ),
    ]

    def __init__(self):
        self.pool = None  # set on first use
        self._mounts = {}  # (prefix, Target) -> Mount
        self._routes = weakref.WeakKeyDictionary()  # conf -> _routes_for(conf)
        self._routes_data = weak_key_data(self._routes)
        self._reactor = None
        self._handback = None  # (calls to the reactor thread, batched)

    # -- uri_translation: which application ------------------------------------

    def hook_uri_translation(self, request, conf):
        notes = request.notes
        if NOTE in notes:
            del notes[NOTE]  # (a local redirect: a new mapping)
        if not conf.wsgi_script_alias or request.handler is not None:
            return DECLINED
        routes = self._routes_data.get(weakref.ref(conf))  # (one C call)
        if routes is None:
            routes = self._routes_for(conf)
        path = request.path
        found = None
        for route in routes[0]:
            # (axkit.http.paths.longest_prefix, inlined: this runs for every request.)
            prefix = route[0]
            if path.startswith(prefix):
                n = len(prefix)
                if prefix[-1:] == "/" or len(path) == n or path[n] == "/":
                    found = route
                    break
        if found is None:
            return DECLINED
        prefix, mount = found
        if mount is OFF:
            return DECLINED
        if routes[1] and (_aliased(conf, path) or longer_app_mount(conf, path, prefix)):
            return DECLINED  # (Apache runs mod_alias first; the longest mount wins)
        notes[NOTE] = mount
        request.handler = HANDLER
        request.path_info = path[len(mount.script_name) :]
        return OK

    def _routes_for(self, conf):
        """(mounts sorted longest first, CGI ScriptAliases sorted, or None
        when no Alias, Redirect or ScriptAlias could claim a path)."""
        python_path = tuple(flat(conf.wsgi_python_path))
        mounts = []
        for prefix, app_target in conf.wsgi_script_alias.items():
            if app_target == OFF:
                mounts.append((prefix, OFF))
                continue
            key = (prefix, app_target)
            mount = self._mounts.get(key)
            if mount is None:
                mount = self._mounts[key] = Mount(prefix, app_target, python_path, self._call)
            mounts.append((prefix, mount))
        # Whether anything else may claim a path first: an Alias or
        # Redirect, or a longer CGI, ASGI or other WSGI mount.
        others = bool(
            getattr(conf, "script_alias", None)
            or getattr(conf, "asgi_alias", None)
            or getattr(conf, "alias", None)
            or getattr(conf, "redirect", None)
        )
        routes = self._routes[conf] = (sort_mounts(mounts), others)
        return routes

    # -- response: run it ----------------------------------------------------------

    def hook_response(self, request, conf):
        # (Taken out of the notes: empty notes keep the engine's checks of
        # them short while the answer goes out.)
        mount = request.notes.pop(NOTE, None)
        if mount is None:
            return DECLINED
        pool = self.pool
        if pool is None:
            reactor = self._reactor = request.reactor
            if has_threads(reactor):
                pool = pools.shared(conf.wsgi_threads, conf.wsgi_queue_limit)
                self._handback = handback(reactor).call
            else:
                pool = pools.InlinePool()  # (axkit.testing's fake clock)
            self.pool = pool
        threaded = pool.threaded
        call = self._handback if threaded else _inline
        exchange = Exchange(request, mount, call, threaded)
        wsgi_input = NO_INPUT
        if not request.body_complete or request.body_length:
            wsgi_input = exchange.input = Input(request, call, threaded)
        env = exchange.environ = build_environ(request, mount.base, request.path_info, wsgi_input)
        if wsgi_input is NO_INPUT:
            if pool.submit(partial(run, exchange)):
                return OK
            return self._refused(request, exchange, pool)
        whole_first = not threaded  # (InlinePool: a read must never wait)
        if request.content_length is None and not conf.wsgi_chunked_request:
            # A chunked body: received whole first (spooled to disk past
            # MEMORY), then the application runs with its CONTENT_LENGTH --
            # what nginx in front of gunicorn does, and what Django needs.
            if request.body_complete:
                env["CONTENT_LENGTH"] = str(request.body_length)
            else:
                whole_first = True
                wsgi_input.set_length_when_complete(env)
        if whole_first and not request.body_complete:
            wsgi_input.start()
            wsgi_input.when_complete(partial(self._body_in, request, exchange, pool))
            return OK
        if not request.continue_wanted:
            wsgi_input.start()  # (with Expect: 100-continue, at the first read)
        return self._submit(request, exchange, pool)

    def _body_in(self, request, exchange, pool):
        """The whole body is in (reactor thread): run the application now."""
        status = self._submit(request, exchange, pool)
        if status != OK and not request.finished:
            request.send_error(status)

    def _submit(self, request, exchange, pool):
        """Queue the application's job: OK, or 503 when the queue is full."""
        if pool.submit(partial(run, exchange)):
            return OK
        return self._refused(request, exchange, pool)

    def _refused(self, request, exchange, pool):
        if exchange.input is not None:
            exchange.input.close()
        mount = exchange.mount
        log.warn(
            "WSGI application {mount}: {waiting} requests already wait for "
            "one of {threads} threads (WSGIQueueLimit) -> 503",
            mount=mount.label,
            waiting=pool.depth,
            threads=pool.size,
            request=request,
            plugin="wsgi",
        )
        request.response_headers.set("Retry-After", "1")
        return 503

    def _call(self, fn, *args, **kw):
        """Run ``fn`` on the reactor thread (from an application thread)."""
        pool = self.pool
        if pool is None or not pool.threaded or self._reactor is None:
            return fn(*args, **kw)
        self._handback(partial(fn, *args, **kw))


def _aliased(conf, path):
    """Whether an Alias or Redirect line (the alias plugin) claims ``path``:
    they win over WSGIScriptAlias whatever the order of the Plugin lines,
    as mod_alias's do over mod_wsgi's in Apache."""
    redirects = getattr(conf, "redirect", None)
    aliases = getattr(conf, "alias", None)
    if not redirects and not aliases:
        return False
    for rules in (redirects, aliases):
        for rule in rules or ():
            if rule.regex:
                if rule.pattern.search(path) is not None:
                    return True
            elif prefix_match(rule.pattern, path) is not None:
                return True
    return False
