"""uri_to_file: map the request path to a file under DocumentRoot.

The decoded, normalised path (dot segments already removed; a path that
climbs above the root, a NUL or invalid UTF-8 was refused with 400 by the
engine) is joined to DocumentRoot.  As Apache does, when a leading part of
the path names a file, the rest becomes PATH_INFO: /cgi/app.py/a/b ->
filename .../app.py, path_info /a/b.  A directory asked for without its
trailing slash is redirected (301) to the slashed URL, query kept; one with
it is answered with the first DirectoryIndex file that exists.

Containment, cheaply: the file itself is lstat'ed (one system call); a
symlink is resolved in full.  What is known of its folder is cached for
SYMLINK_RECHECK seconds, so a request costs one lstat and a dict lookup,
and a symlinked folder that is re-pointed outside the root is refused
within that time.  Anything whose real path leaves the real DocumentRoot
is answered 403, unless AllowSymlinksOutsideRoot is On.  Names starting
with a dot (.git, .env, .htaccess) are answered 404 unless AllowDotFiles
is On; /.well-known/ is always served (RFC 8615).

Symlinks and Options, as Apache: with FollowSymLinks (the default) they are
followed; without it a request whose file, or a folder on the way to it
below DocumentRoot, is a symlink is answered 403, unless
SymLinksIfOwnerMatch is on and every such link has its target's owner.
The Options are the request's scope's (server, <Location>), not the
file's: axkit has no <Directory>.  The folder cache holds facts, not
verdicts: ``True`` for a folder inside the real root reached through no
symlink below DocumentRoot (the common case, served without looking at
Options at all), else a tuple that the request's Options are checked
against.  DocumentRoot's own path may contain symlinks (a deploy's
/srv/current -> release-42): only the components below it are checked.
"""

import os
import stat as statmod
import time

from axkit.config import NOT_FILES, Directive, flag, many, string
from axkit.files.confine import is_inside
from axkit.files.symlinks import FOLLOW, OWNER_MATCH, REFUSE, symlink_policy
from axkit.hooks import OK
from axkit.http.paths import slash_redirect
from axkit.log import PluginLogger

SYMLINK_RECHECK = 1.0
MAX_DIRS = 10000


log = PluginLogger("uri_to_file")


