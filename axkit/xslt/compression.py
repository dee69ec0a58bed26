"""The compress plugin's Gzip settings applied to transformed output.

compress negotiates for files in ``fixup``; a transformed page is not a
file, so the xslt plugin asks here, with the scope's ``Gzip``,
``GzipTypes``, ``GzipMinLength`` and ``GzipCompLevel`` (present only
where compress is loaded) and the same negotiation (axkit.http.coding).
The gzip'd bytes are kept on the cached output, made once; their ETag is
the output's plus ``-gzip``.
"""

from axkit.http.coding import accepted_codings, add_vary, type_matches

_patterns = {}  # GzipTypes -> its lower-case patterns


def gzip_choice(request, conf, media_type, size):
    """The ``encoding`` note respond_file takes (("gzip", None, level)),
    or None; adds ``Vary: Accept-Encoding`` where gzip is on for the type."""
    if not getattr(conf, "gzip", False):
        return None
    types = conf.gzip_types
    patterns = _patterns.get(types)
    if patterns is None:
        if len(_patterns) >= 64:
            _patterns.clear()
        patterns = _patterns[types] = frozenset(t.lower() for t in types)
    if not type_matches(media_type or "", patterns):
        return None
    add_vary(request.response_headers, "Accept-Encoding")
    value = request.headers.get("accept-encoding")
    if not value or "range" in request.headers or size < conf.gzip_min_length:
        return None
    if "gzip" not in accepted_codings(value):
        return None
    return ("gzip", None, conf.gzip_comp_level)


class KeepGzipped:
    """respond_file's ``cache`` argument: the gzip'd body is kept on the
    output entry itself (not in the file cache)."""

    @staticmethod
    def gzipped(filename, entry, level, compress):
        gzipped = entry.gzipped
        if gzipped is None or gzipped[0] != level:
            gzipped = entry.gzipped = (level, compress(entry.body, level))
        return gzipped[1]


KEEP_GZIPPED = KeepGzipped()
