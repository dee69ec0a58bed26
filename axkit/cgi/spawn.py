"""Start a CGI program as a Twisted process, in a session of its own.

``reactor.spawnProcess`` cannot do two things CGI needs: put the child in
its own process group (there is no preexec hook), so a timeout can kill the
script *and* whatever it started; and start it in the script's directory
without a full ``fork()`` of the server (Twisted only uses the cheap
``posix_spawn`` path when the working directory is unchanged).

So we build the same ``twisted.internet.process.Process`` that
spawnProcess builds (pipes, readers, writers, reaping through SIGCHLD --
all Twisted's), and replace only the moment of creation: CPython's
``subprocess`` machinery, which on Linux uses ``vfork()`` (no copy of the
server's memory), ``chdir()``s, calls ``setsid()``, closes every other
descriptor, restores SIGPIPE to its default and execs -- all in C, before
the child runs any code of ours.  A failed exec (not executable, bad
interpreter line) raises here, in the parent, before anything is sent.
"""

import errno
import os
import subprocess

from twisted.internet import process
from twisted.internet.main import CONNECTION_DONE, CONNECTION_LOST

READ_SIZE = 65536


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
        self.dataReceived(data)
        return None


class SessionProcess(process.Process):
    """A child process that leads a new session (so its group can be killed)."""

    processReaderFactory = _BigReader

    def _trySpawnInsteadOfFork(self, path, uid, gid, executable, args, environment,
                               kwargs):
        fdmap = kwargs["fdmap"]
        child = subprocess.Popen(
            args, executable=executable, stdin=fdmap[0], stdout=fdmap[1],
            stderr=fdmap[2], cwd=path, env=environment, close_fds=True,
            start_new_session=True, restore_signals=True)
        # Twisted's SIGCHLD handler reaps this child; subprocess must not
        # (its finaliser would waitpid() it and steal the exit status).
        child._child_created = False
        self.pid = child.pid
        # The session (and group) id is the leader's pid.  Kept apart from
        # .pid, which Twisted clears once the leader is reaped (that can
        # happen before the constructor returns) while its children may
        # live on.
        self._group = child.pid
        self.status = -1
        return True

    def kill_group(self, sig):
        """Signal the whole process group; False if it is gone."""
        try:
            os.killpg(self._group, sig)
            return True
        except (ProcessLookupError, PermissionError):
            return False


def spawn(reactor, protocol, executable, args, env, cwd, stdin_fd=None):
    """Start ``executable``; ``stdin_fd`` (a file) or a pipe as its stdin."""
    child_fds = {0: stdin_fd if stdin_fd is not None else "w", 1: "r", 2: "r"}
    return SessionProcess(reactor, executable, args, env, cwd, protocol,
                          childFDs=child_fds)
