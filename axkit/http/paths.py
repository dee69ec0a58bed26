"""URL paths: decoding and normalising a request's path, and the folder
redirect (RFC 3986 §5.2.4; Apache's mod_dir)."""

import re
from typing import Any
from urllib.parse import quote, unquote_to_bytes

_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


class BadTarget(Exception):
    """The request target cannot be mapped to a path (400)."""


def normalize_path(raw_path: str) -> str:
    """Percent-decode a URL path and remove dot segments (RFC 3986 §5.2.4).

    Raises BadTarget for a NUL, an invalid UTF-8 sequence, or ``..``
    climbing above the root.  Returns the decoded, normalised path.
    """
    if "%" in raw_path:
        if _BAD_PERCENT.search(raw_path) is not None:
            raise BadTarget("malformed percent-encoding in path")
        decoded = unquote_to_bytes(raw_path)
        try:
            path = decoded.decode("utf-8")
        except UnicodeDecodeError:
            raise BadTarget("path is not valid UTF-8")
    else:
        path = raw_path
    if "\x00" in path:
        raise BadTarget("NUL in path")
    if not path.startswith("/"):
        raise BadTarget("path must start with '/'")
    if "/." not in path and "//" not in path:
        return path
    out: list[str] = []
    segments = path.split("/")
    for seg in segments[1:]:
        if seg == "..":
            if not out:
                raise BadTarget("path climbs above the root")
            out.pop()
        elif seg == "." or seg == "":
            continue
        else:
            out.append(seg)
    trailing = segments[-1] in ("", ".", "..") and len(segments) > 1
    result = "/" + "/".join(out)
    if trailing and out:
        result += "/"
    return result


def slash_redirect(request: Any) -> int:
    """Answer a folder named without its trailing slash: 301 to the URL
    with it, query kept (Apache's mod_dir).  Returns the status."""
    location = quote(request.path, safe="/:@!$&'()*+,;=~") + "/"
    if request.query is not None:
        location += "?" + request.query
    request.response_headers.set("Location", location)
    return 301


def prefix_match(prefix: str, path: str) -> int | None:
    """Length of ``path`` that ``prefix`` matches on whole segments, or None
    (Apache's alias_matches, for a path already normalised)."""
    if not path.startswith(prefix):
        return None
    n = len(prefix)
    if prefix.endswith("/") or len(path) == n or path[n] == "/":
        return n
    return None


def sort_mounts(pairs: Any) -> tuple[tuple[str, Any], ...]:
    """(prefix, value) pairs, longest prefix first: for ``longest_prefix``."""
    return tuple(sorted(pairs, key=lambda pair: len(pair[0]), reverse=True))


def longest_prefix(mounts: Any, path: str) -> tuple[str, Any] | None:
    """The (prefix, value) pair of ``mounts`` -- sorted by ``sort_mounts`` --
    whose prefix matches ``path`` on whole segments as ``prefix_match``
    says (``/x`` covers ``/x`` and ``/x/y``, ``/x/`` only ``/x/...``): the
    longest one, or None.  Shared by the URL-prefix mounts (WSGIScriptAlias,
    ASGIAlias) so they agree with Alias."""
    for prefix, value in mounts:
        # (prefix_match, inlined: this runs for every request.)
        if path.startswith(prefix):
            n = len(prefix)
            if prefix[-1:] == "/" or len(path) == n or path[n] == "/":
                return prefix, value
    return None


# The directives that mount an application at a URL prefix, and the value
# of each that means "no application here" (WSGIScriptAlias /x off).
_APP_MOUNTS = (("script_alias", None), ("wsgi_script_alias", "off"), ("asgi_alias", None))


def longer_app_mount(conf: Any, path: str, prefix: str) -> bool:
    """Whether another application mount of the scope (ScriptAlias,
    WSGIScriptAlias, ASGIAlias) matches ``path`` with a prefix longer than
    ``prefix``: the longest prefix wins across them, whichever plugin's
    uri_translation runs first (a FastAPI app at /api below a Django site
    at /, CGI programs below an ASGI app)."""
    n = len(prefix)
    for name, off in _APP_MOUNTS:
        table = getattr(conf, name, None)
        if table:
            # That table's own longest match for the path decides for it
            # (WSGIScriptAlias /a app + /a/b off: nothing of WSGI's at /a/b).
            best, best_target = -1, None
            for other, target in table.items():
                if len(other) > best and prefix_match(other, path) is not None:
                    best, best_target = len(other), target
            if best > n and best_target != off:
                return True
    return False
