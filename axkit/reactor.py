"""The reactor `twistd axkit` runs on: Twisted's epoll reactor, dispatching
the I/O events of axkit's own connections without the legacy log context.

Twisted's reactor wraps every I/O event in ``log.callWithLogger``: it asks the
selectable for its log prefix, copies the legacy log-context dict, pushes it
on a thread-local stack and pops it again -- about ten Python calls per event,
so that legacy ``log.msg`` calls made while the event is handled carry a
``system`` tag.  axkit logs through ``twisted.logger`` with its own fields, so
for its connections the wrapper buys nothing; for a small keep-alive request
it was about 14% of the server's instructions (bench/hotpath.py measures the
rest; the whole server under callgrind went from ~120k to ~104k instructions
per 1 KiB request).

`AxKitReactor.doPoll` calls Twisted's own dispatch (``_doReadOrWrite``) directly for
selectables whose class, or whose protocol's class, was registered with
`dispatch_directly` (axkit's HTTP connections, the CGI pipes' poller,
Twisted's thread and SIGCHLD wakers), still
logging anything that escapes it, and keeps
``callWithLogger`` for everything else (listening ports, clients a plugin
opens, TLS connections, other protocols).

``twistd -n axkit`` installs it when nothing has chosen a reactor yet;
``twistd --reactor=epoll axkit`` (or any other ``--reactor``) keeps Twisted's.
It is also offered to other twistd programs as ``twistd --reactor=axkit``.
Where epoll or the Twisted internals it builds on are missing, `install` does
nothing and Twisted's default reactor is used.  Those internals are reached
only through axkit._compat (EPollReactorBase, twisted_waker_classes).
"""

import errno
import sys

from twisted.internet import error
from twisted.logger import Logger
from twisted.python import failure, log

from axkit import _compat

try:
    from select import EPOLLIN as _EPOLLIN
except ImportError:  # no epoll: not Linux
    _EPOLLIN = None

# Logs as Twisted's reactor loop logs (namespace twisted.internet.base).
_base_log = Logger(namespace="twisted.internet.base")

# The classes dispatched directly: selectables, or protocols whose
# transports are.
_DIRECT = set()


def dispatch_directly(cls):
    """Dispatch the I/O events of selectables of class ``cls``, of
    transports carrying a protocol of class ``cls``, or of listening ports
    whose factory is of class ``cls``, without Twisted's
    per-event log context (a class decorator).  They must not rely on
    legacy ``log.msg``'s ``system`` tag."""
    _DIRECT.add(cls)
    return cls


# Twisted's own wakers: the one callFromThread writes to (a CGI spawn thread
# hands every started program back through it) and the SIGCHLD one (a CGI
# program ends with it).  Their doRead reads the pipe and, for SIGCHLD,
# reaps; a legacy log.msg made there would be tagged "-" either way.
for _waker in _compat.twisted_waker_classes():
    dispatch_directly(_waker)


def _supported():
    """True when this Twisted's epoll reactor has the internals doPoll uses."""
    return _compat.epoll_reactor_supported()


