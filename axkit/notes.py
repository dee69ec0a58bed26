"""The keys of ``request.notes`` (and ``connection.notes``) that more than one
part of axkit reads or writes, each with who sets it, who reads it and
what it holds.

A note key is also public: an admin can log one (AccessLogFormat
``%{axkit.encoding}n``) and a third-party plugin may set or read one
(``axkit.error_headers`` is documented in docs/hooks.md).  So the values
never change; new keys shared between plugins go here.  A plugin's private
notes start with its own name (``greeting.who``, ``cgi.target``).
"""

# -- shared between plugins and the core (request.notes) ---------------------

ENCODING = "axkit.encoding"
"""The content coding chosen for a file: ``(coding, sibling, stat)`` for a
precompressed sibling (``"gzip"``/``"br"``, its path, its os.stat_result)
or ``("gzip", None, level)`` to compress on the fly.  Set by compress
(fixup), read by serve_file (response)."""

HEADER_OPS = "axkit.header_ops"
"""The scope's ``Header`` operations (a tuple of (action, name, value,
always)) already applied to ``request.response_headers``: set by headers
(fixup), read by its own add_handler_fields (see HANDLER_FIELDS), which
applies them again over a handler's own fields (mod_headers runs after the
handler)."""

HANDLER_FIELDS = "axkit.handler_fields"
"""A callable ``f(request, fields)`` that adds the fields a handler produced
after fixup (a CGI head, a WSGI start_response) with the scope's ``Header``
operations applied over them: set by headers (fixup) where the scope has
such operations, called by ``request.add_handler_fields`` (without it the
fields are simply added)."""

X_SENDFILE = "axkit.x_sendfile"
"""A callable ``f(request, fields)`` that, when the fields a handler
produced hold an ``X-Sendfile`` field, answers the request with that file
(or a 404) and returns True, else returns False: set by proxy (fixup)
where ``XSendFile On`` (axkit.proxy.xsendfile), called first by
``request.add_handler_fields``, which then returns False to tell the
handler that its answer was taken (its body is to be dropped)."""

ERROR_HEADERS = "axkit.error_headers"
"""A callable ``f(headers)`` adding fields to any error page the core sends
for the request (``Header always`` lines): set by headers
(post_read_request), called by axkit.http.request's send_error."""

ERROR_DOCUMENT = "axkit.error_document"
"""A callable ``f(request, status, detail)`` that answers an error the core
is about to send with a page of the admin's own (``ErrorDocument``) and
returns True, or returns False to let the core send its own page: set by
error_document (pre_request, post_read_request), called by
axkit.http.request's send_error after the error page's fields are chosen
(see ERROR_HEADERS).  It must answer (send, or redirect internally) when it
returns True."""

ERROR_STATUS = "axkit.error_status"
"""The status (int) of the error an ``ErrorDocument`` page is being served
for, set by error_document before its internal redirect to the page.  Read
by the core (a page answered 200 goes out with this status instead, as
Apache serves it), by axkit.cgi.environ and axkit.wsgi.environ
(``REDIRECT_STATUS``), and by error_document itself (an error while serving
the page gets the core's plain page for the first error: no loop)."""

TRACE = "axkit.trace"
"""The request's axkit.trace.HookTracer when its scope has ``TraceHooks
On``: made and read by axkit.pipeline (a tracer per request, kept across an
internal redirect)."""

REDIRECTED_FROM = "redirected_from"
"""``(raw_path, query, method)`` of the request as first asked, before the
first internal redirect (a CGI local redirect): set by axkit.pipeline's
internal_redirect, read by axkit.cgi.environ (``REDIRECT_URL``,
``REDIRECT_QUERY_STRING``, ``REDIRECT_REQUEST_METHOD``).  Without the
``axkit.`` prefix: older than this module, and possibly logged."""

# -- one plugin's own, listed so nothing else takes the name ------------------

CGI_TARGET = "cgi.target"
"""(request.notes) The cgi plugin's ScriptAlias mapping of the request
(axkit.cgi.mapping.Target), from uri_translation to response."""

CGI_REDIRECTS = "cgi.redirects"
"""(request.notes) How many CGI local redirects this request has followed
(axkit.cgi.run refuses a loop past its limit)."""

CGI_CONNECTION_ENV = "cgi.env"
"""(connection.notes) The part of a CGI environment that depends only on the
connection, built once per connection (axkit.cgi.environ)."""
