"""expires: Expires and Cache-Control: max-age for files, per media type.

Apache's mod_expires, same directives and syntax::

    ExpiresActive On
    ExpiresDefault "access plus 1 hour"
    ExpiresByType text/css "modification plus 7 days"
    ExpiresByType image/* A86400

The headers are set in the fixup phase, so a 304 carries them too (caches
refresh their copy's lifetime from it).  A Cache-Control already set (for
instance by ``Header set Cache-Control ...``) is left alone.  Only
responses for existing files are touched.
"""

import re
import time

from axkit.config import ANY, MAP, ConfigError, Directive, flag, mimetype
from axkit.hooks import DECLINED
from axkit.http.dates import http_date

UNITS = {
    "year": 365 * 86400,
    "month": 30 * 86400,
    "week": 7 * 86400,
    "day": 86400,
    "hour": 3600,
    "minute": 60,
    "second": 1,
}


def expiry(word, ctx=None):
    """'access plus 1 month 2 days', 'modification plus 1 hour', A3600, M60 ->
    (base, seconds) where base is 'access' or 'modification'."""
    text = word.strip()
    m = re.fullmatch(r"([AaMm])(\d+)", text)
    if m:
        return ("access" if m.group(1) in "Aa" else "modification", int(m.group(2)))
    words = text.lower().split()
    if (
        len(words) < 4
        or words[0] not in ("access", "now", "modification")
        or words[1] != "plus"
        or len(words[2:]) % 2
    ):
        raise ConfigError(
            f'expected "access plus N units", "modification plus N '
            f'units", A<seconds> or M<seconds>; got {word!r}'
        )
    seconds = 0
    for n, unit in zip(words[2::2], words[3::2], strict=False):
        unit = unit[:-1] if unit.endswith("s") else unit
        if not n.isdigit() or unit not in UNITS:
            raise ConfigError(
                f"bad expiry {word!r}: {n} {unit} is not N "
                f"years/months/weeks/days/hours/minutes/seconds"
            )
        seconds += int(n) * UNITS[unit]
    return ("modification" if words[0] == "modification" else "access", seconds)


expiry.label = '"access plus N units"'


class Expires:
    """Adds Expires/Cache-Control by media type (ExpiresByType, ExpiresDefault)."""

    name = "expires"
    directives = [
        Directive(
            "ExpiresActive",
            flag,
            scopes=ANY,
            default=True,
            doc="On (default once the plugin is loaded): add Expires and "
            "Cache-Control max-age; Off: leave responses alone.",
        ),
        Directive(
            "ExpiresDefault",
            expiry,
            scopes=ANY,
            doc="Lifetime for files whose type has no ExpiresByType: "
            '"access plus 1 hour", "modification plus 2 days", A3600, M60.',
        ),
        Directive(
            "ExpiresByType",
            (mimetype, expiry),
            scopes=ANY,
            merge=MAP,
            to_items=lambda v: [(v[0].lower(), v[1])],
            doc="Lifetime for one media type (type/* matches a whole major type).",
        ),
    ]

    def hook_fixup(self, request, conf):
        if (
            not conf.expires_active
            or request.finfo is None
            or not request.mime_type
            or request.handler is not None
        ):
            # Not a file (a CGI program's answer sets its own lifetime).
            return DECLINED
        by_type = conf.expires_by_type
        rule = None
        if by_type:
            base = request.mime_type.partition(";")[0].strip().lower()
            rule = by_type.get(base) or by_type.get(base.partition("/")[0] + "/*")
        if rule is None:
            rule = conf.expires_default
        if rule is None:
            return DECLINED
        origin, seconds = rule
        now = int(time.time())
        when = now + seconds if origin == "access" else int(request.finfo.st_mtime) + seconds
        headers = request.response_headers
        headers.set("Expires", http_date(when))
        headers.setdefault("Cache-Control", f"max-age={max(0, when - now)}")
        return DECLINED