if _compat.EPollReactorBase is not None:

    class AxKitReactor(_compat.EPollReactorBase):
        """EPollReactor whose ``doPoll`` skips ``log.callWithLogger`` for
        the protocols registered with `dispatch_directly`, and runs poll
        hooks (`add_poll_hook`) before it polls."""

        def __init__(self):
            # Poll hooks: work handed over by other threads, collected once
            # per turn of the loop instead of waking the reactor for each
            # piece (see add_poll_hook).
            self._poll_hooks = []
            self.polling = False
            self._raw_readers = {}  # fd -> reader (see add_raw_reader)
            # Descriptors registered while a batch of events is handled: the
            # rest of the batch is older than they are (see doPoll).
            self._in_batch = False
            self._fresh = set()
            self._closing = []  # transports to close before the next poll
            self._next_turn = []  # calls for after the next poll's events
            _compat.EPollReactorBase.__init__(self)
            # (epoll, selectables, dispatch), looked up once: doPoll and the
            # raw readers use them on every turn.  refresh_epoll_parts()
            # after swapping Twisted's poller (a test does).
            self.epoll = self.epoll_parts()

        def mainLoop(self):
            # Twisted's loop, with its error guard around the loop rather
            # than each turn (as Twisted before 24.7 had it): a turn costs
            # no __enter__/__exit__ calls.  An error escaping a turn is
            # logged as Twisted logs it, and the loop goes on.
            while self._started:
                try:
                    while self._started:
                        self.runUntilCurrent()
                        t2 = self.timeout()
                        t = self.running and t2
                        self.doIteration(t)
                except BaseException:
                    _base_log.failure("Unexpected error in main loop")
            _base_log.info("Main loop terminated.")

        def refresh_epoll_parts(self):
            self.epoll = self.epoll_parts()

        def registering(self, selectable, selectables):
            # Twisted registers a reader or writer; one made while a batch is
            # handled is marked fresh (a new descriptor, not one that only
            # adds writing to its reading).
            if self._in_batch:
                fd = selectable.fileno()
                if fd not in selectables and fd not in self._raw_readers:
                    self._fresh.add(fd)

        def add_raw_reader(self, fd, reader):
            """Watch ``fd`` for reading in the reactor's own epoll set and call
            ``reader.doRead(events)`` (the epoll event mask) when it is ready:
            no FileDescriptor and none of Twisted's reader bookkeeping, one
            ``epoll_ctl``.  An exception escaping ``doRead`` is logged and
            ``reader.readFailed()`` called.  Not in getReaders() or
            removeAll(): the owner removes it (remove_raw_reader)."""
            if self._in_batch:
                self._fresh.add(fd)
            self._raw_readers[fd] = reader
            self.epoll[0].register(fd, _EPOLLIN)

        def remove_raw_reader(self, fd):
            if self._raw_readers.pop(fd, None) is not None:
                self.epoll[0].unregister(fd)

        def add_poll_hook(self, hook):
            """Call ``hook()`` on the reactor thread before each poll; a true
            result means it did work, and the poll that follows does not
            block.  Another thread handing work to a hook need only wake
            the reactor (``wakeUp`` or ``callFromThread``) while
            ``polling`` is true: otherwise the reactor is busy and runs the
            hook before it next waits."""
            self._poll_hooks.append(hook)

        def remove_poll_hook(self, hook):
            if hook in self._poll_hooks:
                self._poll_hooks.remove(hook)

        def close_soon(self, transport):
            """Close the TCP ``transport`` before the next poll, without the
            write-ready turn Twisted's ``loseConnection`` waits for: the
            caller has sent everything (nothing is buffered, no producer)
            and stopped reading.  If something was written meanwhile, it
            is flushed first, the usual way.  (A connection closed after
            its last response: two ``epoll_ctl`` calls, an empty send and a
            turn of the loop fewer.)"""
            transport.disconnecting = 1
            self._closing.append(transport)

        def _close_pending(self):
            closing, self._closing = self._closing, []
            for transport in closing:
                if not transport.connected:
                    continue
                if transport.producer is not None or _compat.write_buffered(transport):
                    transport.startWriting()  # flush, then close (disconnecting)
                    continue
                try:
                    transport.stopReading()
                    transport.stopWriting()
                    transport.connectionLost(_CONNECTION_DONE)
                except Exception:
                    log.err(system=_log_prefix(transport))

        def next_turn(self, fn):
            """Call ``fn()`` once the next poll's events are handled (that
            poll does not wait): a producer that spent its turn's budget
            lets every other connection have its turn, then goes on --
            without watching its socket for writability as Twisted's
            producers do (two ``epoll_ctl`` and an empty send per turn)."""
            self._next_turn.append(fn)

        def doPoll(self, timeout):
            if self._closing:
                self._close_pending()
            later = self._next_turn
            if later:
                self._next_turn = []
                timeout = 0
            hooks = self._poll_hooks
            if hooks:
                # Set before the hooks look for work: work handed over after
                # their look sees it and wakes the poll below.  (With the GIL,
                # the other thread runs only once this thread lets go of it.)
                self.polling = True
                for hook in hooks:
                    try:
                        if hook():
                            timeout = 0
                    except Exception:
                        log.err(system="poll hook")
            if timeout is None:
                timeout = -1
            raw = self._raw_readers
            poller, selectables, drdw = self.epoll
            try:
                events = poller.poll(timeout, len(selectables) + len(raw))
            except OSError as err:
                self.polling = False
                if err.errno == errno.EINTR:
                    return
                raise
            self.polling = False
            direct = _DIRECT
            # A descriptor closed while this batch is handled (a CGI pipe at
            # its end, a connection) may get its number back at once (a pipe
            # made, a connection accepted): this batch's events for that
            # number are the old descriptor's, and would reach the new one --
            # a pipe's hang-up read as a new connection's end.  They are
            # skipped; anything real is reported again by the next poll
            # (level-triggered).
            fresh = self._fresh
            self._in_batch = True
            try:
                self._dispatch(events, selectables, raw, fresh, drdw, direct)
            finally:
                self._in_batch = False
                fresh.clear()
            for fn in later:
                try:
                    fn()
                except Exception:
                    log.err(system="next turn")

        def _dispatch(self, events, selectables, raw, fresh, drdw, direct):
            for fd, event in events:
                if fresh and fd in fresh:
                    continue
                selectable = selectables.get(fd)
                if selectable is None:
                    reader = raw.get(fd)
                    if reader is not None:
                        try:
                            reader.doRead(event)
                        except Exception:
                            log.err(system="raw reader")
                            try:
                                reader.readFailed()
                            except Exception:
                                log.err(system="raw reader")
                    continue
                if event == _EPOLLIN and selectable.__class__ is _TCP_SERVER:
                    # A plain TCP connection with data (or its end) to read.
                    protocol = selectable.protocol
                    sock = getattr(selectable, "socket", None)
                    if protocol.__class__ in direct and sock is not None:
                        # Read here what its doRead would, without the
                        # three calls around it (_doReadOrWrite, doRead,
                        # _dataReceived); what they do with an error too.
                        try:
                            try:
                                data = sock.recv(selectable.bufferSize)
                            except BlockingIOError:
                                continue
                            except OSError:
                                self.disconnect_selectable(selectable, _CONNECTION_LOST, True)
                                continue
                            if not data:
                                self.disconnect_selectable(selectable, _CONNECTION_DONE_ERR, True)
                                continue
                            try:
                                protocol.dataReceived(data)
                            except BaseException:
                                # (As _doReadOrWrite: logged, and the end.)
                                why = sys.exc_info()[1]
                                log.err(system=_log_prefix(selectable))
                                self.disconnect_selectable(selectable, why, True)
                        except KeyboardInterrupt:
                            raise
                        except BaseException:
                            log.err(system=_log_prefix(selectable))
                        continue
                if (
                    selectable.__class__ in direct
                    or getattr(selectable, "protocol", None).__class__ in direct
                ):
                    try:
                        drdw(selectable, fd, event)
                    except KeyboardInterrupt:
                        raise
                    except BaseException:
                        # What callWithLogger would do with it.
                        log.err(system=_log_prefix(selectable))
                elif getattr(selectable, "factory", None).__class__ in direct:
                    # A listening port whose factory is registered.
                    try:
                        if event == _EPOLLIN and selectable.__class__ is _TCP_PORT:
                            _compat.accept_connections(selectable, self)
                        else:
                            drdw(selectable, fd, event)
                    except KeyboardInterrupt:
                        raise
                    except BaseException:
                        log.err(system=_log_prefix(selectable))
                else:
                    log.callWithLogger(selectable, drdw, selectable, fd, event)

        doIteration = doPoll
