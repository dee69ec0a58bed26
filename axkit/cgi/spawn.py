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

Back on the reactor thread, a GroupProcess reads stdout and stderr with
lean readers, feeds stdin with Twisted's ProcessWriter when there is a body
to stream, and is reaped by Twisted's SIGCHLD handling -- delivering the
ProcessProtocol calls Twisted's Process would.  A failed exec (not
executable, bad interpreter line) is reported with its OSError.
"""

import collections
import fcntl
import os
import queue
import select
import subprocess
import sys
import threading
import time

from twisted.internet.interfaces import IReadDescriptor
from twisted.logger import Logger
from zope.interface import implementer

from .. import _compat
from ..reactor import dispatch_directly

log = Logger(namespace="axkit.cgi")

# CPython's process-creating helper, or None where its private signature is
# not the one axkit._compat knows (then every spawn goes through Popen).
_fork_exec = _compat.fork_exec_group_leader

_FS_ENCODING = sys.getfilesystemencoding()
_FS_ERRORS = sys.getfilesystemencodeerrors()

READ_SIZE = 65536
_EPOLLHUP = select.EPOLLHUP

# _GROUP_NOT_SESSION: a program leads a process group (so that a timeout or a
# disconnect can signal it and whatever it started), in the server's session,
# as Apache's and lighttpd's programs do.  A session of its own (setsid)
# would also give it, on Linux with autogroup scheduling, a scheduler group
# of its own -- made and torn down per request, and weighing as much as the
# whole server when the CPU is contended.
SPAWN_THREADS = 4      # spawns in flight at once (each waits for one exec)


class _SpawnThreads:
    """A few threads that create processes; results come back to the reactor.

    Twisted's ThreadPool would do, at three times the CPU per call (its
    team/coordinator machinery); a spawn per request makes that count.  The
    threads do as little as they can while holding the GIL (each time one
    takes it back from the reactor thread costs both a futex round trip):
    the reactor makes the pipes before and closes the child's ends after.
    Finished jobs are queued for the reactor thread, which is woken once
    for however many have finished meanwhile -- and, on axkit's reactor,
    only when it is waiting in its poll: a busy reactor collects them from
    its poll hook before it next waits (no wake-up write and read, no
    thread call).
    """

    def __init__(self, reactor, size):
        self.reactor = reactor
        self.queue = queue.SimpleQueue()
        self.done = collections.deque()
        self.wake_pending = False
        # On axkit's reactor: a wake-up only when it is polling.
        self.hooked = hasattr(reactor, "add_poll_hook")
        if self.hooked:
            reactor.add_poll_hook(self._collect)
        self.threads = [threading.Thread(target=self._work, daemon=True,
                                         name=f"axkit-cgi-spawn-{i}")
                        for i in range(size)]
        for t in self.threads:
            t.start()

    def run(self, job):
        self.queue.put(job)

    def _work(self):
        get = self.queue.get
        done = self.done
        while True:
            job = get()
            if job is None:
                return
            try:
                job.result = job.create()
            except BaseException as e:
                job.error = e
            done.append(job)
            job = None      # (not kept, with its request, until the next one)
            if not self.wake_pending and (not self.hooked or self.reactor.polling):
                self.wake_pending = True
                self.reactor.callFromThread(self._finish)

    def _collect(self):
        # The reactor's poll hook: finished jobs, if any, before it waits.
        if self.done:
            self._finish()
            return True
        return False

    def _finish(self):
        # Cleared before the queue is emptied: a job added after this line
        # either is seen by the loop below or schedules another call.
        self.wake_pending = False
        done = self.done
        # Every report of these jobs' children is complete (vfork), so one
        # look now finds them all.
        reports = _ready_reports()
        while done:
            job = done.popleft()
            try:
                job.finish(reports)
            except Exception:
                log.failure("finishing the start of {program}", program=job.executable)

    def stop(self):
        if self.hooked:
            self.reactor.remove_poll_hook(self._collect)
        for _ in self.threads:
            self.queue.put(None)


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


@dispatch_directly
@implementer(IReadDescriptor)
class _Poller:
    """One epoll set holding every CGI pipe, watched by the reactor as a
    single reader while it holds any.

    Twisted's reactor costs, per pipe, an addReader and a removeReader
    (bookkeeping in Python around each epoll_ctl) and, per event, its
    dispatch wrapped in the legacy log context; a CGI request has two pipes
    and one or two events on them.  Here a pipe is an epoll_ctl and a dict
    entry, and one reactor event hands every ready pipe its doRead.
    """

    def __init__(self, reactor):
        self.reactor = reactor
        self.epoll = select.epoll()
        self.pipes = {}          # fd -> _OutPipe being read

    def fileno(self):
        return self.epoll.fileno()

    def logPrefix(self):
        return "cgi"

    def watch(self, pipe):
        pipes = self.pipes
        if not pipes:
            # The first pipe: the reactor watches the set from now on
            # (until unwatch takes the last one out).
            self.reactor.addReader(self)
        pipes[pipe.fd] = pipe
        self.epoll.register(pipe.fd, select.EPOLLIN)

    def unwatch(self, fd):
        pipes = self.pipes
        if pipes.pop(fd, None) is not None:
            self.epoll.unregister(fd)
            if not pipes:
                self.reactor.removeReader(self)

    def doRead(self):
        pipes = self.pipes
        for fd, events in self.epoll.poll(0):
            pipe = pipes.get(fd)
            if pipe is not None:
                try:
                    pipe.doRead(events)
                except Exception:
                    # As Twisted drops a reader that fails: closed, so that a
                    # fault that repeats cannot keep the pipe ready forever.
                    log.failure("reading a CGI program's output")
                    try:
                        pipe._closed()
                    except Exception:
                        log.failure("closing a CGI program's pipe")

    def connectionLost(self, reason):
        pass


class _ReactorPipes:
    """On axkit's reactor: the pipes in the reactor's own epoll set, each
    handed its event directly (AxKitReactor.add_raw_reader) -- no second
    epoll set to poll, no reader of Twisted's between."""

    def __init__(self, reactor):
        self.reactor = reactor
        self.watch_fd = reactor.add_raw_reader
        self.unwatch = reactor.remove_raw_reader

    def watch(self, pipe):
        self.watch_fd(pipe.fd, pipe)


