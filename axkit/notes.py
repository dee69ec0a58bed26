"""Keys of ``request.notes`` that more than one module reads or writes.

A plugin's private notes keep their own names (``cgi.target``); a note one
plugin leaves for another, or for the core, is named here, once.
"""

# (coding, sibling path or None, sibling stat or gzip level): the
# representation the compress plugin chose; serve_file sends it.
ENCODING = "axkit.encoding"

# The headers plugin's Header operations for this request, applied over the
# fields a handler produces after fixup (a CGI head, a WSGI start_response).
HEADER_OPS = "axkit.header_ops"

# A callable(request, fields): how ``request.add_handler_fields`` adds a
# handler's own fields (the headers plugin sets it where it has operations;
# without it, the fields are simply added).
HANDLER_FIELDS = "axkit.handler_fields"

# A callable(headers): decorates the headers of an error page (the headers
# plugin's ``Header always``, Apache's err_headers_out).
ERROR_HEADERS = "axkit.error_headers"

# The request's HookTracer (TraceHooks On).
TRACE = "axkit.trace"

# (raw path, query, method) of the request before its first internal
# redirect (REDIRECT_URL, REDIRECT_QUERY_STRING ... for CGI).
REDIRECTED_FROM = "redirected_from"
