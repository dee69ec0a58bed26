"""Which URL runs which program.

* ``ScriptAlias /cgi-bin/ /srv/cgi-bin/``: a URL under the prefix names a
  program in the folder; path segments are walked until one is a regular
  file, and the rest of the URL path is PATH_INFO (``/cgi-bin/a/b.cgi/x/y``
  -> program ``/srv/cgi-bin/a/b.cgi``, PATH_INFO ``/x/y``).
* ``ScriptAlias /app /srv/app.cgi`` (the target is a file): a single-program
  mount -- every URL under ``/app`` runs that program, the rest is PATH_INFO.
* ``AddHandler cgi-script .cgi`` with ``Options +ExecCGI``: files among the
  documents (mapped by uri_to_file) whose extension is listed are run.

Each lookup answers a Target, or an HTTP status with the reason to log.
"""

import os
import stat as statmod


class Target:
    __slots__ = ("script", "script_name", "path_info")

    def __init__(self, script, script_name, path_info):
        self.script = script  # absolute file name of the program
        self.script_name = script_name  # the URL path that named it (SCRIPT_NAME)
        self.path_info = path_info  # the rest ("" when none)

    def __repr__(self):
        return f"Target({self.script!r}, {self.script_name!r}, {self.path_info!r})"


class Refused(Exception):
    """The URL maps to a program that cannot be run: ``status`` and why."""

    def __init__(self, status, why, script):
        Exception.__init__(self, status, why, script)
        self.status = status
        self.why = why
        self.script = script


def match_alias(aliases, path):
    """The (prefix, target) of the longest ScriptAlias matching ``path``, or None.

    A prefix without a trailing slash matches on a segment boundary
    (/cgi-bin matches /cgi-bin and /cgi-bin/x, not /cgi-binx); with one,
    the URL must contain it (as Apache's Alias).
    """
    best = None
    for prefix, target in aliases:
        if prefix.endswith("/"):
            ok = path.startswith(prefix)
        else:
            ok = path == prefix or path.startswith(prefix + "/") or prefix == "/"
        if ok and (best is None or len(prefix) > len(best[0])):
            best = (prefix, target)
    return best


def resolve_alias(prefix, target, path, interpreters=None):
    """The Target for ``path`` under ScriptAlias ``prefix`` -> ``target``;
    a file whose extension has a CGIInterpreter (``interpreters``: extension
    -> program) needs no execute bit."""
    rest = path[len(prefix) :]
    if prefix.endswith("/"):
        rest = "/" + rest
        base_name = prefix[:-1]
    else:
        base_name = prefix
    parts = rest.split("/")
    current = target.rstrip("/")
    consumed = base_name.rstrip("/")
    # The folder is walked straight away: when the first segment is found
    # in it, the target is a folder and needs no stat of its own (one fewer
    # per request).  Otherwise the target decides (_single_program).
    for i in range(1, len(parts)):
        segment = parts[i]
        if not segment:
            break
        candidate = current + "/" + segment
        try:
            st = os.stat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            mounted = _single_program(target, base_name, rest, interpreters) if i == 1 else None
            if mounted is not None:
                return mounted
            raise Refused(404, "no such script", candidate)
        except PermissionError:
            mounted = _single_program(target, base_name, rest, interpreters) if i == 1 else None
            if mounted is not None:
                return mounted
            raise Refused(403, "permission denied", candidate)
        consumed += "/" + segment
        if statmod.S_ISDIR(st.st_mode):
            current = candidate
            continue
        if not statmod.S_ISREG(st.st_mode):
            raise Refused(403, "not a regular file", candidate)
        path_info = "/" + "/".join(parts[i + 1 :]) if i + 1 < len(parts) else ""
        return checked(Target(candidate, consumed, path_info), st, interpreters)
    if current == target.rstrip("/"):
        mounted = _single_program(target, base_name, rest, interpreters)
        if mounted is not None:
            return mounted
    if not path.endswith("/"):
        # A folder named without its slash: to the slashed URL (as Apache's
        # mod_dir and lighttpd do), where it is refused in its turn.
        raise Refused(301, "a folder: redirected to its URL with a slash", current)
    raise Refused(403, "is a directory, not a script", current)


def _single_program(target, base_name, rest, interpreters=None):
    """The Target when the ScriptAlias target is a program (a single-program
    mount: all of the rest of the URL is PATH_INFO); None when it is a
    folder; Refused(404) when it does not exist."""
    try:
        st = os.stat(target)
    except OSError:
        raise Refused(404, "ScriptAlias target does not exist", target)
    if not statmod.S_ISREG(st.st_mode):
        return None
    return checked(
        Target(target, base_name.rstrip("/") if base_name != "/" else "", rest), st, interpreters
    )


def checked(target, st, interpreters=None):
    """``target`` if its program may run; Refused(403) otherwise."""
    if interpreters and os.path.splitext(target.script)[1].lower() in interpreters:
        return target  # run by its interpreter: read, not executed
    if not may_execute(target.script, st):
        raise Refused(403, "not executable", target.script)
    return target


def may_execute(filename, st):
    """Whether this process may execute the file ``st`` describes.  With x
    for everyone (0755 and the like) there is nothing to ask the kernel; a
    refusal it still makes (an ACL, a noexec mount) fails the exec, which
    is answered 403 as well."""
    mode = st.st_mode
    if mode & 0o111 == 0o111:
        return True
    return bool(mode & 0o111) and os.access(filename, os.X_OK)


def document_target(request):
    """The Target for a file among the documents (mapped by uri_to_file)."""
    path_info = request.path_info or ""
    path = request.path
    if path_info:
        script_name = path[: len(path) - len(path_info)]
    elif path.endswith("/"):
        # A folder's DirectoryIndex program: named in full, as Apache's
        # mod_dir does (programs find their base URL from SCRIPT_NAME).
        script_name = path + os.path.basename(request.filename)
    else:
        script_name = path
    return Target(request.filename, script_name, path_info)
