"""Drive one request through the hooks (the handler behind every listener).

Order, per request: ``pre_request`` (the server's own scope, before the
request's <Location>s are known: a plugin may still rewrite the path), then
the scope is resolved, ``post_read_request``, then the phases from
``uri_translation`` to ``response``; ``response_sent`` when the response is
complete, whatever produced it.  ``body_data`` fires for each piece of the
request body as it arrives, alongside the phases (which start as soon as the
head is read, so a response plugin can stream the body).
"""

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from axkit.hooks import (DECLINED, DONE, OK, REQUEST_PHASES, Code, PluginError, is_deferred,
                          run_chain, settle)
from axkit.http.limits import Limits
from axkit.http.request import FINISHED, BadTarget, HeaderInjection, normalize_path
from axkit.trace import HookTracer
from axkit.vhosts import VirtualHosts

log = Logger(namespace="axkit.pipeline")

LAST_PHASE = len(REQUEST_PHASES) - 1

ALLOWED_DEFAULT = "GET, HEAD, OPTIONS"
# Methods answered by the core before any plugin sees them.
_REFUSED_METHODS = frozenset(("TRACE", "CONNECT"))
# Methods of RFC 9110 and RFC 5789 (PATCH): a resource nobody serves with
# them is 405 with Allow; any other method nobody handles is 501.
_KNOWN_METHODS = frozenset(("POST", "PUT", "DELETE", "PATCH"))


