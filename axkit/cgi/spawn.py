"""Start a CGI program as a Twisted process, leading a process group of its
own, without stalling the reactor.

``reactor.spawnProcess`` does not fit CGI on three counts:

* it cannot put the child in its own process group (there is no preexec
  hook), and a timeout must kill the script *and* whatever it started;
* it uses the cheap ``posix_spawn`` only when the working directory is left
  unchanged; CGI wants the script's folder, so it would ``fork()`` the whole
  server;
* it creates the process on the reactor thread, which waits until the child
  has exec'd -- a millisecond or more per request, during which nothing
  else is served.

So the child is created the way CPython's ``subprocess`` creates one -- on
Linux a ``vfork()`` (no copy of the server's memory), then ``chdir()``,
``setpgid(0, 0)``, closing every other descriptor, restoring SIGPIPE's default
and exec, all in C before any code of ours runs in the child -- by calling
its C helper (``_posixsubprocess.fork_exec``, through
axkit._compat.fork_exec_group_leader) directly, on a small
dedicated thread pool, which releases the GIL while it waits for the exec.
(``Popen`` itself, around the same call, cost more CPU than all the rest of
a CGI request; it is still used on Python versions whose helper has another
signature.)  The pipes are made and the child's ends closed on the reactor
thread, so a spawn thread holds the GIL only briefly.

Back on the reactor thread, a GroupProcess (axkit.cgi.process) reads stdout and stderr with
lean readers, feeds stdin with Twisted's ProcessWriter when there is a body
to stream, and is reaped by Twisted's SIGCHLD handling -- delivering the
ProcessProtocol calls Twisted's Process would.  A failed exec (not
executable, bad interpreter line) is reported with its OSError.
"""

import os
import select
import subprocess
import sys
import time

from twisted.logger import Logger

from .. import _compat
from ..handback import HandBackThreads
from .process import GroupProcess

log = Logger(namespace="axkit.cgi")

# CPython's process-creating helper, or None where its private signature is
# not the one axkit._compat knows (then every spawn goes through Popen).
_fork_exec = _compat.fork_exec_group_leader

_FS_ENCODING = sys.getfilesystemencoding()
_FS_ERRORS = sys.getfilesystemencodeerrors()


# _GROUP_NOT_SESSION: a program leads a process group (so that a timeout or a
# disconnect can signal it and whatever it started), in the server's session,
# as Apache's and lighttpd's programs do.  A session of its own (setsid)
# would also give it, on Linux with autogroup scheduling, a scheduler group
# of its own -- made and torn down per request, and weighing as much as the
# whole server when the CPU is contended.
SPAWN_THREADS = 4  # spawns in flight at once (each waits for one exec)


class _SpawnThreads(HandBackThreads):
    """A few threads that create processes; results come back to the reactor
    (axkit.handback: batched, through its poll hook when it is busy).  The
    reactor makes the pipes before and closes the child's ends after, so a
    spawn thread holds the GIL only briefly."""

    def __init__(self, reactor, size):
        super().__init__(reactor, size, "axkit-cgi-spawn")

    run = HandBackThreads.submit

    def deliver(self, done):
        # Every report of these jobs' children is complete (vfork), so one
        # look now finds them all.
        reports = _ready_reports()
        while done:
            job, ok, value = done.popleft()
            if ok:
                job.result = value
            else:
                job.error = value
            try:
                job.finish(reports)
            except Exception:
                log.failure("finishing the start of {program}", program=job.executable)


_pool = None


def _spawn_pool(reactor):
    global _pool
    if _pool is None:
        _pool = _SpawnThreads(reactor, SPAWN_THREADS)
        reactor.addSystemEventTrigger("during", "shutdown", _stop_pool)
    return _pool


def _stop_pool():
    global _pool
    pool, _pool = _pool, None
    if pool is not None:
        pool.stop()


