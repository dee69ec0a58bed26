"""Drive one request through the hooks (the handler behind every listener).

A request walks the steps of axkit.phases.STEPS in order: ``pre_request``
(the server's own scope, before the request's <Location>s are known: a
plugin may still rewrite the path), the core's ``admit`` (refusals,
``OPTIONS *``, the path, the scope, LimitRequestBody), ``post_read_request``,
``uri_translation``, the core's ``files`` (<Files> sections), the phases
from ``mime_map`` to ``response``, and the core's ``end`` (nobody
answered).  One loop, ``Pipeline._walk``, runs them, skipping the hooks no
plugin of the scope has (the scope's plan), and acts on each result
(docs/hooks.md); a Deferred result pauses it, and it goes on from the next
step when the Deferred fires.  ``response_sent`` runs when the response is
complete, whatever produced it.  ``body_data`` fires for each piece of the
request body as it arrives, alongside the steps (which start as soon as the
head is read, so a response plugin can stream the body).

Why one module of ~550 lines: the loop, its error guard and the methods
that answer for the core (refusals, 404/405/501, the error hook) act on
the same request state, and the loop is the hottest code of a request --
a call saved here is a call saved per request (bench/hotpath.py).
"""

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from axkit.hooks import (
    DECLINED,
    DONE,
    OK,
    Code,
    PluginError,
    check_result,
    is_deferred,
    run_chain,
    settle,
)
from axkit.http.head import HeaderInjection
from axkit.http.limits import Limits
from axkit.http.paths import BadTarget, normalize_path
from axkit.http.states import FINISHED
from axkit.interfaces import IRequestHandler
from axkit.notes import REDIRECTED_FROM, TRACE
from axkit.phases import ADMIT, END, FILES, FIRST_PHASE, PRE_REQUEST, STEPS
from axkit.trace import HookTracer
from axkit.vhosts import VirtualHosts

log = Logger(namespace="axkit.pipeline")

# Where the walk goes on after each core step (see axkit.phases.plan).
_AFTER_ADMIT = ADMIT + 1
_AFTER_FILES = FILES + 1

ALLOWED_DEFAULT = "GET, HEAD, OPTIONS"
# Methods answered by the core before any plugin sees them.
_REFUSED_METHODS = frozenset(("TRACE", "CONNECT"))
# Methods of RFC 9110 and RFC 5789 (PATCH): a resource nobody serves with
# them is 405 with Allow; any other method nobody handles is 501.
_KNOWN_METHODS = frozenset(("POST", "PUT", "DELETE", "PATCH"))