class Pipeline:
    """The request handler for one listening endpoint."""

    def __init__(self, holder, endpoint):
        self.holder = holder          # ConfigHolder: .config is the live SiteConfig
        self.endpoint = endpoint
        self._config = None
        self._vhosts = None
        self._limits = None
        self.clock = None             # trace timer; None: time.perf_counter

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
            self._run_simple(chain, "connect", (channel, server.base.conf), None,
                             on_status=lambda status: channel.protocol_error(
                                 status, "refused by a connect hook"),
                             tracer=self._connection_tracer(channel, server))

    def connection_lost(self, channel, reason):
        server = channel.server
        if server is not None:
            chain = server.base.chains["disconnect"]
            if chain:
                self._run_simple(chain, "disconnect", (channel, server.base.conf), None,
                                 tracer=self._connection_tracer(channel, server))

    def protocol_error(self, channel, status, detail):
        log.info("{status} to {client}: {detail}", status=status,
                 client=channel.peer_host, detail=detail)

    # -- a request ------------------------------------------------------------

    def handle(self, request):
        vhosts = self._vhosts if self.holder.config is self._config else self._current()
        server = vhosts.select(request)
        base = server.base
        request.server = server
        request.resolved = base
        request.conf = base.conf
        request.chains = base.chains
        try:
            chain = base.chains["pre_request"]
            if chain:
                result = run_chain(chain, "pre_request", (request, request.conf),
                                   self.tracer(request))
                if result is not DECLINED:
                    return self._after_phase(request, result, -2)
            return self._resolve_and_continue(request)
        except PluginError as e:
            self._plugin_failed(request, e)
        except Exception:
            log.failure("internal error handling {request}", request=request)
            self._internal_error(request)

    def _resolve_and_continue(self, request):
        method = request.method
        if method in _REFUSED_METHODS:
            return self._refuse_method(request)
        if request.raw_path == "*":
            # OPTIONS * asks about the server as a whole (RFC 9110 §9.3.7).
            request.response_headers.set("Allow", ALLOWED_DEFAULT)
            request.send(200)
            return
        try:
            request.path = normalize_path(request.raw_path)
        except BadTarget as e:
            request.send_error(400, str(e))
            return
        self.resolve(request)
        conf = request.conf
        limit = conf.limit_request_body
        request.body_limit = limit
        # The announced length, or (chunked) what arrived with the head.
        size = request.content_length
        if size is None:
            size = request.body_length
        if limit and size > limit:
            log.info("413 to {client}: {method} {target}: body of {length} bytes "
                     "is over LimitRequestBody {limit}", client=request.client_address,
                     method=method, target=request.target, length=size, limit=limit)
            request.send_error(413, "request body larger than LimitRequestBody")
            return
        if request.chains["body_data"] and not request.body_complete:
            # A body_data plugin reads the body as it arrives: time for 100.
            request.channel.want_body(request)
        chain = request.chains["post_read_request"]
        if chain:
            result = run_chain(chain, "post_read_request", (request, request.conf),
                               self.tracer(request))
            if result is not DECLINED:
                return self._after_phase(request, result, -1)
        self._run_phases(request, 0)

    def tracer(self, request):
        """The request's HookTracer when its scope has TraceHooks On, else None."""
        conf = request.conf
        if conf is None or not conf.trace_hooks:
            return None
        return self._tracer(request)

    def _tracer(self, request):
        tracer = request.notes.get("axkit.trace")
        if tracer is None:
            label = f"{request.method} {request.target}"
            tracer = HookTracer(request, label) if self.clock is None else \
                HookTracer(request, label, self.clock)
            request.notes["axkit.trace"] = tracer
        return tracer

    def internal_redirect(self, request, location):
        """Answer ``request`` as a GET of ``location`` (a local path with an
        optional query) through the phases again -- Apache's internal
        redirect, used for a CGI local redirect (RFC 3875 §6.2.2).  The
        request headers are kept minus those of its body; HEAD stays HEAD;
        nothing of the first answer's head survives.  ``request.target``
        stays the request line's (the access log shows what the client
        asked; Apache's REQUEST_URI does the same)."""
        from axkit.http.headers import Headers
        path, sep, query = location.partition("?")
        request.notes.setdefault("redirected_from",
                                 (request.raw_path, request.query, request.method))
        request.method = "HEAD" if request.head_only else "GET"
        request.raw_path = path
        request.query = query if sep else None
        request.headers = Headers([(k, v) for k, v in request.headers
                                   if k not in ("content-length", "transfer-encoding")])
        request.filename = None
        request.path_info = ""
        request.mime_type = None
        request.finfo = None
        request.handler = None
        request.status = 200
        request.response_headers = Headers()
        try:
            self._resolve_and_continue(request)
        except PluginError as e:
            self._plugin_failed(request, e)
        except Exception:
            log.failure("internal error handling {request}", request=request)
            self._internal_error(request)

    def resolve(self, request):
        """Set the request's merged scope from its server and path."""
        resolved = request.server.resolve(request.path)
        if resolved is not request.resolved:
            request.resolved = resolved
            request.conf = resolved.conf
            request.chains = resolved.chains
        elif not resolved.conf.trace_hooks:
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
            tracer = self.tracer(request)
            if tracer is not None:
                tracer.scope(request.server, resolved)

    def _run_phases(self, request, index, files_step=None):
        """Run the phases from ``index`` on.  Only the phases some plugin
        hooks in the request's scope are visited (``Resolved.next_phase``);
        between uri_translation and the rest (``files_step``: still to come,
        by default when starting from it), the <Files> sections matching the
        mapped file apply (which may change the scope and its plan)."""
        if files_step is None:
            files_step = index == 0
        while True:
            step = request.resolved.next_phase[index]
            if files_step and (step is None or step[0] > 0):
                # uri_translation is over: the <Files> sections matching the
                # mapped file apply from here on (their scope, their plan).
                files_step = False
                if request.filename is not None and request.server.files:
                    self.resolve_file(request)
                    step = request.resolved.next_phase[max(index, 1)]
            if step is None:
                # Past the last phase with plugins: nobody answered.
                self._after_phase(request, DECLINED, LAST_PHASE)
                return
            index, phase, chain, method = step
            if request.state == FINISHED:
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
                elif result.__class__ is not Code and (
                        result.__class__ is not int or not 100 <= result <= 599):
                    result = settle(chain, 0, phase, (request, conf), result)
            else:
                result = run_chain(chain, phase, (request, conf),
                                   self._tracer(request) if conf.trace_hooks else None)
            if result is DECLINED or (result is OK and index != LAST_PHASE):
                index += 1
                continue
            if result is DONE and request.state == FINISHED:
                return
            if not self._after_phase(request, result, index):
                return
            index += 1

    def _resumed(self, result, request, index):
        try:
            if request.aborted:
                return
            if index < 0:
                if result is DECLINED:
                    if index == -2:
                        return self._resolve_and_continue(request)
                    return self._run_phases(request, 0)
                return self._after_phase(request, result, index)
            if result is not DECLINED or index == LAST_PHASE:
                if not self._after_phase(request, result, index):
                    return
            self._run_phases(request, index + 1, files_step=index == 0)
        except PluginError as e:
            self._plugin_failed(request, e)
        except Exception:
            log.failure("internal error handling {request}", request=request)
            self._internal_error(request)

    def _failed_later(self, failure, request):
        if failure.check(PluginError):
            self._plugin_failed(request, failure.value)
        else:
            log.failure("internal error handling {request}", failure=failure,
                        request=request)
            self._internal_error(request)

    def _after_phase(self, request, result, index):
        """Act on a phase's result; True to go on with the next phase."""
        if is_deferred(result):
            result.addCallbacks(self._resumed, self._failed_later,
                                callbackArgs=(request, index), errbackArgs=(request,))
            return False
        phase = REQUEST_PHASES[index] if index >= 0 else None
        if result is OK:
            if phase == "response":
                return False      # the plugin answers (now or later)
            if index < 0:
                # OK from pre/post_read_request: carry on with the phases.
                if index == -2:
                    self._resolve_and_continue(request)
                else:
                    self._run_phases(request, 0)
                return False
            return True
        if result is DONE:
            if not request.finished and not request.headers_sent:
                # The plugin claims it answered but sent nothing.
                log.error("plugin returned DONE in hook_{phase} without responding "
                          "to {request}", phase=phase or "pre_request", request=request)
                request.send_error(500)
            return False
        if result is DECLINED:
            # Only the response phase ends here: nobody produced a response.
            if not request.finished and not request.headers_sent:
                self._nobody_answered(request)
            return False
        # An HTTP status.
        if not request.finished:
            self.send_status(request, result)
        return False

    def _refuse_method(self, request):
        if request.method == "TRACE":
            # TRACE echoes the request (cookies, credentials): off by default.
            request.response_headers.set("Allow", ALLOWED_DEFAULT)
            request.send_error(405, "TRACE is not allowed")
        else:
            # CONNECT: this is not a proxy.
            request.keep_alive = False
            request.send_error(501, f"{request.method} is not implemented")

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
        log.failure("plugin {plugin} failed in hook_{hook} for {method} {target}",
                    failure=error.failure, plugin=error.plugin_name, hook=error.hook,
                    method=request.method, target=request.target, request=request)
        request.error = error
        chain = request.chains.get("error") if request.chains else None
        if chain:
            try:
                result = run_chain(chain, "error", (request, request.conf, error),
                                   self.tracer(request))
                if isinstance(result, Deferred):
                    result.addErrback(lambda f: None)
                    result = DECLINED
            except PluginError as e2:
                log.failure("error hook of plugin {plugin} failed", failure=e2.failure,
                            plugin=e2.plugin_name)
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
                result = run_chain(chain, "body_data", (request, request.conf, data),
                                   self.tracer(request))
                if isinstance(result, Deferred):
                    result.addErrback(self._body_hook_failed, request)
            except PluginError as e:
                self._plugin_failed(request, e)

    def _body_hook_failed(self, failure, request):
        if failure.check(PluginError):
            self._plugin_failed(request, failure.value)

    def body_done(self, request):
        pass

    def response_finished(self, request):
        chains = request.chains
        if chains is None:
            return
        chain = chains["response_sent"]
        if chain:
            self._run_simple(chain, "response_sent", (request, request.conf), request)

    def _connection_tracer(self, channel, server):
        """A tracer for connect/disconnect when the server's scope has TraceHooks On."""
        if not server.base.conf.trace_hooks:
            return None
        label = f"connection from {getattr(channel, 'peer_host', '?')}"
        return HookTracer(None, label) if self.clock is None else \
            HookTracer(None, label, self.clock)

    def _run_simple(self, chain, hook, args, request, on_status=None, tracer=None):
        """Run an informational hook: failures are logged, never answered."""
        try:
            if tracer is None and request is not None:
                tracer = self.tracer(request)
            result = run_chain(chain, hook, args, tracer)
        except PluginError as e:
            log.failure("plugin {plugin} failed in hook_{hook}", failure=e.failure,
                        plugin=e.plugin_name, hook=hook)
            return
        if result is DECLINED:
            return
        if isinstance(result, Deferred):
            result.addErrback(_log_hook_failure, hook)
        elif isinstance(result, int) and on_status is not None:
            on_status(result)


def _log_hook_failure(failure, hook):
    e = failure.value
    log.failure("plugin {plugin} failed in hook_{hook}", failure=e.failure,
                plugin=e.plugin_name, hook=hook)