class _Job:
    """One process to create.  The reactor thread makes the pipes; a spawn
    thread makes the process (``create``: one C call, the GIL released
    while it waits for the exec); ``finish``, on the reactor thread again,
    closes the child's ends, reads the child's report of a failed exec and
    calls ``done(process, None)`` or ``done(None, exception)``."""

    __slots__ = (
        "reactor",
        "protocol",
        "executable",
        "args",
        "env",
        "env_list",
        "cwd",
        "stdin_fd",
        "ours",
        "theirs",
        "errpipe",
        "result",
        "error",
        "done",
    )

    def __init__(self, reactor, protocol, executable, args, env, cwd, stdin_fd, done):
        self.reactor = reactor
        self.protocol = protocol
        self.args = args
        self.env = env
        self.cwd = cwd
        self.done = done
        self.result = self.error = None
        self.stdin_fd = stdin_fd
        stdin_r = stdin_w = out_r = out_w = err_r = err_w = None
        try:
            if stdin_fd is None:
                stdin_r, stdin_w = os.pipe()
            else:
                stdin_r = stdin_fd  # (not ours to close)
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            if _fork_exec is not None:
                self.env_list = _env_list(env)
                self.executable = executable.encode(_FS_ENCODING, _FS_ERRORS)
                self.errpipe = _errpipes.pop() if _errpipes else _errpipe()
            else:
                self.executable = executable
                self.errpipe = self.env_list = None
        except BaseException:
            self._close(
                (stdin_r if stdin_fd is None else None, stdin_w, out_r, out_w, err_r, err_w)
            )
            raise
        self.ours = (stdin_w, out_r, err_r)
        # The child's ends, closed once it has them (stdin: only a pipe's).
        self.theirs = (stdin_r, out_w, err_w)

    def create(self):
        """In a spawn thread: the child's pid, or an exception."""
        global _fork_exec
        stdin, out, err = self.theirs
        if self.errpipe is not None and _fork_exec is not None:
            errpipe_r, errpipe_w = self.errpipe
            try:
                # A process group, not a session (start_new_session): see
                # _GROUP_NOT_SESSION.
                return _fork_exec(
                    self.args,
                    self.executable,
                    self.cwd,
                    self.env_list,
                    stdin,
                    out,
                    err,
                    errpipe_r,
                    errpipe_w,
                )
            except TypeError:
                # A helper of another shape than the known ones: Popen from now on.
                _fork_exec = None
                self.errpipe = None
                _drop_errpipe((errpipe_r, errpipe_w))
        return _via_popen(
            os.fsdecode(self.executable), self.args, self.env, self.cwd, stdin, out, err
        )

    run = create  # (what a HandBackThreads thread calls)

    def finish(self, reports=None):
        """On the reactor thread: release the child's ends, report.
        ``reports``: the report pipes with something to read (see
        _SpawnThreads._finish), or None to look in this job's."""
        theirs = self.theirs
        self._close(theirs if self.stdin_fd is None else theirs[1:])
        error = self.error
        errpipe = self.errpipe
        if errpipe is not None:
            if error is None and (reports is None or errpipe[0] in reports):
                error = self._exec_report(errpipe[0])
            # Back to the free pipes (the report, if any, has been read).
            if _REUSE_ERRPIPES and len(_errpipes) < ERRPIPES_KEPT:
                _errpipes.append(errpipe)
            else:
                _drop_errpipe(errpipe)
        if error is None:
            try:
                proc = GroupProcess(self.reactor, self.result, self.protocol, *self.ours)
            except BaseException as e:
                error = e
            else:
                self.done(proc, None)
                return
        self._close(self.ours)
        self.done(None, error)

    def _exec_report(self, errpipe_r):
        # fork_exec uses vfork: it returns once the child has exec'd or has
        # exited, and a child that cannot exec writes why before it exits.
        # So the report is complete now, or there is none (EAGAIN: the write
        # end is still open, ours and, until its exec, the child's).
        global _REUSE_ERRPIPES
        try:
            report = os.read(errpipe_r, 50000)
        except BlockingIOError:
            return None
        if not report:
            return None
        if not _reaped_soon(self.result):
            # A report, and the child not exiting: the helper fell back to
            # fork() (vfork refused), so reports can come late -- this one
            # may be an earlier child's.  From now on a pipe per child; this
            # child's failure, if it was one, shows as an exit with status
            # 255 and no output (a 502).
            _REUSE_ERRPIPES = False
            return None
        return _exec_error(report, os.fsdecode(self.executable), self.cwd)

    @staticmethod
    def _close(fds):
        for fd in fds:
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass


# Pipes on which a child reports a failed exec, free for the next child (one
# per spawn in flight: taken by a _Job, given back once its report is read).
# With vfork a child's report is complete before fork_exec returns, so a pipe
# read empty holds nothing late and can serve again: one pipe2 and two
# closes fewer per request.  Off (a pipe per child) if the helper is found
# using fork (see _Job._exec_report).
_errpipes = []
_REUSE_ERRPIPES = sys.platform.startswith("linux")
ERRPIPES_KEPT = SPAWN_THREADS * 2  # free pipes kept at most (two fds each)