def refuse(request, path, why):
    log.error("{path}: {why} -> 403", path=path, why=why, request=request)
    return 403


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
        Directive(
            "DirectoryIndex",
            many(string),
            scopes=NOT_FILES,
            default=("index.html",),
            doc="Files tried, in order, for a URL naming a directory.",
        ),
        Directive(
            "AllowDotFiles",
            flag,
            scopes=NOT_FILES,
            default=False,
            doc="On: serve names starting with a dot (.git, .env, .htaccess). "
            "Off (default): they are answered 404; /.well-known/ is "
            "always served.",
        ),
        Directive(
            "AllowSymlinksOutsideRoot",
            flag,
            scopes=NOT_FILES,
            default=False,
            doc="On: follow symlinks whose target is outside DocumentRoot. "
            "Off (default): such a file is answered 403.",
        ),
    ]

    def __init__(self):
        self._real_roots = {}
        self._dirs = {}  # folder -> (state, checked until, root); see _dir_state
        self._policies = {}  # Conf -> FOLLOW | OWNER_MATCH | REFUSE

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
        if kind == 0o120000:  # a symlink: resolve it in full
            result = self._follow(request, conf, full, st)
            if result.__class__ is int:
                return result
            st = result
            kind = st.st_mode & 0o170000
        else:
            folder = full[: full.rindex("/")]
            known = self._dirs.get(folder)
            if known is None or known[1] < time.monotonic() or known[2] != root:
                state = self._dir_state(root, folder)
                if state is not True and self._dir_refused(request, conf, state):
                    return 403
            elif known[0] is not True and self._dir_refused(request, conf, known[0]):
                return 403
        if kind == 0o040000:  # a directory
            if not path.endswith("/"):
                return slash_redirect(request)
            refused = None
            for index in conf.directory_index:
                candidate = full + index
                try:
                    ist = os.lstat(candidate)
                except OSError:
                    continue
                if ist.st_mode & 0o170000 == statmod.S_IFLNK:
                    ist = self._follow(request, conf, candidate, ist)
                    if ist.__class__ is int:
                        # As Apache's mod_dir: a refused index file is not
                        # replaced by a listing; the next name may still do.
                        if ist != 404:
                            refused = ist
                        continue
                if statmod.S_ISREG(ist.st_mode):
                    full, st = candidate, ist
                    break
            else:
                if refused is not None:
                    return refused
        request.filename = full
        request.finfo = st
        return OK

    def _real_root(self, root):
        # Re-resolved like the folders: a DocumentRoot under a symlink that a
        # deploy swaps (/srv/current -> release-42) follows the swap.
        now = time.monotonic()
        known = self._real_roots.get(root)
        if known is None or known[1] < now:
            known = self._real_roots[root] = (
                os.path.realpath(root).rstrip("/") + "/",
                now + SYMLINK_RECHECK,
            )
        return known[0]

    def _inside(self, root, real):
        real_root = self._real_root(root)
        return is_inside(real, real_root)

    def _dir_state(self, root, folder):
        """What is known of ``folder`` (computed now, then cached): True when
        its real path is inside the real root and no component below root
        is a symlink, else (inside, folder, real path, first symlink below
        root or None, (link, its uid, target's uid) of the first symlink
        whose owner is not its target's, or None)."""
        now = time.monotonic()
        real = os.path.realpath(folder)
        real_root = self._real_root(root)
        if real == real_root[:-1] + folder[len(root) :]:
            # Resolved to itself: no symlink below the root (a link that
            # resolved back to its own name would be a loop, and lstat of
            # the file below it succeeded).
            state = True
        else:
            inside = real == real_root[:-1] or real.startswith(real_root)
            link, mismatch = self._links_below(root, folder)
            state = True if inside and link is None else (inside, folder, real, link, mismatch)
        # The answer is relative to this root: servers whose roots nest
        # must not share it (the key's root is checked by the readers).
        if len(self._dirs) >= MAX_DIRS:
            self._dirs.clear()
        self._dirs[folder] = (state, now + SYMLINK_RECHECK, root)
        return state

    @staticmethod
    def _links_below(root, folder):
        """The first component of ``folder`` below ``root`` that is a
        symlink, and the first whose owner differs from its target's."""
        link = mismatch = None
        current = root
        for part in folder[len(root) :].split("/")[1:]:
            current += "/" + part
            try:
                lst = os.lstat(current)
            except OSError:
                break
            if lst.st_mode & 0o170000 == 0o120000:
                if link is None:
                    link = current
                if mismatch is None:
                    try:
                        target_uid = os.stat(current).st_uid
                    except OSError:
                        target_uid = None
                    if target_uid != lst.st_uid:
                        mismatch = (current, lst.st_uid, target_uid)
        return link, mismatch

    def _dir_refused(self, request, conf, state):
        """Whether a folder ``state`` (not True) is refused in ``conf``'s
        scope; a refusal is logged once."""
        inside, folder, real, link, mismatch = state
        if link is not None:
            policy = self._policies.get(conf)
            if policy is None:
                policy = self._policy(conf)
            if policy == REFUSE:
                refuse(
                    request,
                    link,
                    "symlink not followed (Options FollowSymLinks is off for this URL)",
                )
                return True
            if policy == OWNER_MATCH and mismatch is not None:
                refuse(
                    request,
                    mismatch[0],
                    f"symlink not followed: its owner (uid "
                    f"{mismatch[1]}) is not its target's (uid "
                    f"{mismatch[2]}) (Options SymLinksIfOwnerMatch)",
                )
                return True
        if not inside and not conf.allow_symlinks_outside_root:
            refuse(
                request,
                folder,
                f"real path {real} is outside DocumentRoot (AllowSymlinksOutsideRoot Off)",
            )
            return True
        return False

    def _dir_blocked(self, request, conf, root, folder):
        """Whether ``folder`` is refused for this request (cached facts)."""
        known = self._dirs.get(folder)
        if known is None or known[1] < time.monotonic() or known[2] != root:
            state = self._dir_state(root, folder)
        else:
            state = known[0]
        return state is not True and self._dir_refused(request, conf, state)

    def _policy(self, conf):
        """symlink_policy(conf), cached per Conf (one per scope chain)."""
        policy = self._policies.get(conf)
        if policy is None:
            if len(self._policies) >= 4096:
                self._policies.clear()
            policy = self._policies[conf] = symlink_policy(conf)
        return policy

    def _follow(self, request, conf, full, lst):
        """The stat of symlink ``full``'s target (``lst``: its lstat), or a
        status: 404 dangling, 403 not followed or outside the root."""
        policy = self._policy(conf)
        if policy != FOLLOW:
            # Its folders count too (when following, the realpath below
            # covers them).
            if self._dir_blocked(request, conf, conf.document_root, full[: full.rindex("/")]):
                return 403
            if policy == REFUSE:
                return refuse(
                    request,
                    full,
                    "symlink not followed (Options FollowSymLinks is off for this URL)",
                )
        try:
            st = os.stat(full)
        except (FileNotFoundError, NotADirectoryError):
            if policy == OWNER_MATCH:
                return refuse(
                    request,
                    full,
                    "symlink not followed: its target does "
                    "not exist (Options SymLinksIfOwnerMatch)",
                )
            return 404
        except OSError:
            return 403
        if policy == OWNER_MATCH and st.st_uid != lst.st_uid:
            return refuse(
                request,
                full,
                f"symlink not followed: its owner (uid "
                f"{lst.st_uid}) is not its target's (uid "
                f"{st.st_uid}) (Options SymLinksIfOwnerMatch)",
            )
        if not conf.allow_symlinks_outside_root:
            real = os.path.realpath(full)
            if not self._inside(conf.document_root, real):
                return refuse(
                    request,
                    full,
                    f"real path {real} is outside DocumentRoot (AllowSymlinksOutsideRoot Off)",
                )
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
                st = self._follow(request, conf, candidate, st)
                if st.__class__ is int:
                    return st
            elif statmod.S_ISREG(st.st_mode) and self._dir_blocked(
                request, conf, root, candidate.rpartition("/")[0]
            ):
                return 403
            if statmod.S_ISREG(st.st_mode):
                request.filename = candidate
                request.finfo = st
                request.path_info = "/" + "/".join(parts[cut:])
                return OK
            # A directory: nothing below it exists.  Where symlinks are not
            # simply followed, a missing name below a refused folder is
            # refused too (as Apache's directory walk does).
            if (
                statmod.S_ISDIR(st.st_mode)
                and self._policy(conf) != FOLLOW
                and self._dir_blocked(request, conf, root, candidate)
            ):
                return 403
            break
        request.filename = root + path
        request.finfo = None
        return OK
