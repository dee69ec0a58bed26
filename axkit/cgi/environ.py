"""The meta-variables a CGI script sees (RFC 3875 §4.1), and nothing else.

The environment starts empty: the server's own is never inherited; only
PassEnv copies named variables from it.  A variable with no value is left
out, not set empty, where §4.1 says so (CONTENT_LENGTH, CONTENT_TYPE,
PATH_INFO, PATH_TRANSLATED, AUTH_TYPE, REMOTE_USER); QUERY_STRING is
always set, empty when the URL has no query (§4.1.7).
"""

import os

from axkit import SERVER_SOFTWARE
from axkit.notes import CGI_CONNECTION_ENV, ERROR_STATUS, REDIRECTED_FROM

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"

# Request headers that are not turned into HTTP_* variables:
# Content-Length/-Type have their own variables (§4.1.2, §4.1.3); Proxy is
# the "httpoxy" hole (a client setting HTTP_PROXY for the script's HTTP
# library); Authorization carries credentials (§4.1.18) unless CGIPassAuth;
# Transfer-Encoding describes framing the script never sees (a chunked body
# reaches it de-chunked, with CONTENT_LENGTH).
_SKIP = frozenset(("content-length", "content-type", "proxy", "transfer-encoding"))
_NAME_OK = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")

# Fields with variables of their own (§4.1.2, §4.1.3).
_OWN = {"content-length": "CONTENT_LENGTH", "content-type": "CONTENT_TYPE"}

_PROTOCOLS = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0"}

# Header name -> variable name ("" for none), cached (the set of names seen
# is small).
VARIABLE_NAMES = {}


def variable_name(name):
    """The meta-variable for request field ``name`` (lower-case): HTTP_*, one
    of CONTENT_LENGTH/CONTENT_TYPE, or "" for none (RFC 3875 §4.1.18; a WSGI
    environ names fields the same way, PEP 3333).  VARIABLE_NAMES caches it."""
    var = VARIABLE_NAMES.get(name)
    if var is None:
        # A name with anything but letters, digits and '-' (an underscore, say)
        # could pose as another header once '-' becomes '_': dropped, as Apache does.
        if name in _OWN:
            var = _OWN[name]
        elif name in _SKIP or not set(name) <= _NAME_OK:
            var = ""
        else:
            var = "HTTP_" + name.upper().replace("-", "_")
        if len(VARIABLE_NAMES) < 2048:
            VARIABLE_NAMES[name] = var
    return var


class ScopeEnv:
    """The per-scope part of the environment, computed once per merged config."""

    __slots__ = ("base", "unset", "pass_auth")

    def __init__(self, conf):
        base = {
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_SOFTWARE": SERVER_SOFTWARE,
            "PATH": conf.cgi_path or DEFAULT_PATH,
            "DOCUMENT_ROOT": conf.document_root,
            "REDIRECT_STATUS": "200",
        }  # php-cgi refuses to run without it
        extra = {}
        for name in flat(conf.pass_env):
            value = os.environ.get(name)
            if value is not None:
                extra[name] = value
        extra.update(conf.set_env)
        unset = frozenset(flat(conf.unset_env))
        for name in unset:
            extra.pop(name, None)
        # The protocol's own variables win over SetEnv (a config cannot fake
        # REMOTE_ADDR by accident); SetEnv may still set PATH.
        if "PATH" in extra:
            base["PATH"] = extra.pop("PATH")
        extra.update(base)
        if "PATH" in unset:
            extra.pop("PATH")
        self.base = extra
        self.unset = unset
        self.pass_auth = conf.cgi_pass_auth


# Fields that carry the client's credentials: passed only with CGIPassAuth
# (as Apache; RFC 3875 §4.1.18 says they should be left out).
_CREDENTIALS = frozenset(("HTTP_AUTHORIZATION", "HTTP_PROXY_AUTHORIZATION"))


def _wire(value):
    """A value taken from the request as the client's bytes.

    The engine decodes the wire as latin-1; encoding it back gives the program
    exactly the bytes sent (a str would be re-encoded as UTF-8 on its way into
    the environment).  ASCII, the common case, stays a str.
    """
    return value if value.isascii() else value.encode("latin-1")


def flat(occurrences):
    """Names from an APPEND directive whose occurrences each list several."""
    for names in occurrences:
        if isinstance(names, str):
            yield names
        else:
            yield from names


