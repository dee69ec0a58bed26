"""The contracts between the core and plugins (zope.interface).

`IAxKitPlugin` names everything the core looks up on a plugin; most of it is
optional (tagged `OPTIONAL`), and axkit.discovery checks a plugin against it
when a config loads it.  `IRequestHandler` names what the HTTP engine
(axkit.http.connection) calls on its handler, the Pipeline.
"""

from zope.interface import Attribute, Interface

# The tagged value marking an element of IAxKitPlugin a plugin may leave out.
OPTIONAL = "axkit.optional"


class IAxKitPlugin(Interface):
    """A request-phase plugin.

    A plugin is a plain class (declaring this interface is welcome, not
    needed) with a ``name`` and any of the optional elements below: the
    ``hook_<phase>`` methods it takes part in, ``directives`` it adds to the
    config language, ``run_before``, ``wants_hook``, ``flush``.  One instance
    is created per loaded configuration (``cls()``, no arguments) and shared
    by every scope and request that loads it: per-request state goes in
    ``request.notes``.  axkit.discovery refuses, with the config's
    ``file:line``, a plugin that lacks ``name``, has a ``hook_`` method that
    is no hook, or an element of the wrong shape.
    """

    name = Attribute(
        "Required.  A non-empty str: what a `Plugin` line says to load it, "
        "what `run_before` lists and what logs and traces call it."
    )

    directives = Attribute(
        "Optional (none when left out).  A list or tuple of "
        "axkit.config.Directive: the directives this plugin adds to the "
        "config language, registered when a config loads it."
    )

    run_before = Attribute(
        "Optional.  A tuple of plugin names: in every chain this plugin is "
        "moved ahead of the first of those loaded before it, whatever the "
        "order of the Plugin lines (axkit.config.scopes.order_plugins)."
    )

    def wants_hook(hook, conf):
        """Optional.  False leaves ``hook_<hook>`` out of the chains of a scope
        (``conf``: its merged values) where the plugin has nothing to do, so
        a phase no other plugin takes is not visited at all.  Asked once per
        scope and hook when the config loads (axkit.config.scopes.Resolved)."""

    def flush():
        """Optional.  Write out what the plugin buffers (an access log):
        called when the config it belongs to is replaced by a reload and
        when the server stops (axkit.server)."""

    def startup(config, reactor):
        """Optional.  Called once before anything listens (and on a SIGHUP
        reload, before the new config is swapped in), with the SiteConfig
        and the reactor: an application's start (an ASGI lifespan startup).
        Raising stops the server with the error (axkit.server)."""

    def check_config(conf):
        """Optional.  Called once per server when the config loads, with that
        server's merged values, after every line is read: checks that tie
        one directive to another (a ProxyPass naming a <Proxy> section).
        Raises axkit.config.ConfigError (located at its line) to refuse
        the config, as a bad line is refused (axkit.config.loader)."""

    def descriptors_reserved(conf):
        """Optional.  File descriptors the plugin may hold open at once
        beside the client connections, given the global merged values (CGI:
        a few pipes per program running); the server keeps that many below
        its open-file limit when it sizes MaxConnections (axkit.listening)."""

    def shutdown():
        """Optional.  Called at SIGTERM once in-flight requests have ended;
        may return a Deferred the server waits for (an ASGI lifespan
        shutdown)."""

    # The hooks (docs/hooks.md), each optional; their order is
    # axkit.hooks.HOOKS.  A result is DECLINED, OK, DONE, an HTTP status or a
    # Deferred firing with one of these.

    def hook_connect(connection, conf):
        """A client connected (the listener's default server scope); a status
        refuses it."""

    def hook_pre_request(request, conf):
        """A request head is read; its <Server> is chosen, its <Location>s
        not yet applied."""

    def hook_post_read_request(request, conf):
        """The request's scope is resolved (Server, Locations)."""

    def hook_body_data(request, conf, data):
        """One piece of the request body, as it arrives."""

    def hook_uri_translation(request, conf):
        """Map the URL to a resource (request.filename, request.path_info)."""

    def hook_mime_map(request, conf):
        """Set request.mime_type (and request.handler)."""

    def hook_access_control(request, conf):
        """Allow or deny by client, method, ..."""

    def hook_authentication(request, conf):
        """Who is the client (request.user)."""

    def hook_authorization(request, conf):
        """May they do this."""

    def hook_fixup(request, conf):
        """Last changes before the response."""

    def hook_xmlresponse(request, conf):
        """Produce or transform an XML response."""

    def hook_response(request, conf):
        """Send the response."""

    def hook_response_sent(request, conf):
        """The response is complete or was cut (every response)."""

    def hook_disconnect(connection, conf):
        """The connection closed (every connection)."""

    def hook_error(request, conf, error):
        """A plugin raised (error: axkit.hooks.PluginError)."""

    def hook_logging(event, conf):
        """A log event of the server (a twisted.logger event dict)."""


for _name in IAxKitPlugin.names():
    if _name != "name":
        IAxKitPlugin[_name].setTaggedValue(OPTIONAL, True)
del _name


class IRequestHandler(Interface):
    """What the HTTP engine (axkit.http.connection.HTTPConnection) calls on
    its handler -- axkit.pipeline.Pipeline, one per listening endpoint.

    Not to be confused with a request's response handler
    (``request.handler``, Apache's r->handler).  Every call is made on the
    reactor thread; none may raise into the engine.
    """

    def limits():
        """The axkit.http.limits.Limits for a new connection (from the live
        config's default server of this endpoint)."""

    def connection_made(channel):
        """A client connected (runs the connect hook; may refuse it)."""

    def connection_lost(channel, reason):
        """The connection closed, however (runs the disconnect hook)."""

    def protocol_error(channel, status, detail):
        """The engine refused bad input with ``status`` and is closing."""

    def handle(request):
        """A request head is complete and its turn has come: answer it."""

    def body_data(request, data):
        """A piece of ``request``'s body has arrived (runs body_data)."""

    def response_finished(request):
        """``request``'s response is complete or was cut (runs response_sent)."""

    def internal_redirect(request, location, keep_fields=()):
        """Answer ``request`` as a GET of the local ``location`` (path and
        optional query) through the phases again (a CGI local redirect, an
        ErrorDocument page), with ``keep_fields`` (name, value pairs) as the
        response fields it starts with."""

    def resolve_file(request):
        """Merge the <Files> sections matching ``request.filename`` into its
        scope."""


class IAxKitPluginInfo(Interface):
    """What a `twisted/plugins/` dropin publishes for one axkit plugin.

    It must be cheap to import: ``load()`` imports the real class lazily.
    """

    name = Attribute("The name used on a `Plugin` line.")
    description = Attribute("One line saying what the plugin does.")
    module = Attribute("Dotted path 'package.module.Class' of the plugin.")

    def load():
        """Import and return the plugin class."""
