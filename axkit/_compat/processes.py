"""axkit._compat's part for child processes (axkit.cgi): Twisted's process
support and CPython's subprocess helper.  The rules of axkit._compat apply
(each private name wrapped here, checked by tests/test_compat.py)."""

import sys

from twisted.internet import process as _process

# -- Twisted's process support (axkit.cgi.spawn) -----------------------------


def stdin_writer(reactor, proc, fd):
    """Twisted's ``ProcessWriter`` feeding ``fd`` as the child's stdin (name
    0) of ``proc``, with ``forceReadHack`` (the pipe is watched for reading
    too, so a child that closes its stdin is noticed at once).  ``proc``
    gets ``childConnectionLost(0, reason)`` as from Twisted's Process.

    Relies on ``twisted.internet.process.ProcessWriter(reactor, proc, name,
    fileno, forceReadHack)`` (undocumented; tested).  No
    fallback: axkit.cgi needs it to stream a request body."""
    return _process.ProcessWriter(reactor, proc, 0, fd, forceReadHack=True)


def watch_exit(pid, proc):
    """Have Twisted's SIGCHLD handling call ``proc.reapProcess()`` until
    ``pid`` is reaped (``process.registerReapProcessHandler``; it tries
    once at once, and calls ``proc.processEnded(status)`` through
    reapProcess).  Undocumented; tested.  No fallback."""
    _process.registerReapProcessHandler(pid, proc)


def unwatch_exit(pid, proc):
    """Undo `watch_exit` (``process.unregisterReapProcessHandler``)."""
    _process.unregisterReapProcessHandler(pid, proc)


# -- CPython's subprocess helper (axkit.cgi.spawn) ---------------------------

try:
    from _posixsubprocess import fork_exec as _posix_fork_exec
except ImportError:  # pragma: no cover - not CPython on POSIX
    _posix_fork_exec = None

# The Pythons whose subprocess calls _posixsubprocess.fork_exec with the 23
# arguments fork_exec_group_leader passes (tests/test_compat.py reads the
# call in subprocess's own source to confirm it on the running one).
FORK_EXEC_PYTHONS = ((3, 11), (3, 13))


def _fork_exec_group_leader(
    args, executable, cwd, env_list, stdin, stdout, stderr, errpipe_r, errpipe_w
):
    """Start ``executable`` (bytes, in the file system encoding) with
    ``args``, in ``cwd``, with ``env_list`` (``b"K=V"`` items) and
    ``stdin``/``stdout``/``stderr`` (descriptors) as its 0-2, leading a new
    process group, every other descriptor closed, SIGPIPE restored; return
    its pid.  A child that cannot exec writes ``OSError:<hex errno>:<message>``
    to ``errpipe_w`` before it exits (read it from ``errpipe_r``).  On Linux
    it is a ``vfork()``: the call returns once the child has exec'd or
    failed, and releases the GIL while it waits.

    Relies on the private ``_posixsubprocess.fork_exec`` and its 23
    positional arguments, as CPython 3.11 to 3.13 call it (tested with
    3.11).  `fork_exec_group_leader` is None elsewhere -- another Python,
    not POSIX -- and axkit.cgi.spawn starts programs through
    ``subprocess.Popen`` (same behaviour, more CPU per spawn); a TypeError
    from a helper of another shape sends it there too."""
    # subprocess.Popen._execute_child's call for close_fds=True,
    # pass_fds=(errpipe_w,), restore_signals=True, start_new_session=False,
    # process_group=0, no gid/groups/uid/umask/preexec_fn, vfork allowed.
    return _posix_fork_exec(
        args,
        (executable,),
        True,
        (errpipe_w,),
        cwd,
        env_list,
        stdin,
        -1,
        -1,
        stdout,
        -1,
        stderr,
        errpipe_r,
        errpipe_w,
        True,
        False,
        0,
        None,
        None,
        None,
        -1,
        None,
        True,
    )


def _fork_exec_usable(version=None):
    version = tuple((version or sys.version_info)[:2])
    return _posix_fork_exec is not None and FORK_EXEC_PYTHONS[0] <= version <= FORK_EXEC_PYTHONS[1]


# The helper, or None where its signature is not known to be the one above.
fork_exec_group_leader = _fork_exec_group_leader if _fork_exec_usable() else None


def disown_popen(child):
    """Tell the ``subprocess.Popen`` ``child`` that it did not create its
    process, so its finaliser never ``waitpid()``s it: Twisted's SIGCHLD
    handling reaps it and must get its exit status.

    Relies on the private ``Popen._child_created``, read by
    ``Popen.__del__`` (tested with CPython 3.11).  Missing: the
    attribute is set anyway and ignored; a Popen collected before the child
    exits could then reap it first and the CGI run would see status 0."""
    child._child_created = False