@implementer(IRequestHandler)
class Pipeline:
    """The request handler for one listening endpoint."""

    def __init__(self, holder, endpoint):
        self.holder = holder  # ConfigHolder: .config is the live SiteConfig
        self.endpoint = endpoint
        self._config = None
        self._vhosts = None
        self._limits = None
        self.clock = None  # trace timer; None: time.perf_counter

    # The config is looked up per connection/request, so a reload applies to
    # new requests while in-flight ones keep the objects they already hold.
    def _current(self):
        config = self.holder.config
        if config is not self._config:
            servers = config.listeners.get(self.endpoint) or config.servers
            self._vhosts = VirtualHosts(servers)
            self._limits = Limits(self._vhosts.default.base.conf)
            self._config = config
        return self._vhosts

    def limits(self):
        self._current()
        return self._limits

    # -- connection hooks ---------------------------------------------------

    def connection_made(self, channel):
        server = self._current().default
        channel.server = server
        chain = server.base.chains["connect"]
        if chain:
            self._run_simple(
                chain,
                "connect",
                (channel, server.base.conf),
                None,
                on_status=lambda status: channel.protocol_error(
                    status, "refused by a connect hook"
                ),
                tracer=self._connection_tracer(channel, server),
            )

    def connection_lost(self, channel, reason):
        server = channel.server
        if server is not None:
            chain = server.base.chains["disconnect"]
            if chain:
                self._run_simple(
                    chain,
                    "disconnect",
                    (channel, server.base.conf),
                    None,
                    tracer=self._connection_tracer(channel, server),
                )

    def protocol_error(self, channel, status, detail):
        log.info(
            "{status} to {client}: {detail}", status=status, client=channel.peer_host, detail=detail
        )

    # -- a request ------------------------------------------------------------

    def handle(self, request):
        vhosts = self._vhosts if self.holder.config is self._config else self._current()
        # (One server on this listener: no Host to look at.)
        server = vhosts.default if vhosts.single else vhosts.select(request)
        base = server.base
        request.server = server
        request.resolved = base
        request.conf = base.conf
        request.chains = base.chains
        self._walk(request, PRE_REQUEST)

    def _walk(self, request, position, result=DECLINED):
        """Act on ``result``, what the step before ``position`` answered,
        then run the request's steps (axkit.phases.STEPS) from ``position``
        on, as the plan of its scope at each point says, until one answers,
        stops or returns a Deferred (the walk goes on when it fires).

        This is the innermost loop of every request."""
        try:
            while True:
                if result is not DECLINED:
                    if result is OK:
                        if position == END:
                            return  # from response: the plugin answers
                    elif result is DONE:
                        if (
                            request.state != FINISHED
                            and not request.headers_sent
                            and REDIRECTED_FROM not in request.notes
                        ):
                            # The plugin claims it answered but sent nothing
                            # (nor redirected internally: an ErrorDocument page
                            # for its send_error may answer later).
                            log.error(
                                "plugin returned DONE in hook_{phase} without "
                                "responding to {request}",
                                phase=STEPS[position - 1],
                                request=request,
                            )
                            request.send_error(500)
                        return
                    elif is_deferred(result):
                        result.addCallbacks(
                            self._resume,
                            self._failed_later,
                            callbackArgs=(request, position),
                            errbackArgs=(request,),
                        )
                        return
                    else:
                        # An HTTP status.
                        if not request.finished:
                            self.send_status(request, result)
                        return
                # The next step to run, and from now on ``position`` is the
                # one after it.
                position, phase, chain, method = request.resolved.plan[position]
                if chain:
                    # A hook some plugin of the scope has.
                    if request.state == FINISHED and position > FIRST_PHASE:
                        return
                    conf = request.conf
                    if method is not None and not conf.trace_hooks:
                        # One plugin, untraced (the usual case): called right here.
                        try:
                            result = method(request, conf)
                        except Exception:
                            raise PluginError(chain[0][0], phase, Failure())
                        if result is None:
                            result = DECLINED
                        elif result.__class__ is Deferred:
                            # Answers later (a handler waiting on a thread, a
                            # backend): one callback pair, straight back here.
                            result.addCallbacks(
                                self._resume_one,
                                self._failed_one,
                                callbackArgs=(request, position, chain[0][0], phase),
                                errbackArgs=(request, chain[0][0], phase),
                            )
                            return
                        elif result.__class__ is not Code and (
                            result.__class__ is not int or not 100 <= result <= 599
                        ):
                            result = settle(chain, 0, phase, (request, conf), result)
                    elif not conf.trace_hooks:
                        # Several plugins, untraced: run_chain's loop, inline.
                        i = 0
                        for plugin, method in chain:
                            try:
                                result = method(request, conf)
                            except Exception:
                                raise PluginError(plugin, phase, Failure())
                            if result is None or result is DECLINED:
                                i += 1
                                continue
                            if result.__class__ is not Code and (
                                result.__class__ is not int or not 100 <= result <= 599
                            ):
                                result = settle(chain, i, phase, (request, conf), result)
                                if result is DECLINED:
                                    i += 1
                                    continue
                            break
                        else:
                            result = DECLINED
                    else:
                        result = run_chain(chain, phase, (request, conf), self._tracer(request))
                elif position == _AFTER_ADMIT:
                    # admit: what the core answers itself, the path, the
                    # request's scope (its <Location>s), LimitRequestBody.
                    if request.method in _REFUSED_METHODS or request.raw_path == "*":
                        self._answer_in_core(request)
                        return
                    try:
                        request.path = normalize_path(request.raw_path)
                    except BadTarget as e:
                        request.send_error(400, str(e))
                        return
                    self.resolve(request)
                    limit = request.body_limit = request.conf.limit_request_body
                    # The announced length, or (chunked) what arrived with the head.
                    size = request.content_length
                    if size is None:
                        size = request.body_length
                    if limit and size > limit and REDIRECTED_FROM not in request.notes:
                        # (An internal redirect is a GET without the body: an
                        # ErrorDocument page for this very 413 is served.)
                        self._too_large(request, size, limit)
                        return
                    if request.chains["body_data"] and not request.body_complete:
                        # A body_data plugin reads the body as it arrives: time for 100.
                        request.want_body()
                elif position == _AFTER_FILES:
                    # uri_translation is over: the <Files> sections matching
                    # the mapped file apply from here on (their scope, their plan).
                    if request.filename is not None and request.server.files:
                        self.resolve_file(request)
                else:
                    # The end: past the last phase with plugins, nobody answered.
                    if not request.finished and not request.headers_sent:
                        self._nobody_answered(request)
                    return
        except Exception as e:
            self._failed(request, e)

    def _resume(self, result, request, position):
        if not request.aborted:
            self._walk(request, position, result)

    def _failed_later(self, failure, request):
        self._failed(request, failure.value, failure)

    def _resume_one(self, result, request, position, plugin, phase):
        """A lone plugin's Deferred fired (settle's checks, without its
        extra callbacks): the walk goes on from ``position``."""
        if result is not DECLINED and result.__class__ is not Code:
            try:
                result = check_result(plugin, phase, result)
            except Exception:
                self._failed(request, PluginError(plugin, phase, Failure()))
                return
        if not request.aborted:
            self._walk(request, position, result)

    def _failed_one(self, failure, request, plugin, phase):
        error = failure.value
        if not isinstance(error, PluginError):
            error = PluginError(plugin, phase, failure)
        self._failed(request, error, failure)

    def _failed(self, request, error, failure=None):
        """A plugin raised (a PluginError), or the core did (anything else)."""
        if isinstance(error, PluginError):
            self._plugin_failed(request, error)
        else:
            log.failure("internal error handling {request}", failure=failure, request=request)
            self._internal_error(request)

    def tracer(self, request):
        """The request's HookTracer when its scope has TraceHooks On, else None."""
        conf = request.conf
        if conf is None or not conf.trace_hooks:
            return None
        return self._tracer(request)

    def _tracer(self, request):
        tracer = request.notes.get(TRACE)
        if tracer is None:
            label = f"{request.method} {request.target}"
            tracer = (
                HookTracer(request, label)
                if self.clock is None
                else HookTracer(request, label, self.clock)
            )
            request.notes[TRACE] = tracer
        return tracer

    def internal_redirect(self, request, location, keep_fields=()):
        """Answer ``request`` as a GET of ``location`` (a local path with an
        optional query) through the phases again -- Apache's internal
        redirect, used for a CGI local redirect (RFC 3875 §6.2.2).  The
        request headers are kept minus those of its body; HEAD stays HEAD;
        nothing of the first answer's head survives.  ``request.target``
        stays the request line's (the access log shows what the client
        asked; Apache's REQUEST_URI does the same).  ``keep_fields``: the
        response fields that carry over (an ErrorDocument page keeps its
        error's WWW-Authenticate, as Apache keeps err_headers_out)."""
        from axkit.http.headers import Headers

        path, sep, query = location.partition("?")
        request.notes.setdefault(REDIRECTED_FROM, (request.raw_path, request.query, request.method))
        request.method = "HEAD" if request.head_only else "GET"
        request.raw_path = path
        request.query = query if sep else None
        request.headers = Headers(
            [(k, v) for k, v in request.headers if k not in ("content-length", "transfer-encoding")]
        )
        request.filename = None
        request.path_info = ""
        request.mime_type = None
        request.finfo = None
        request.handler = None
        request.status = 200
        request.response_headers = Headers(keep_fields)
        self._walk(request, ADMIT)

    def resolve(self, request):
        """Set the request's merged scope from its server and path, and the
        handler its SetHandler names."""
        server = request.server
        # (No <Location> sections: the server's own scope, without the call.)
        resolved = server.resolve(request.path) if server.locations else server.base
        conf = resolved.conf
        if resolved is not request.resolved:
            request.resolved = resolved
            request.conf = conf
            request.chains = resolved.chains
        handler = conf.set_handler
        if handler is not None:
            request.handler = handler or None
        if not conf.trace_hooks:
            return
        tracer = self.tracer(request)
        if tracer is not None:
            tracer.scope(request.server, resolved)

    def resolve_file(self, request):
        """Merge the <Files> sections matching the mapped file name."""
        resolved = request.server.resolve_file(request.resolved, request.filename)
        if resolved is not request.resolved:
            request.resolved = resolved
            request.conf = resolved.conf
            request.chains = resolved.chains
            handler = resolved.conf.set_handler
            if handler is not None:
                request.handler = handler or None
            tracer = self.tracer(request)
            if tracer is not None:
                tracer.scope(request.server, resolved)

    def _answer_in_core(self, request):
        if request.method == "TRACE":
            # TRACE echoes the request (cookies, credentials): off by default.
            request.response_headers.set("Allow", ALLOWED_DEFAULT)
            request.send_error(405, "TRACE is not allowed")
        elif request.method == "CONNECT":
            # CONNECT: this is not a proxy.
            request.keep_alive = False
            request.send_error(501, f"{request.method} is not implemented")
        else:
            # OPTIONS * asks about the server as a whole (RFC 9110 §9.3.7).
            request.response_headers.set("Allow", ALLOWED_DEFAULT)
            request.send(200)

    def _too_large(self, request, size, limit):
        log.info(
            "413 to {client}: {method} {target}: body of {length} bytes "
            "is over LimitRequestBody {limit}",
            client=request.client_address,
            method=request.method,
            target=request.target,
            length=size,
            limit=limit,
        )
        request.send_error(413, "request body larger than LimitRequestBody")

    def _nobody_answered(self, request):
        if request.method in ("GET", "HEAD"):
            request.send_error(404)
        elif request.method == "OPTIONS":
            request.response_headers.set("Allow", ALLOWED_DEFAULT)
            request.send(204)
        elif request.method in _KNOWN_METHODS:
            request.response_headers.set("Allow", ALLOWED_DEFAULT)
            request.send_error(405)
        else:
            request.send_error(501)

    def send_status(self, request, status):
        if 200 <= status < 300:
            request.send(status)
        elif status == 405 and "allow" not in request.response_headers:
            request.response_headers.set("Allow", ALLOWED_DEFAULT)
            request.send_error(405)
        else:
            request.send_error(status)

    def _plugin_failed(self, request, error):
        log.failure(
            "plugin {plugin} failed in hook_{hook} for {method} {target}",
            failure=error.failure,
            plugin=error.plugin_name,
            hook=error.hook,
            method=request.method,
            target=request.target,
            request=request,
        )
        request.error = error
        chain = request.chains.get("error") if request.chains else None
        if chain:
            try:
                result = run_chain(
                    chain, "error", (request, request.conf, error), self.tracer(request)
                )
                if isinstance(result, Deferred):
                    result.addErrback(lambda f: None)
                    result = DECLINED
            except PluginError as e2:
                log.failure(
                    "error hook of plugin {plugin} failed",
                    failure=e2.failure,
                    plugin=e2.plugin_name,
                )
                result = DECLINED
            if request.finished:
                return
        self._internal_error(request)

    def _internal_error(self, request):
        if request.finished:
            return
        if request.headers_sent:
            request.abort()
            return
        from axkit.http.headers import Headers

        request.response_headers = Headers()
        request.keep_alive = False
        try:
            request.send_error(500)
        except HeaderInjection:
            request.abort()

    # -- body and completion -----------------------------------------------------

    def body_data(self, request, data):
        chains = request.chains
        chain = chains["body_data"] if chains is not None else ()
        if chain:
            try:
                result = run_chain(
                    chain, "body_data", (request, request.conf, data), self.tracer(request)
                )
                if isinstance(result, Deferred):
                    result.addErrback(self._body_hook_failed, request)
            except PluginError as e:
                self._plugin_failed(request, e)

    def _body_hook_failed(self, failure, request):
        if failure.check(PluginError):
            self._plugin_failed(request, failure.value)

    def response_finished(self, request):
        chains = request.chains
        if chains is None:
            return
        chain = chains["response_sent"]
        if chain:
            conf = request.conf
            if len(chain) == 1 and not conf.trace_hooks:
                # One plugin, untraced (an access log): called right here,
                # answered as _run_simple answers a chain's result.
                try:
                    result = chain[0][1](request, conf)
                    cls = result.__class__
                    if result is None or cls is Code or cls is int and 100 <= result <= 599:
                        return
                    result = settle(chain, 0, "response_sent", (request, conf), result)
                except PluginError as e:
                    _log_plugin_error(e, "response_sent")
                    return
                except Exception:
                    _log_plugin_error(
                        PluginError(chain[0][0], "response_sent", Failure()), "response_sent"
                    )
                    return
                if is_deferred(result):
                    result.addErrback(_log_hook_failure, "response_sent")
                return
            self._run_simple(chain, "response_sent", (request, conf), request)

    def _connection_tracer(self, channel, server):
        """A tracer for connect/disconnect when the server's scope has TraceHooks On."""
        if not server.base.conf.trace_hooks:
            return None
        label = f"connection from {getattr(channel, 'peer_host', '?')}"
        return (
            HookTracer(None, label) if self.clock is None else HookTracer(None, label, self.clock)
        )

    def _run_simple(self, chain, hook, args, request, on_status=None, tracer=None):
        """Run an informational hook: failures are logged, never answered."""
        try:
            if tracer is None and request is not None:
                tracer = self.tracer(request)
            result = run_chain(chain, hook, args, tracer)
        except PluginError as e:
            _log_plugin_error(e, hook)
            return
        if result is DECLINED:
            return
        if isinstance(result, Deferred):
            result.addErrback(_log_hook_failure, hook)
        elif isinstance(result, int) and on_status is not None:
            on_status(result)


def _log_plugin_error(e, hook):
    log.failure(
        "plugin {plugin} failed in hook_{hook}", failure=e.failure, plugin=e.plugin_name, hook=hook
    )


def _log_hook_failure(failure, hook):
    e = failure.value
    log.failure(
        "plugin {plugin} failed in hook_{hook}", failure=e.failure, plugin=e.plugin_name, hook=hook
    )
