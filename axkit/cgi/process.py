"""A running CGI program: its stdout and stderr read on the reactor with
lean readers (one epoll set for every CGI pipe, or the reactor's own on
axkit's reactor), its stdin fed by Twisted's ProcessWriter, its process
group signalled, and its exit reaped through Twisted's SIGCHLD handling --
the ProcessProtocol calls Twisted's Process would make.  (Creating it is
axkit.cgi.spawn's.)"""

import fcntl
import os
import select

from twisted.internet.interfaces import IReadDescriptor
from twisted.logger import Logger
from zope.interface import implementer

from .. import _compat
from ..reactor import dispatch_directly

log = Logger(namespace="axkit.cgi")

READ_SIZE = 65536
_EPOLLHUP = select.EPOLLHUP


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
        self.pipes = {}  # fd -> _OutPipe being read

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
        fcntl.fcntl(fd, fcntl.F_SETFL, os.O_NONBLOCK)  # a pipe's only flag
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
                return  # its end has run what follows
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
            found, status = pid, 0  # reaped elsewhere: nothing more to learn
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
