"""X-Sendfile (mod_xsendfile): a handler names a file, axkit sends it.

A proxied backend, a CGI program, a WSGI or an ASGI application answers
with ``X-Sendfile: /srv/files/report.pdf`` (and any other fields:
Content-Type, Content-Disposition, Cache-Control); its body is thrown
away and the file is sent through ``request.send_file`` -- ranges,
ETag/Last-Modified, 304, HEAD and zero-copy sendfile, as serve_file
answers.  Only a file under one of XSendFilePath's folders, after every
symlink is resolved, is sent; anything else is a 404 and one log line.
The field never reaches the client.

One place for every handler: the proxy plugin leaves an ``XSendFile``
checker in ``request.notes[X_SENDFILE]`` (fixup) where ``XSendFile On``,
and ``request.add_handler_fields`` -- which every handler calls with the
fields it produced -- calls it first.  The folders are resolved once, when
the config is read (``real_folder``), and one checker is made per set of
folders.
"""

import os

from axkit.config import path as path_type
from axkit.files.confine import inside_any
from axkit.log import PluginLogger
from axkit.notes import X_SENDFILE

log = PluginLogger("proxy")

FIELD = "x-sendfile"
# The handler's own validators, range and length fields describe its
# (dropped) body, not the file: send_file sets the file's.
_DROPPED = frozenset(
    (FIELD, "etag", "last-modified", "content-range", "accept-ranges", "content-length")
)


def real_folder(word, ctx):
    """XSendFilePath's argument: a folder, symlinks resolved at config time."""
    return os.path.realpath(path_type(word, ctx))


real_folder.label = "DIR"  # type: ignore[attr-defined]


class XSendFile:
    """Checks an X-Sendfile target against resolved folders and sends it."""

    __slots__ = ("roots",)

    def __init__(self, folders):
        self.roots = tuple(dict.fromkeys(f.rstrip("/") + "/" for f in folders))

    def allowed(self, target):
        """The real path of ``target`` if it is a regular file inside one of
        the folders (its symlinks resolved), else None."""
        if not os.path.isabs(target):
            return None
        real = os.path.realpath(target)
        if inside_any(real, self.roots) and os.path.isfile(real):
            return real
        return None

    def __call__(self, request, fields):
        """(request.add_handler_fields.)  False when ``fields`` hold no
        X-Sendfile; else the file (or a 404) answers the request: True."""
        target = None
        for name, value in fields:
            if name.lower() == FIELD:
                target = value.strip()
        if target is None:
            return False
        request.notes.pop(X_SENDFILE, None)  # (once: the fields below go through)
        real = self.allowed(target)
        if real is None:
            log.error(
                "X-Sendfile {target} is not a file under XSendFilePath -> 404 ({path})",
                target=target,
                path=request.path,
                request=request,
            )
            request.send_error(404)
            return True
        request.add_handler_fields([(n, v) for n, v in fields if n.lower() not in _DROPPED])
        request.status = 200
        request.reason_text = None
        request.send_file(real)
        return True


_checkers: dict = {}


def checker(folders):
    """The XSendFile for XSendFilePath's merged value (made once per value)."""
    found = _checkers.get(folders)
    if found is None:
        found = _checkers[folders] = XSendFile([f for group in folders for f in group])
    return found