def spare_descriptors():
    """The descriptors of the free exec-report pipes (kept open on purpose)."""
    return 2 * len(_errpipes)


def _reaped_soon(pid, tries=40, pause=0.0005):
    """Reap ``pid``, a child that wrote an exec report and so is exiting
    (status 255): True once reaped, False if it is still running after
    ``tries`` short pauses (at most 20 ms: then it is not exiting at all)."""
    for _ in range(tries):
        try:
            found, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return True
        if found:
            return True
        time.sleep(pause)
    return False


# The read ends of every report pipe, in an epoll set of their own: one look
# (epoll_wait, timeout 0) tells which of a batch of finished spawns has a
# report to read -- almost never one -- instead of a read failing with
# EAGAIN, and its exception, per spawn.
_reports = None


def _errpipe():
    """The pipe on which the child reports a failed exec (non-blocking: see
    _Job._exec_report); as subprocess makes it, its write end is never one
    of the child's 0-2."""
    global _reports
    r, w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    low = []
    while w < 3:
        low.append(w)
        w = os.dup(w)
    for fd in low:
        os.close(fd)
    if _reports is None:
        _reports = select.epoll()
    _reports.register(r, select.EPOLLIN)
    return r, w


def _drop_errpipe(errpipe):
    try:
        _reports.unregister(errpipe[0])
    except (OSError, ValueError, AttributeError):
        pass
    _Job._close(errpipe)


def _ready_reports():
    """The report pipes holding a report now (a set; usually empty)."""
    if _reports is None:
        return None
    ready = _reports.poll(0)
    return {fd for fd, _ in ready} if ready else ()


def _via_popen(executable, args, env, cwd, child_stdin, out_w, err_w):
    child = subprocess.Popen(
        args,
        executable=executable,
        stdin=child_stdin,
        stdout=out_w,
        stderr=err_w,
        cwd=cwd,
        env=env,
        close_fds=True,
        process_group=0,
        restore_signals=True,
    )
    # Twisted's SIGCHLD handler reaps this child; subprocess must not (its
    # finaliser would waitpid() it and steal the exit status).
    _compat.disown_popen(child)
    return child.pid


def _env_list(env):
    """The environment as execve wants it (what subprocess builds from a dict).

    Names need no check: every name comes from a validated directive, the
    protocol's own list, or a header name made of letters, digits and '_'.
    """
    try:
        # All str (the common case): joins and one encode, one split, all in C.
        joined = "\0".join(map("=".join, env.items()))
    except TypeError:  # a bytes value (non-ASCII from the wire)
        pass
    else:
        out = joined.encode(_FS_ENCODING, _FS_ERRORS).split(b"\0")
        if len(out) == len(env):
            return out
        # An embedded NUL: the entry by entry path, where fork_exec refuses it.
    out = []
    for name, value in env.items():
        name = name.encode(_FS_ENCODING, _FS_ERRORS)
        if type(value) is not bytes:
            value = value.encode(_FS_ENCODING, _FS_ERRORS)
        out.append(name + b"=" + value)
    return out


def _exec_error(report, executable, cwd):
    """The exception subprocess would raise for the child's ``report``."""
    try:
        name, hex_errno, message = report.split(b":", 2)
        message = message.decode()
        number = int(hex_errno, 16)
    except ValueError:
        return subprocess.SubprocessError(f"bad exec report from child: {report!r}")
    if name != b"OSError" or not number:
        return subprocess.SubprocessError(message or name.decode("ascii", "replace"))
    # "noexec": the chdir before the exec failed.
    return OSError(number, os.strerror(number), cwd if message == "noexec" else executable)


def spawn(reactor, protocol, executable, args, env, cwd, stdin_fd, done):
    """Start ``executable`` with ``stdin_fd`` (an open file) or a pipe (None)
    as stdin, off the reactor thread.

    Later, on the reactor thread, calls ``done(process, None)`` with the
    GroupProcess (already connected to ``protocol``), or ``done(None,
    exception)``: the OSError of a failed exec or of making the pipes (then
    possibly before this returns).
    """
    try:
        job = _Job(reactor, protocol, executable, args, env, cwd, stdin_fd, done)
    except (OSError, ValueError) as e:
        done(None, e)
        return
    _spawn_pool(reactor).run(job)