else:
    AxKitReactor = None


# Listening ports of this class (plain TCP) accept through
# _compat.accept_connections, where it can run.
_TCP_PORT = _compat.TCPPort if _compat.accept_connections_supported() else None

# Plain TCP connections whose reads axkit's reactor does itself (see
# _dispatch), when the Twisted internals that takes are there.
_TCP_SERVER = _compat.TCPServer if _compat.tcp_read_supported() else None
_CONNECTION_LOST = error.ConnectionLost()
_CONNECTION_DONE_ERR = error.ConnectionDone()

# (Twisted's reactor, too, hands every cleanly closed connection one shared
# Failure: its _disconnectSelectable's faildict.)
_CONNECTION_DONE = failure.Failure(error.ConnectionDone())


def _log_prefix(selectable):
    try:
        return selectable.logPrefix()
    except BaseException:
        return "(buggy logPrefix method)"


def install():
    """Install `AxKitReactor` as the global reactor (``--reactor=axkit``)."""
    if not _supported():
        raise ImportError("AxKitReactor needs Twisted's epoll reactor")
    from twisted.internet.main import installReactor

    reactor = AxKitReactor()
    installReactor(reactor)
    return reactor


def install_default():
    """Install `AxKitReactor` unless a reactor is installed already (chosen
    with ``twistd --reactor``, or imported by something); returns the
    installed reactor or None."""
    if "twisted.internet.reactor" in sys.modules or not _supported():
        return None
    return install()
