"""mime_map: give the mapped file a media type from its extension.

As Apache's mod_mime: the table is read from a mime.types file
(``TypesConfig``; without one, /etc/mime.types when the system has it, else
the table axkit ships, axkit/defaults/mime.conf), and AddType lines add to
it or override it per extension (an inner scope's over the outer's).
AddDefaultCharset adds a charset parameter to text types (text/*,
application/javascript) that do not name one.
"""

import os

from axkit.config import (
    MAP,
    SERVER_ONLY,
    ConfigError,
    Directive,
    many,
    mimetype,
    path,
    string,
)
from axkit.hooks import DECLINED, OK

SYSTEM_TYPES = "/etc/mime.types"
BUNDLED_TYPES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "defaults", "mime.conf"
)


def read_types(filename):
    """{extension: media type} from a mime.types file (``type ext ext``
    lines, ``#`` comments; a later line wins for an extension, as Apache
    reads it).  ``AddType type .ext`` lines (axkit's own table) read the
    same.  Raises OSError."""
    table = {}
    with open(filename, encoding="utf-8", errors="replace") as f:
        for line in f:
            words = line.partition("#")[0].split()
            if words and words[0].lower() == "addtype":
                words = words[1:]
            if len(words) < 2 or "/" not in words[0]:
                continue
            media_type = words[0]
            for ext in words[1:]:
                table[ext.lower().lstrip(".")] = media_type
    return table


class TypesTable:
    """TypesConfig's value: the file and the table read from it."""

    __slots__ = ("filename", "types")

    def __init__(self, filename, types):
        self.filename = filename
        self.types = types

    def __str__(self):
        return self.filename

    __repr__ = __str__


_default = []


def default_table():
    """/etc/mime.types when present, else the bundled table (read once)."""
    if not _default:
        table = None
        if os.path.exists(SYSTEM_TYPES):
            try:
                table = TypesTable(SYSTEM_TYPES, read_types(SYSTEM_TYPES))
            except OSError:
                table = None
        if table is None:
            table = TypesTable(BUNDLED_TYPES, read_types(BUNDLED_TYPES))
        _default.append(table)
    return _default[0]


def types_config(word, ctx):
    """A mime.types file, read when the config loads."""
    filename = path(word, ctx)
    try:
        return TypesTable(filename, read_types(filename))
    except OSError as e:
        raise ConfigError(f"TypesConfig {filename}: {e.strerror or e}")


types_config.label = "PATH"


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
            "TypesConfig",
            types_config,
            scopes=SERVER_ONLY,
            default=None,
            doc="The mime.types file (type ext ext ... lines) the extension table "
            "starts from, read when the config loads; AddType lines add to it. "
            "Without it: /etc/mime.types when present, else the table axkit ships.",
        ),
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
            ext = base[dot + 1 :].lower()
            media_type = conf.add_type.get(ext)
            if media_type is None:
                table = conf.types_config or default_table()
                media_type = table.types.get(ext)
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
