"""uri_to_file: map the request path to a file under DocumentRoot.

The decoded, normalised path (dot segments already removed; a path that
climbs above the root, a NUL or invalid UTF-8 was refused with 400 by the
engine) is joined to DocumentRoot.  As Apache does, when a leading part of
the path names a file, the rest becomes PATH_INFO: /cgi/app.py/a/b ->
filename .../app.py, path_info /a/b.  A directory asked for without its
trailing slash is redirected (301) to the slashed URL, query kept; one with
it is answered with the first DirectoryIndex file that exists.

Containment, cheaply: the file itself is lstat'ed (one system call); a
symlink is resolved in full.  The real path of its folder is cached for
SYMLINK_RECHECK seconds, so a request costs one lstat and a dict lookup,
and a symlinked folder that is re-pointed outside the root is refused
within that time.  Anything whose real path leaves the real DocumentRoot
is answered 403, unless AllowSymlinksOutsideRoot is On.  Names starting
with a dot (.git, .env, .htaccess) are answered 404 unless AllowDotFiles
is On; /.well-known/ is always served (RFC 8615).
"""

import os
import stat as statmod
import time
from urllib.parse import quote

from axkit.config import Directive, NOT_FILES, flag, many, string
from axkit.hooks import OK

SYMLINK_RECHECK = 1.0
MAX_DIRS = 10000


def has_dot_segment(path):
    """Whether a segment of ``path`` starts with a dot (bar .well-known)."""
    for segment in path.split("/"):
        if segment.startswith(".") and segment != ".well-known":
            return True
    return False


class URIToFile:
    """Maps URLs to files under DocumentRoot (PATH_INFO, DirectoryIndex,
    containment, dotfiles)."""

    name = "uri_to_file"
    directives = [
        Directive("DirectoryIndex", many(string), scopes=NOT_FILES,
                  default=("index.html",),
                  doc="Files tried, in order, for a URL naming a directory."),
        Directive("AllowDotFiles", flag, scopes=NOT_FILES, default=False,
                  doc="On: serve names starting with a dot (.git, .env, .htaccess). "
                      "Off (default): they are answered 404; /.well-known/ is "
                      "always served."),
        Directive("AllowSymlinksOutsideRoot", flag, scopes=NOT_FILES, default=False,
                  doc="On: follow symlinks whose target is outside DocumentRoot. "
                      "Off (default): such a file is answered 403."),
    ]

    def __init__(self):
        self._real_roots = {}
        self._dirs = {}          # folder -> (inside real root?, checked until, root)

    def hook_uri_translation(self, request, conf):
        root = conf.document_root
        path = request.path
        if "/." in path and not conf.allow_dot_files and has_dot_segment(path):
            return 404
        full = root + path
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            return self._with_path_info(request, conf, root, path)
        except PermissionError:
            return 403
        except OSError:
            return 404
        kind = st.st_mode & 0o170000
        if kind == 0o120000:                    # a symlink: resolve it in full
            result = self._follow(full, conf)
            if result.__class__ is int:
                return result
            st = result
            kind = st.st_mode & 0o170000
        else:
            folder = full[:full.rindex("/")]
            known = self._dirs.get(folder)
            if known is None or known[1] < time.monotonic() or known[2] != root:
                if not self._dir_inside(root, folder, conf):
                    return 403
            elif not known[0] and not conf.allow_symlinks_outside_root:
                return 403
        if kind == 0o040000:                    # a directory
            if not path.endswith("/"):
                location = quote(path, safe="/:@!$&'()*+,;=~") + "/"
                if request.query is not None:
                    location += "?" + request.query
                request.response_headers.set("Location", location)
                return 301
            for index in conf.directory_index:
                candidate = full + index
                try:
                    ist = os.lstat(candidate)
                except OSError:
                    continue
                if ist.st_mode & 0o170000 == statmod.S_IFLNK:
                    ist = self._follow(candidate, conf)
                    if ist.__class__ is int:
                        continue
                if statmod.S_ISREG(ist.st_mode):
                    full, st = candidate, ist
                    break
        request.filename = full
        request.finfo = st
        return OK

    def _real_root(self, root):
        # Re-resolved like the folders: a DocumentRoot under a symlink that a
        # deploy swaps (/srv/current -> release-42) follows the swap.
        now = time.monotonic()
        known = self._real_roots.get(root)
        if known is None or known[1] < now:
            known = self._real_roots[root] = (os.path.realpath(root).rstrip("/") + "/",
                                              now + SYMLINK_RECHECK)
        return known[0]

    def _inside(self, root, real):
        real_root = self._real_root(root)
        return real == real_root[:-1] or real.startswith(real_root)

    def _dir_inside(self, root, folder, conf):
        """Whether ``folder``'s real path is inside the real root (cached)."""
        now = time.monotonic()
        known = self._dirs.get(folder)
        if known is not None and known[1] > now and known[2] == root:
            inside = known[0]
        else:
            # The answer is relative to this root: servers whose roots nest
            # must not share it (the key's root is checked above).
            inside = self._inside(root, os.path.realpath(folder))
            if len(self._dirs) >= MAX_DIRS:
                self._dirs.clear()
            self._dirs[folder] = (inside, now + SYMLINK_RECHECK, root)
        return inside or conf.allow_symlinks_outside_root

    def _follow(self, full, conf):
        """The stat of symlink ``full``'s target, or a status (404 dangling,
        403 outside the root)."""
        try:
            st = os.stat(full)
        except (FileNotFoundError, NotADirectoryError):
            return 404
        except OSError:
            return 403
        if not conf.allow_symlinks_outside_root and \
                not self._inside(conf.document_root, os.path.realpath(full)):
            return 403
        return st

    def _with_path_info(self, request, conf, root, path):
        # Walk back from the end: the longest prefix that is a regular file
        # is the filename, the rest is PATH_INFO.
        parts = path.split("/")
        for cut in range(len(parts) - 1, 0, -1):
            candidate = root + "/".join(parts[:cut])
            try:
                st = os.lstat(candidate)
            except OSError:
                continue
            if st.st_mode & 0o170000 == statmod.S_IFLNK:
                st = self._follow(candidate, conf)
                if st.__class__ is int:
                    return st
            elif statmod.S_ISREG(st.st_mode) and \
                    not self._dir_inside(root, candidate.rpartition("/")[0], conf):
                return 403
            if statmod.S_ISREG(st.st_mode):
                request.filename = candidate
                request.finfo = st
                request.path_info = "/" + "/".join(parts[cut:])
                return OK
            break  # a directory: nothing below it exists
        request.filename = root + path
        request.finfo = None
        return OK
