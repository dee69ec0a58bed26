"""The HTTP connection scope of a request (ASGI 3, HTTP spec 2.4)."""

ASGI = {"version": "3.0", "spec_version": "2.4"}


def build_scope(request, root_path, state):
    """The ``http`` scope for ``request`` under the mount ``root_path``.

    ``path`` is the whole decoded path (``root_path`` included, as uvicorn
    and the current spec have it: an app strips its root_path itself),
    ``raw_path`` and ``query_string`` the bytes as sent; header names are
    lower-case bytes, in arrival order, repeats kept."""
    query = request.query
    notes = request.connection_notes
    where = notes.get("asgi.server")  # the listening socket's (host, port), scheme
    if where is None:
        where = notes["asgi.server"] = (
            request.local_address,
            "https" if request.secure else "http",
        )
    return {
        "type": "http",
        "asgi": ASGI,
        "http_version": request.version,
        "method": request.method,
        "scheme": where[1],
        "path": request.path,
        "raw_path": request.raw_path.encode("latin-1"),
        "query_string": query.encode("latin-1") if query else b"",
        "root_path": root_path,
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in request.headers],
        "client": (request.client_address, request.client_port),
        "server": where[0],
        # Each request gets a shallow copy of what lifespan startup stored.
        "state": state.copy() if state is not None else {},
        "extensions": {},
    }