def build_environ(request, scope_env, script, script_name, path_info):
    """The environment for running ``script`` for ``request``."""
    env = dict(scope_env.base)
    # The connection's own variables, worked out once per connection.
    notes = request.connection_notes
    conn_env = notes.get(CGI_CONNECTION_ENV)
    if conn_env is None:
        conn_env = notes[CGI_CONNECTION_ENV] = _connection_env(request)
    env.update(conn_env)
    addr = request.client_address
    if addr != conn_env["REMOTE_ADDR"]:
        # Set per request (remoteip): a front end's connection carries
        # the requests of many clients.
        env["REMOTE_ADDR"] = env["REMOTE_HOST"] = addr

    # One pass over the fields: §4.1.18's HTTP_* (one per field name,
    # repeated fields joined), CONTENT_LENGTH and CONTENT_TYPE (§4.1.2-3),
    # and the Host the client used (SERVER_NAME).
    host = own = None
    pass_auth = scope_env.pass_auth
    var_names = VARIABLE_NAMES
    # Apart from env: a field replaces a SetEnv of the same HTTP_* name (as
    # in Apache), only its own repetitions are joined.
    fields = {}
    for name, value in request.headers:
        var = var_names.get(name)
        if var is None:
            var = variable_name(name)
        if not var:
            continue
        if var[0] != "H":
            # CONTENT_LENGTH or CONTENT_TYPE: set apart (they override a
            # SetEnv of the same name; repeated fields are joined).
            if own is None:
                own = {var: value}
            else:
                old = own.get(var)
                own[var] = value if old is None else f"{old}, {value}"
            continue
        if var == "HTTP_HOST":
            host = value
        elif var in _CREDENTIALS and not pass_auth:
            continue
        old = fields.get(var)
        if old is None:
            fields[var] = value if value.isascii() else value.encode("latin-1")
        else:
            sep = "; " if var == "HTTP_COOKIE" else ", "
            if isinstance(old, bytes):
                fields[var] = old + sep.encode() + value.encode("latin-1")
            else:
                fields[var] = _wire(old + sep + value)
    env.update(fields)
    if own is not None:
        for var, value in own.items():
            env[var] = _wire(value)

    if path_info:
        env["PATH_INFO"] = path_info
        env["PATH_TRANSLATED"] = (
            env["DOCUMENT_ROOT"].rstrip("/") + path_info if "DOCUMENT_ROOT" in env else path_info
        )
    query = request.query
    env["QUERY_STRING"] = (query if query.isascii() else query.encode("latin-1")) if query else ""
    if request.user is not None:
        env["REMOTE_USER"] = request.user
    if request.auth_type is not None:
        env["AUTH_TYPE"] = request.auth_type
    env["REQUEST_METHOD"] = request.method
    env["REQUEST_URI"] = _wire(request.target)
    env["SCRIPT_NAME"] = script_name
    redirected = request.notes.get(REDIRECTED_FROM) if hasattr(request, "notes") else None
    if redirected is not None:
        # Answering a local redirect: where it came from, as Apache says it.
        env["REDIRECT_URL"] = _wire(redirected[0])
        if redirected[1] is not None:
            env["REDIRECT_QUERY_STRING"] = _wire(redirected[1])
        env["REDIRECT_REQUEST_METHOD"] = redirected[2]
        status = request.notes.get(ERROR_STATUS)
        if status is not None:
            env["REDIRECT_STATUS"] = str(status)  # an ErrorDocument page's error
    env["SCRIPT_FILENAME"] = script
    env["SERVER_PROTOCOL"] = _PROTOCOLS.get(request.version) or "HTTP/" + request.version
    env["SERVER_NAME"] = _wire(_server_name(request, host, conn_env.get("SERVER_ADDR")))
    unset = scope_env.unset
    if unset:
        for name in unset:
            env.pop(name, None)
    return env


def _connection_env(request):
    """REMOTE_*, SERVER_ADDR/PORT, REQUEST_SCHEME and HTTPS: the same for
    every request on a connection."""
    addr = request.client_address
    env = {
        "REMOTE_ADDR": addr,
        "REMOTE_HOST": addr,
    }  # §4.1.9: the address when no name is looked up
    if request.client_port is not None:
        env["REMOTE_PORT"] = str(request.client_port)
    local_addr, local_port = request.local_address
    if local_addr is not None:
        env["SERVER_ADDR"] = local_addr
    if local_port is not None:
        env["SERVER_PORT"] = str(local_port)
    if request.secure:
        env["HTTPS"] = "on"
        env["REQUEST_SCHEME"] = "https"
    else:
        env["REQUEST_SCHEME"] = "http"
    return env


def _server_name(request, host, local_addr):
    # As Apache with UseCanonicalName Off: the name the client used (the Host
    # header without its port), else ServerName, else the local address.
    if host:
        if host.startswith("["):
            return (host[: host.find("]") + 1] or host).lower()
        name = host.rpartition(":")[0] if ":" in host else host
        # As Apache and lighttpd give it: lower-case, no trailing dot.
        return name.lower().rstrip(".") or name
    server = request.server
    name = getattr(server, "name", None) if server is not None else None
    return name or local_addr or "localhost"


def search_argv(query):
    """§4.4: an "indexed" query (no unencoded '=') becomes command-line words."""
    if not query or "=" in query:
        return []
    from urllib.parse import unquote

    words = [unquote(w) for w in query.split("+")]
    if any("\x00" in w for w in words):
        return []
    return words