_poller = None


def _pipe_poller(reactor):
    global _poller
    if _poller is None or _poller.reactor is not reactor:
        if hasattr(reactor, "add_raw_reader"):
            _poller = _ReactorPipes(reactor)
        else:
            _poller = _Poller(reactor)
    return _poller


class _OutPipe:
    """The reader of the child's stdout or stderr (in the _Poller).

    Leaner than Twisted's ProcessReader (no FileDescriptor machinery, no
    Failure per end of file): it reads 64 KiB at a time, and when a short
    read finds the end of file right behind it, the data is handed on as
    the last (``childDataEnding``), so a small response -- head, body, end
    -- can leave in one send.
    """

    __slots__ = ("poller", "proc", "name", "fd", "reading")

    def __init__(self, poller, proc, name, fd):
        self.poller = poller
        self.proc = proc
        self.name = name
        self.fd = fd
        fcntl.fcntl(fd, fcntl.F_SETFL, os.O_NONBLOCK)   # a pipe's only flag
        self.reading = True
        poller.watch(self)

    def startReading(self):
        if not self.reading and self.fd >= 0:
            self.reading = True
            self.poller.watch(self)

    def stopReading(self):
        if self.reading:
            self.reading = False
            self.poller.unwatch(self.fd)

    def doRead(self, events=_EPOLLHUP):
        """Read what the pipe holds.  ``events``, the poller's: without
        EPOLLHUP the writer was still open when it polled, so a short read
        is not followed by a look for the end of file (it would almost
        always find the pipe empty, EAGAIN): the end comes as an event of
        its own."""
        fd = self.fd
        try:
            data = os.read(fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._closed()
            return
        if len(data) < READ_SIZE and events & _EPOLLHUP:
            try:
                more = os.read(fd, READ_SIZE)
            except (BlockingIOError, InterruptedError):
                more = None
            except OSError:
                more = b""
            if more == b"":
                self.proc.proto.childDataEnding(self.name, data)
                self._closed()
                return
            if more:
                data += more
        self.proc.proto.childDataReceived(self.name, data)

    def readFailed(self):
        # (doRead raised, on axkit's reactor.)  As Twisted drops a reader that
        # fails: closed, so that a fault that repeats cannot keep the pipe
        # ready forever.
        self._closed()

    def _closed(self):
        fd = self.fd
        if fd < 0:
            return
        if self.reading:
            self.reading = False
            self.poller.unwatch(fd)
        self.fd = -1
        os.close(fd)
        self.proc._pipe_closed(self.name)


class GroupProcess:
    """A running child that leads its own process group: its pipes, its reaping,
    and the calls of Twisted's IProcessTransport that axkit.cgi.run makes
    (``write``, ``closeStdin``, ``pipes``), delivered to CGIRun much as
    Twisted's Process would (childDataReceived, or childDataEnding for output
    with the end of its pipe right behind it, childConnectionLost, and
    process_over(wait status) once every pipe is closed and the child is
    reaped).

    stdin, when it is a pipe (a request body streamed in), is Twisted's own
    ProcessWriter; stdout and stderr are _OutPipes.  Reaping goes through
    Twisted's SIGCHLD handling (registerReapProcessHandler).
    """

    def __init__(self, reactor, pid, proto, stdin_w, stdout_r, stderr_r):
        self._reactor = reactor
        self.proto = proto
        self.pid = pid
        # The group id is the leader's pid.  Kept apart from
        # .pid, which is cleared once the leader is reaped while its
        # children may live on.
        self._group = pid
        self.status = -1
        self.lostProcess = False
        self.pipes = pipes = {}
        if stdin_w is not None:
            pipes[0] = _compat.stdin_writer(reactor, self, stdin_w)
        poller = _poller
        if poller is None or poller.reactor is not reactor:
            poller = _pipe_poller(reactor)
        pipes[1] = _OutPipe(poller, self, 1, stdout_r)
        pipes[2] = _OutPipe(poller, self, 2, stderr_r)
        self._registered = False

    # -- IProcessTransport, the part CGIRun uses ---------------------------------

    def write(self, data):
        if 0 in self.pipes:
            self.pipes[0].write(data)

    def closeStdin(self):
        if 0 in self.pipes:
            self.pipes[0].loseConnection()

    def close_output(self, *names):
        """Read stdout (1) or stderr (2) no more: our end closed (the
        program gets EPIPE if it writes on), the pipe ended as if at EOF."""
        for name in names:
            pipe = self.pipes.get(name)
            if pipe is not None:
                pipe._closed()

    def abandon(self):
        """Stop waiting for the pipes' ends: the group has been killed, yet
        a pipe still has a writer -- a descendant that left the group
        (``setsid cmd &``, a daemon) and kept stdout or stderr.  Our ends
        are closed (that writer gets EPIPE), then the leader is reaped as
        usual; the run ends and its slot is free."""
        self.close_output(1, 2)
        writer = self.pipes.get(0)
        if writer is not None:
            writer.stopWriting()
            writer.stopReading()
            self.childConnectionLost(0, None)

    def group_alive(self):
        """Whether any process of the group is left (reaping the leader if it
        has exited: at shutdown, with no reactor to do it)."""
        pid = self.pid
        if pid is not None:
            try:
                found, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                found = pid
            if found:
                self.pid = None
        try:
            os.killpg(self._group, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True

    def kill_group(self, sig):
        """Signal the whole process group; False if it is gone."""
        try:
            os.killpg(self._group, sig)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    # -- from the pipes --------------------------------------------------------

    def childConnectionLost(self, name, reason):
        # From the stdin ProcessWriter (its descriptor is ours to close).
        writer = self.pipes.get(name)
        if writer is not None:
            os.close(writer.fileno())
        self._pipe_closed(name)

    def _pipe_closed(self, name):
        pipes = self.pipes
        pipes.pop(name, None)
        try:
            self.proto.childConnectionLost(name)
        except BaseException:
            log.failure("childConnectionLost")
        if name == 1 and 2 in pipes and pipes[2].reading:
            # stdout usually ends because the program has exited, and then
            # stderr is at its end too: read it now rather than in another
            # turn of the reactor (nothing happens if it is not).  (Not when
            # its reading is paused: a stderr flood being logged.)
            pipes[2].doRead()
            if 2 not in pipes:
                return          # its end has run what follows
        if not pipes:
            if self.lostProcess:
                self._over()
            else:
                self.reapProcess()

    # -- reaping ---------------------------------------------------------------

    # A child is reaped when its pipes have all ended (it has usually
    # exited by then); only one still running at that point is handed to
    # Twisted's SIGCHLD handling, which calls reapProcess on every SIGCHLD
    # for every process registered -- a cost per request per running
    # program if every child were registered from its start.

    def reapProcess(self):
        """Reap the child if it has exited (Twisted's SIGCHLD handling calls
        this once the child is registered)."""
        pid = self.pid
        if pid is None:
            return
        try:
            found, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            found, status = pid, 0      # reaped elsewhere: nothing more to learn
        if found:
            if self._registered:
                self._registered = False
                _compat.unwatch_exit(pid, self)
            self.processEnded(status)
        elif not self._registered:
            self._registered = True
            # (This checks once more, in case it exited just now.)
            _compat.watch_exit(pid, self)

    def processEnded(self, status):
        # (Also called by Twisted's reap handling (_compat.watch_exit) for a child
        # that exited just before it was registered.)
        self.status = status
        self.lostProcess = True
        self.pid = None
        if not self.pipes:
            self._over()

    def _over(self):
        # As Twisted's Process: the protocol hears of the end once the child
        # is reaped and every pipe has been read to its end.
        proto, self.proto = self.proto, None
        if proto is None:
            return
        try:
            proto.process_over(self.status)
        except BaseException:
            log.failure("process_over")


class _Job:
    """One process to create.  The reactor thread makes the pipes; a spawn
    thread makes the process (``create``: one C call, the GIL released
    while it waits for the exec); ``finish``, on the reactor thread again,
    closes the child's ends, reads the child's report of a failed exec and
    calls ``done(process, None)`` or ``done(None, exception)``."""

    __slots__ = ("reactor", "protocol", "executable", "args", "env", "env_list", "cwd",
                 "stdin_fd", "ours", "theirs", "errpipe", "result", "error", "done")

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
                stdin_r = stdin_fd          # (not ours to close)
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
            self._close((stdin_r if stdin_fd is None else None, stdin_w, out_r, out_w,
                         err_r, err_w))
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
                return _fork_exec(self.args, self.executable, self.cwd, self.env_list,
                                  stdin, out, err, errpipe_r, errpipe_w)
            except TypeError:
                # A helper of another shape than the known ones: Popen from now on.
                _fork_exec = None
                self.errpipe = None
                _drop_errpipe((errpipe_r, errpipe_w))
        return _via_popen(os.fsdecode(self.executable), self.args, self.env, self.cwd,
                          stdin, out, err)

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
ERRPIPES_KEPT = SPAWN_THREADS * 2     # free pipes kept at most (two fds each)


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
        args, executable=executable, stdin=child_stdin, stdout=out_w, stderr=err_w,
        cwd=cwd, env=env, close_fds=True, process_group=0,
        restore_signals=True)
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
    except TypeError:       # a bytes value (non-ASCII from the wire)
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
