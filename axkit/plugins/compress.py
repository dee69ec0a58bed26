"""compress: choose a compressed representation of a static file.

Two ways, both negotiated with Accept-Encoding and announced with
``Vary: Accept-Encoding`` (on 200, 206 and 304 alike):

* ``Precompressed On`` -- a sibling ``file.css.br`` or ``file.css.gz`` is
  sent (with Content-Encoding) when the client accepts that coding and the
  sibling is a regular file no older than the original (by the client's q-values, br on a tie);
* ``Gzip On`` -- files of a GzipTypes type and at least GzipMinLength bytes
  are gzip'd on the fly: small ones once (the result is kept in the file
  cache), big ones a block at a time in a producer, never all at once.

A request with a Range gets the identity representation (ranges of a
compressed stream would change with the compression level).  Each encoded
representation has its own strong ETag (the file's tag plus ``-gzip`` or
``-br``).  The choice is left in the request's notes (axkit.notes.ENCODING)
for serve_file, which sends it.
"""

import os
import stat as statmod

from axkit.config import ANY, ConfigError, Directive, flag, integer, many, size, string
from axkit.hooks import DECLINED
from axkit.http.coding import accepted_codings, add_vary, type_matches
from axkit.notes import ENCODING

DEFAULT_TYPES = (
    "text/*",
    "application/javascript",
    "application/json",
    "application/xml",
    "application/xhtml+xml",
    "application/rss+xml",
    "application/atom+xml",
    "image/svg+xml",
    "application/wasm",
    "font/ttf",
    "font/otf",
    "application/manifest+json",
)


def level(word, ctx):
    value = integer(word, ctx)
    if not 1 <= value <= 9:
        raise ConfigError(f"expected a compression level from 1 to 9, got {word!r}")
    return value


level.label = "1-9"


_BR_FIRST = (("br", ".br"), ("gzip", ".gz"))
_GZIP_FIRST = (("gzip", ".gz"), ("br", ".br"))


class Compress:
    """Negotiates gzip/br for static files (precompressed siblings, gzip on the fly)."""

    name = "compress"
    directives = [
        Directive(
            "Gzip",
            flag,
            scopes=ANY,
            default=False,
            doc="On: gzip files of GzipTypes types on the fly for clients that accept it.",
        ),
        Directive(
            "GzipTypes",
            many(string),
            scopes=ANY,
            default=DEFAULT_TYPES,
            doc="Media types compressed on the fly (type/* wildcards allowed).",
        ),
        Directive(
            "GzipMinLength",
            size,
            scopes=ANY,
            default=1024,
            doc="Smallest file gzip'd on the fly, in bytes.",
        ),
        Directive(
            "GzipCompLevel",
            level,
            scopes=ANY,
            default=6,
            doc="zlib compression level for on-the-fly gzip, 1 (fast) to 9.",
        ),
        Directive(
            "Precompressed",
            flag,
            scopes=ANY,
            default=False,
            doc="On: send file.br / file.gz siblings to clients that accept "
            "br / gzip, when no older than the file.",
        ),
    ]

    def __init__(self):
        self._gzip_ok = {}  # (conf, media type) -> compressible on the fly?

    def hook_fixup(self, request, conf):
        st = request.finfo
        if (
            st is None
            or st.st_mode & 0o170000 != 0o100000  # (not S_ISREG)
            or request.path_info
            or request.handler is not None
        ):
            return DECLINED
        method = request.method
        if method != "GET" and method != "HEAD":
            return DECLINED
        mime_type = request.mime_type or ""
        key = (conf, mime_type)
        gzip_ok = self._gzip_ok.get(key)
        if gzip_ok is None:
            gzip_ok = bool(conf.gzip) and type_matches(
                mime_type, frozenset(t.lower() for t in conf.gzip_types)
            )
            if len(self._gzip_ok) >= 4096:
                self._gzip_ok.clear()
            self._gzip_ok[key] = gzip_ok
        if not gzip_ok and not conf.precompressed:
            return DECLINED
        add_vary(request.response_headers, "Accept-Encoding")
        headers = request.headers
        fields = headers.fields_by_name()
        if fields is not None:
            value = fields.get("accept-encoding")
            if not value or "range" in fields:
                return DECLINED
        else:
            value = headers.get("accept-encoding")
            if not value or "range" in headers:
                return DECLINED
        accepted = accepted_codings(value)
        if not accepted:
            return DECLINED
        if conf.precompressed:
            # The client's preference (q-values); br first on a tie.
            order = _GZIP_FIRST if accepted.get("gzip", 0) > accepted.get("br", 0) else _BR_FIRST
            for coding, suffix in order:
                if coding not in accepted:
                    continue
                sibling = request.filename + suffix
                try:
                    sst = os.lstat(sibling)
                except OSError:
                    continue
                # Only a plain file next to the original (no symlink games),
                # and only when it is not older than the original.
                if statmod.S_ISREG(sst.st_mode) and sst.st_mtime_ns >= st.st_mtime_ns:
                    request.notes[ENCODING] = (coding, sibling, sst)
                    return DECLINED
        if gzip_ok and "gzip" in accepted and st.st_size >= conf.gzip_min_length:
            request.notes[ENCODING] = ("gzip", None, conf.gzip_comp_level)
        return DECLINED
