"""Start a CGI program as a Twisted process, in a session of its own, without
stalling the reactor.

``reactor.spawnProcess`` does not fit CGI on three counts:

* it cannot put the child in its own process group (there is no preexec
  hook), and a timeout must kill the script *and* whatever it started;
* it uses the cheap ``posix_spawn`` only when the working directory is left
  unchanged; CGI wants the script's folder, so it would ``fork()`` the whole
  server;
* it creates the process on the reactor thread, which waits until the child
  has exec'd -- a millisecond or more per request, during which nothing
  else is served.

So the child is created by CPython's ``subprocess`` machinery -- on Linux a
``vfork()`` (no copy of the server's memory), then ``chdir()``, ``setsid()``,
closing every other descriptor, restoring SIGPIPE's default and exec, all in
C before any code of ours runs in the child -- on a small dedicated thread
pool, which releases the GIL while it waits for the exec.  Back on the
reactor thread, the parent's pipe ends are wrapped in the same
``twisted.internet.process.Process`` that spawnProcess builds (Twisted's
readers, writers and SIGCHLD reaping, unchanged).  A failed exec (not
executable, bad interpreter line) fails the Deferred with the OSError.
"""

import errno
import os
import queue
import subprocess
import threading

from twisted.internet import process
from twisted.internet.main import CONNECTION_DONE, CONNECTION_LOST
from twisted.internet.defer import Deferred

READ_SIZE = 65536
SPAWN_THREADS = 4      # spawns in flight at once (each waits for one exec)

class _SpawnThreads:
    """A few threads that create processes; results come back to the reactor.

    Twisted's ThreadPool would do, at three times the CPU per call (its
    team/coordinator machinery); a spawn per request makes that count.
    """

    def __init__(self, reactor, size):
        self.reactor = reactor
        self.queue = queue.SimpleQueue()
        self.threads = [threading.Thread(target=self._work, daemon=True,
                                         name=f"axkit-cgi-spawn-{i}")
                        for i in range(size)]
        for t in self.threads:
            t.start()

    def run(self, f, *args):
        d = Deferred()
        self.queue.put((f, args, d))
        return d

    def _work(self):
        call = self.reactor.callFromThread
        while True:
            item = self.queue.get()
            if item is None:
                return
            f, args, d = item
            try:
                result = f(*args)
            except BaseException as e:
                call(d.errback, e)
            else:
                call(d.callback, result)

    def stop(self):
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


class _BigReader(process.ProcessReader):
    """Reads a pipe 64 KiB at a time (Twisted's default is 8 KiB)."""

    def doRead(self):
        try:
            data = os.read(self.fd, READ_SIZE)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EINTR):
                return None
            return CONNECTION_LOST
        if not data:
            return CONNECTION_DONE
        if len(data) < READ_SIZE:
            # A short read often means the program has finished writing: when
            # its end of file is already there, report it in the same turn, so
            # a small response (head, body, last chunk) leaves in one send.
            try:
                more = os.read(self.fd, READ_SIZE)
            except OSError:
                more = None
            if more == b"":
                self.dataReceived(data)
                return CONNECTION_DONE
            if more:
                data += more
        self.dataReceived(data)
        return None


class SessionProcess(process.Process):
    """A running child that leads its own session, wrapped as Twisted's Process."""

    processReaderFactory = _BigReader

    def __init__(self, reactor, pid, proto, stdin_w, stdout_r, stderr_r):
        # What process.Process.__init__ does after its fork, minus the fork.
        self._reactor = reactor
        process._BaseProcess.__init__(self, proto)
        self.pipes = {}
        self.pid = pid
        # The session (and group) id is the leader's pid.  Kept apart from
        # .pid, which Twisted clears once the leader is reaped while its
        # children may live on.
        self._group = pid
        self.status = -1
        if stdin_w is not None:
            self.pipes[0] = self.processWriterFactory(reactor, self, 0, stdin_w,
                                                      forceReadHack=True)
        self.pipes[1] = self.processReaderFactory(reactor, self, 1, stdout_r)
        self.pipes[2] = self.processReaderFactory(reactor, self, 2, stderr_r)
        proto.makeConnection(self)
        process.registerReapProcessHandler(pid, self)

    def kill_group(self, sig):
        """Signal the whole process group; False if it is gone."""
        try:
            os.killpg(self._group, sig)
            return True
        except (ProcessLookupError, PermissionError):
            return False


def _popen(executable, args, env, cwd, stdin_fd):
    """In a pool thread: make the pipes, create the child, keep our ends.

    Returns (pid, stdin write end or None, stdout read end, stderr read end).
    Every descriptor made here is close-on-exec, so a child being created at
    the same time by another thread never inherits one.
    """
    ours, theirs = [], []
    try:
        if stdin_fd is None:
            r, w = os.pipe()
            theirs.append(r)
            ours.append(w)
            child_stdin, stdin_w = r, w
        else:
            child_stdin, stdin_w = stdin_fd, None
        out_r, out_w = os.pipe()
        ours.append(out_r)
        theirs.append(out_w)
        err_r, err_w = os.pipe()
        ours.append(err_r)
        theirs.append(err_w)
        child = subprocess.Popen(
            args, executable=executable, stdin=child_stdin, stdout=out_w, stderr=err_w,
            cwd=cwd, env=env, close_fds=True, start_new_session=True,
            restore_signals=True)
    except BaseException:
        for fd in ours:
            os.close(fd)
        raise
    finally:
        for fd in theirs:
            os.close(fd)
    # Twisted's SIGCHLD handler reaps this child; subprocess must not (its
    # finaliser would waitpid() it and steal the exit status).
    child._child_created = False
    return child.pid, stdin_w, out_r, err_r


def spawn(reactor, protocol, executable, args, env, cwd, stdin_fd=None):
    """Start ``executable`` with ``stdin_fd`` (an open file) or a pipe as stdin.

    Returns a Deferred firing with the SessionProcess (already connected to
    ``protocol``), or failing with the OSError of a failed exec.
    """
    d = _spawn_pool(reactor).run(_popen, executable, args, env, cwd, stdin_fd)

    def started(result):
        pid, stdin_w, out_r, err_r = result
        return SessionProcess(reactor, pid, protocol, stdin_w, out_r, err_r)

    d.addCallback(started)
    return d
