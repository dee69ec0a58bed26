"""uri_to_file: map the request path to a file under DocumentRoot.

The decoded, normalised path (dot segments already removed; a path that
climbs above the root was refused with 400) is joined to DocumentRoot.
As Apache does, when a leading part of the path names a file, the rest
becomes PATH_INFO: /cgi/app.py/a/b -> filename .../app.py, path_info /a/b.
A directory asked for without its trailing slash is redirected (301) to
the slashed URL; one with it is answered with the first DirectoryIndex
file that exists.  Whatever symlinks say, the result must lie inside the
real DocumentRoot, or the answer is 403.
"""

import os
import stat as statmod
from urllib.parse import quote

from axkit.config import Directive, many, string, NOT_FILES
from axkit.hooks import DECLINED, OK


class URIToFile:
    """Maps URLs to files under DocumentRoot (with PATH_INFO and DirectoryIndex)."""

    name = "uri_to_file"
    directives = [
        Directive("DirectoryIndex", many(string), scopes=NOT_FILES,
                  default=("index.html",),
                  doc="Files tried, in order, for a URL naming a directory."),
    ]

    def __init__(self):
        self._real_roots = {}

    def hook_uri_translation(self, request, conf):
        root = conf.document_root
        path = request.path
        full = root + path if path != "/" else root + "/"
        try:
            st = os.stat(full)
        except (FileNotFoundError, NotADirectoryError):
            return self._with_path_info(request, root, path)
        except PermissionError:
            return 403
        except OSError:
            return 404 if not os.path.lexists(full) else 403
        if statmod.S_ISDIR(st.st_mode):
            if not path.endswith("/"):
                location = quote(path, safe="/:@!$&'()*+,;=~") + "/"
                if request.query is not None:
                    location += "?" + request.query
                request.response_headers.set("Location", location)
                return 301
            for index in conf.directory_index:
                candidate = os.path.join(full, index)
                try:
                    ist = os.stat(candidate)
                except OSError:
                    continue
                if statmod.S_ISREG(ist.st_mode):
                    full, st = candidate, ist
                    break
        if not self._inside(root, full):
            return 403
        request.filename = full
        request.finfo = st
        return OK

    def _with_path_info(self, request, root, path):
        # Walk back from the end: the longest prefix that is a regular file
        # is the filename, the rest is PATH_INFO.
        parts = path.split("/")
        for cut in range(len(parts) - 1, 0, -1):
            candidate = root + "/".join(parts[:cut])
            try:
                st = os.stat(candidate)
            except OSError:
                continue
            if statmod.S_ISREG(st.st_mode):
                if not self._inside(root, candidate):
                    return 403
                request.filename = candidate
                request.finfo = st
                request.path_info = "/" + "/".join(parts[cut:])
                return OK
            break  # a directory: nothing below it exists
        request.filename = root + path
        request.finfo = None
        return OK

    def _inside(self, root, full):
        real_root = self._real_roots.get(root)
        if real_root is None:
            real_root = self._real_roots[root] = os.path.realpath(root)
        real = os.path.realpath(full)
        return real == real_root or real.startswith(real_root.rstrip("/") + "/")
