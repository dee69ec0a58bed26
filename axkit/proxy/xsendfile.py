"""X-Sendfile (mod_xsendfile): a backend names a file, axkit sends it.

The backend answers with ``X-Sendfile: /srv/files/report.pdf`` (and any
other fields: Content-Type, Content-Disposition, Cache-Control); its body
is thrown away and the file is sent through ``request.send_file`` --
ranges, ETag/Last-Modified, 304, HEAD and zero-copy sendfile, as
serve_file answers.  Only a file under one of XSendFilePath's folders,
after every symlink is resolved, is sent; anything else is a 404 and one
log line.  The field never reaches the client.
"""

import os

from axkit.files.confine import is_inside
from axkit.log import PluginLogger

log = PluginLogger("proxy")

FIELD = "x-sendfile"
# The backend's own validators and range fields describe its (empty) body,
# not the file: send_file sets the file's.
_DROPPED = frozenset((FIELD, "etag", "last-modified", "content-range", "accept-ranges"))


def allowed(target, folders):
    """The real path of ``target`` if it is a regular file inside one of
    ``folders`` (symlinks resolved on both sides), else None."""
    if not os.path.isabs(target):
        return None
    real = os.path.realpath(target)
    for folder in folders:
        root = os.path.realpath(folder)
        if is_inside(real, root) and os.path.isfile(real):
            return real
    return None


class XSendFile:
    __slots__ = ("folders",)

    def __init__(self, folders):
        self.folders = [f for group in folders for f in group]

    def answer(self, request, forward, status, fields):
        """``fields`` unchanged when there is no X-Sendfile; otherwise the
        file is sent (or a 404) and None is returned."""
        target = None
        for name, value in fields:
            if name.lower() == FIELD:
                target = value.strip()
        if target is None:
            return fields
        real = allowed(target, self.folders)
        if real is None:
            log.error(
                "backend {backend}: X-Sendfile {target} is not a file under XSendFilePath -> 404",
                backend=str(forward.backend),
                target=target,
                request=request,
            )
            request.send_error(404)
            return None
        request.add_handler_fields([(n, v) for n, v in fields if n.lower() not in _DROPPED])
        request.status = 200
        request.send_file(real)
        return None
