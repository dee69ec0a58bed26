"""The environ dict a WSGI application gets (PEP 3333 §"environ Variables").

Strings are native ``str`` holding bytes as latin-1 ("bytes-as-unicode"):
PATH_INFO and SCRIPT_NAME are the percent-decoded path's bytes (the engine
refuses paths that are not UTF-8, and has removed dot segments),
QUERY_STRING is as sent.  Request fields become ``HTTP_*`` as for CGI
(axkit.cgi.environ's naming: a name with ``_`` is dropped so it cannot
pose as another; Content-Type/-Length have their own variables), with
repeated fields joined; ``Authorization`` is passed (applications do their
own authentication) and hop-by-hop fields are not (RFC 9110 §7.6.1: they
describe this connection, which the application never sees).
"""

import sys
import threading

from axkit import SERVER_SOFTWARE
from axkit.cgi.environ import VARIABLE_NAMES, variable_name
from axkit.http.headers import HOP_BY_HOP as HEADERS_HOP_BY_HOP
from axkit.notes import ERROR_STATUS, REDIRECTED_FROM

# Hop-by-hop fields (RFC 9110 §7.6.1, RFC 9112): the server's business.
HOP_BY_HOP = HEADERS_HOP_BY_HOP

_PROTOCOLS = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0"}
_SERVER_NOTE = "wsgi.server"  # connection_notes: (Host, SERVER_NAME, SERVER_PORT)


def wire(text):
    """A str decoded from UTF-8 (the engine's path) as PEP 3333's latin-1 str."""
    return text if text.isascii() else text.encode("utf-8").decode("latin-1")


def mount_base(script_name, errors, file_wrapper, multiprocess=False):
    """The part of the environ that is the same for every request of a mount."""
    return {
        "SCRIPT_NAME": wire(script_name),
        "SERVER_SOFTWARE": SERVER_SOFTWARE,
        "wsgi.version": (1, 0),
        "wsgi.errors": errors,
        "wsgi.multithread": True,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": file_wrapper,
    }


def build_environ(request, base, path_info, wsgi_input):
    """The environ for ``request`` under a mount whose fixed part is ``base``."""
    env = base.copy()
    env["REQUEST_METHOD"] = request.method
    env["PATH_INFO"] = path_info if path_info.isascii() else wire(path_info)
    query = request.query
    env["QUERY_STRING"] = query or ""
    env["REQUEST_URI"] = request.target
    env["SERVER_PROTOCOL"] = _PROTOCOLS.get(request.version) or "HTTP/" + request.version
    env["REMOTE_ADDR"] = request.client_address
    port = request.client_port
    if port is not None:
        env["REMOTE_PORT"] = str(port)
    secure = request.secure
    env["wsgi.url_scheme"] = "https" if secure else "http"
    if secure:
        env["HTTPS"] = "on"
    env["wsgi.input"] = wsgi_input

    headers = request.headers
    drop = HOP_BY_HOP
    connection = None
    host = None
    var_names = VARIABLE_NAMES
    for name, value in headers:
        if name in drop:
            if name == "connection":
                connection = value if connection is None else f"{connection},{value}"
            continue
        var = var_names.get(name)
        if var is None:
            var = variable_name(name)
        if not var:
            continue
        if var == "HTTP_HOST":
            host = value
        old = env.get(var)
        if old is None:
            env[var] = value
        else:
            env[var] = old + ("; " if var == "HTTP_COOKIE" else ", ") + value
    if connection is not None:
        # Fields the client named in Connection are hop-by-hop too.
        named = _CONNECTION_NAMED.get(connection)
        if named is None:
            named = _connection_named(connection)
        for var in named:
            env.pop(var, None)
    if request.content_length is None and "CONTENT_LENGTH" in env:
        del env["CONTENT_LENGTH"]  # (a chunked body: read to its end)

    # SERVER_NAME and SERVER_PORT: the same for a connection's requests
    # unless its Host changes (kept per connection, by Host).
    notes = request.connection_notes
    known = notes.get(_SERVER_NOTE)
    if known is None or known[0] != host:
        known = notes[_SERVER_NOTE] = (host, *_server_name_port(request, host, secure))
    env["SERVER_NAME"] = known[1]
    env["SERVER_PORT"] = known[2]
    if request.user is not None:
        env["REMOTE_USER"] = request.user
    if request.auth_type is not None:
        env["AUTH_TYPE"] = request.auth_type
    notes = getattr(request, "notes", None)
    if notes and REDIRECTED_FROM in notes:
        # Answering an internal redirect (an ErrorDocument page): where it
        # came from, as Apache's subprocess_env (and so mod_wsgi) says it.
        path, query, method = notes[REDIRECTED_FROM]
        env["REDIRECT_URL"] = path
        if query is not None:
            env["REDIRECT_QUERY_STRING"] = query
        env["REDIRECT_REQUEST_METHOD"] = method
        status = notes.get(ERROR_STATUS)
        env["REDIRECT_STATUS"] = str(status if status is not None else 200)
    return env


# A Connection field's value -> the variables of the fields it names
# (clients send the same one or two: "keep-alive", "close"); bounded.
_CONNECTION_NAMED = {}
_CONNECTION_NAMED_MAX = 1024


def _connection_named(connection):
    named = []
    for token in connection.split(","):
        var = variable_name(token.strip().lower())
        if var and var[0] == "H" and var != "HTTP_HOST":
            named.append(var)
    named = tuple(named)
    if len(_CONNECTION_NAMED) < _CONNECTION_NAMED_MAX:
        _CONNECTION_NAMED[connection] = named
    return named


def _server_name_port(request, host, secure):
    """SERVER_NAME and SERVER_PORT: the Host the client used (as Apache's
    UseCanonicalName Off), else ServerName, else the local address; the
    port from Host, else the scheme's (with a Host), else the local port."""
    default = "443" if secure else "80"
    if host:
        if host.startswith("["):
            end = host.find("]")
            name, rest = host[: end + 1], host[end + 1 :]
            port = rest[1:] if rest.startswith(":") else ""
        else:
            name, _, port = host.partition(":")
        return name.lower().rstrip(".") or name, port if port.isdigit() else default
    server = request.server
    name = getattr(server, "name", None)
    local, port = request.local_address
    return name or local or "localhost", str(port) if port else default


class ErrorStream:
    """``wsgi.errors``: lines an application writes become log events
    (warn level, the mount named), logged from the reactor thread."""

    def __init__(self, mount, log, call):
        self.mount = mount
        self._log = log
        self._call = call  # runs a function on the reactor thread
        self._buffer = ""
        self._lock = threading.Lock()  # shared by the mount's threads

    def write(self, text):
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        with self._lock:
            self._buffer += text
            lines = None
            if "\n" in self._buffer:
                lines, _, self._buffer = self._buffer.rpartition("\n")
        if lines is not None:
            self._emit(lines)
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        with self._lock:
            text, self._buffer = self._buffer, ""
        if text:
            self._emit(text)

    def _emit(self, text):
        try:
            self._call(
                self._log.warn, "{mount}: {text}", mount=self.mount, text=text, plugin="wsgi"
            )
        except Exception:  # a stopped reactor: say it somewhere
            sys.stderr.write(f"{self.mount}: {text}\n")
