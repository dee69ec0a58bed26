"""mime_map: give the mapped file a media type from its extension.

The table comes from AddType lines (conf.d/mime.conf ships a full one);
an inner scope's AddType adds to or overrides the outer table per extension.
AddDefaultCharset adds a charset parameter to text types (text/*,
application/javascript) that do not name one.
"""

from axkit.config import MAP, ConfigError, Directive, many, mimetype, string
from axkit.hooks import DECLINED, OK


def charset_or_off(word, ctx):
    """Off, On (utf-8) or a charset name."""
    lowered = word.lower()
    if lowered == "off":
        return None
    if lowered == "on":
        return "utf-8"
    if not word.replace("-", "").replace("_", "").replace(".", "").replace(":", "").isalnum():
        raise ConfigError(f"expected Off, On or a charset name like utf-8, got {word!r}")
    return word


charset_or_off.label = "Off|On|CHARSET"


def takes_charset(media_type):
    return (
        media_type.startswith("text/") or media_type == "application/javascript"
    ) and ";" not in media_type


def _extension_items(value):
    media_type, extensions = value
    return [(ext.lower().lstrip("."), media_type) for ext in extensions]


class MimeMap:
    """Sets request.mime_type from the file extension (AddType, DefaultType)."""

    name = "mime_map"
    directives = [
        Directive(
            "AddType",
            (mimetype, many(string)),
            merge=MAP,
            to_items=_extension_items,
            doc="Map file extensions to a media type: AddType text/html .html .htm",
        ),
        Directive(
            "DefaultType",
            mimetype,
            default="application/octet-stream",
            doc="Media type for files whose extension is not in the table.",
        ),
        Directive(
            "AddDefaultCharset",
            charset_or_off,
            default=None,
            doc="Off (default), On (utf-8) or a charset: added as ; charset=... "
            "to text/* and application/javascript types that name none.",
        ),
    ]

    def __init__(self):
        self._with_charset = {}  # (type, charset) -> the Content-Type value
        self._types = {}  # Conf -> {file name: Content-Type value}

    def hook_mime_map(self, request, conf):
        filename = request.filename
        if filename is None:
            return DECLINED
        # Per scope (a Conf is read-only) and file name, found once.
        types = self._types.get(conf)
        if types is None:
            if len(self._types) >= 64:
                self._types.clear()
            types = self._types[conf] = {}
        media_type = types.get(filename)
        if media_type is None:
            media_type = self._media_type(filename, conf)
            if len(types) >= 4096:
                types.clear()
            types[filename] = media_type
        request.mime_type = media_type
        return OK

    def _media_type(self, filename, conf):
        base = filename.rpartition("/")[2]
        dot = base.rfind(".")
        media_type = None
        if dot > 0:
            media_type = conf.add_type.get(base[dot + 1 :].lower())
        media_type = media_type or conf.default_type
        charset = conf.add_default_charset
        if charset is not None:
            key = (media_type, charset)
            typed = self._with_charset.get(key)
            if typed is None:
                typed = (
                    f"{media_type}; charset={charset}" if takes_charset(media_type) else media_type
                )
                if len(self._with_charset) < 4096:
                    self._with_charset[key] = typed
            media_type = typed
        return media_type
