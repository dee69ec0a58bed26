"""mime_map: give the mapped file a media type from its extension.

The table comes from AddType lines (conf.d/mime.conf ships a full one);
an inner scope's AddType adds to or overrides the outer table per extension.
"""

from axkit.config import MAP, Directive, many, mimetype, string
from axkit.hooks import DECLINED, OK


def _extension_items(value):
    media_type, extensions = value
    return [(ext.lower().lstrip("."), media_type) for ext in extensions]


class MimeMap:
    """Sets request.mime_type from the file extension (AddType, DefaultType)."""

    name = "mime_map"
    directives = [
        Directive("AddType", (mimetype, many(string)), merge=MAP,
                  to_items=_extension_items,
                  doc="Map file extensions to a media type: AddType text/html .html .htm"),
        Directive("DefaultType", mimetype, default="application/octet-stream",
                  doc="Media type for files whose extension is not in the table."),
    ]

    def hook_mime_map(self, request, conf):
        filename = request.filename
        if filename is None:
            return DECLINED
        base = filename.rpartition("/")[2]
        dot = base.rfind(".")
        media_type = None
        if dot > 0:
            media_type = conf.add_type.get(base[dot + 1:].lower())
        request.mime_type = media_type or conf.default_type
        return OK
