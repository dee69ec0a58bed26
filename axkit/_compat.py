"""Every private Twisted or CPython internal axkit relies on, in one place.

axkit's fast paths lean on a few internals that no public API offers: the
epoll reactor's bookkeeping, the write buffer of Twisted's TCP transport,
twistd's exit signal, CPython's C helper behind ``subprocess``.  Each one is
wrapped here in a small named function or constant whose docstring says
what it relies on, which versions it was tested with, and what happens
where it is missing (the fallback).  Nothing else in axkit is to name a
private attribute of Twisted or CPython (tests/test_compat.py checks, and
lists the files still waiting to be switched over).

tests/test_compat.py checks each one still exists and behaves as relied on,
so an upgrade that drops or changes one fails a test there -- instead of
silently turning a fast path off (a slower server nobody notices) or, worse,
leaving it on and wrong.  Why over 500 lines: the point of the module is
that there is one place to audit at an upgrade; its pieces are small and
independent (a reader looks one up by name), so splitting it would only
make that audit span files.  To admit a new Twisted or Python: run that test
module on it, fix what fails here, then raise the bound in pyproject.toml
and the versions below.

Tested on CPython 3.11.7 (Linux, epoll) with Twisted 26.10.0 (the whole
suite on both reactors), 26.4.0 and 24.3.0 (tests/test_compat.py, and the
whole suite on axkit's reactor: 24.3.0 fails only its TLS tests, inside
pyOpenSSL 26, which Twisted before 26.4 does not support); "tested" below
means these.
"""

import sys

from twisted.internet import process as _process
from twisted.internet import tcp as _tcp

TESTED_TWISTED = ("24.3.0", "26.4.0", "26.10.0")
TESTED_PYTHON = (3, 11, 7)


# -- Twisted's epoll reactor (axkit.reactor) ---------------------------------

try:
    from twisted.internet.epollreactor import EPollReactor
except ImportError:  # no epoll: not Linux
    EPollReactor = None


def epoll_reactor_supported():
    """Whether this Twisted's ``EPollReactor`` has the internals
    `EPollReactorBase` hands to axkit's reactor: the methods
    ``_doReadOrWrite(selectable, fd, event)`` (posixbase._PollLikeMixin) and
    ``_add(xer, primary, other, selectables, event, antievent)``, and the
    ``_poller`` (a ``select.epoll``) and ``_selectables`` (fd -> selectable)
    that its ``__init__`` sets (found in its code's names: no reactor is
    made to look).

    Tested Twisted versions have them all.  Missing: `axkit.reactor.install`
    refuses and ``twistd axkit`` runs on Twisted's default reactor --
    correct, with the per-event log context back (about 14% more
    instructions per small request)."""
    if EPollReactor is None:
        return False
    names = EPollReactor.__init__.__code__.co_names
    return (
        all(hasattr(EPollReactor, name) for name in ("_doReadOrWrite", "doPoll", "_add"))
        and "_selectables" in names
        and "_poller" in names
    )


if EPollReactor is not None:

    class EPollReactorBase(EPollReactor):
        """Twisted's EPollReactor with the private parts a replacement
        ``doPoll`` needs under names of ours: `epoll_parts`, and
        `registering`, called as Twisted registers a reader or writer.

        Relies on what `epoll_reactor_supported` checks, and on
        ``EPollReactor.doPoll`` doing no more than poll ``_poller`` and hand
        each event to ``_doReadOrWrite`` (tests/test_compat.py fingerprints
        it: a Twisted whose doPoll does more fails there).  Tested with
        Twisted 24.3 to 26.10."""

        def epoll_parts(self):
            """``(epoll, selectables, dispatch)``: the reactor's
            ``select.epoll`` (Twisted's ``_poller``), its dict fd -> selectable
            (``_selectables``) and ``dispatch(selectable, fd, event)``, the
            bound ``_doReadOrWrite`` that does a selectable's read or write
            and handles its end.  Looked up at each call (a test may swap the
            poller)."""
            return self._poller, self._selectables, self._doReadOrWrite

        def registering(self, selectable, selectables):
            """Called as Twisted is about to register ``selectable`` for
            reading or writing (``selectables``: the dict it will be added
            to, by fd).  Does nothing here; subclasses override it."""

        def disconnect_selectable(self, selectable, why, is_read):
            """Twisted's end of a selectable after ``doRead`` returned or
            raised ``why`` (``_disconnectSelectable``: half-close for a
            clean end of a read, else ``connectionLost``)."""
            self._disconnectSelectable(selectable, why, is_read)

        def _add(self, xer, primary, other, selectables, event, antievent):
            # Twisted's private registration of every addReader/addWriter.
            self.registering(xer, selectables)
            EPollReactor._add(self, xer, primary, other, selectables, event, antievent)
else:
    EPollReactorBase = None


def twisted_waker_classes():
    """Twisted's own waker classes: the pipe ``callFromThread`` writes to
    (``_UnixWaker``, or ``_SocketWaker``) and the SIGCHLD one
    (``_SIGCHLDWaker``), from the private ``twisted.internet._signals``
    (tested).

    axkit.reactor dispatches them without the log context (a CGI program's
    start and end each pass through one).  Missing: an empty tuple, and
    they go through Twisted's ``callWithLogger`` -- correct, a few calls
    more per CGI request."""
    try:
        from twisted.internet import _signals
    except ImportError:  # pragma: no cover - other Twisted
        return ()
    return tuple(
        getattr(_signals, name)
        for name in ("_UnixWaker", "_SocketWaker", "_SIGCHLDWaker")
        if hasattr(_signals, name)
    )


# -- twistd's exit status (axkit.server) -------------------------------------


def forget_exit_signal(reactor, signums):
    """After a graceful stop that ``reactor`` began for one of ``signums``
    (SIGTERM, SIGINT), forget the signal, so twistd exits 0 instead of
    killing itself with it again at the end (status -15/-2, which systemd
    and shells report as a failure).  Returns True if it was forgotten.

    Relies on the reactor's private ``_exitSignal`` (set by
    ``ReactorBase.sigTerm``/``sigInt``; declared by the private
    ``twisted.internet.interfaces._ISupportsExitSignalCapturing``), which
    twistd's ``ApplicationRunner.startReactor`` reads once the reactor has
    stopped (tested).  Missing: nothing is forgotten and
    a graceful stop ends with the signal's status -- the stop itself is
    unchanged."""
    if getattr(reactor, "_exitSignal", None) in signums:
        reactor._exitSignal = None
        return True
    return False


# -- Twisted's TCP transport (axkit.http.connection, axkit.http.producers) ---

TCPServer = _tcp.Server
"""The class of a plain server-side TCP transport (``twisted.internet.tcp.
Server``).  A TLS connection's transport is another class wrapping one."""

TCPPort = _tcp.Port
"""The class of a plain TCP listening port (``twisted.internet.tcp.Port``)."""

TCPConnection = _tcp.Connection
"""The base class of Twisted's TCP transports, server and client side
(``twisted.internet.tcp.Connection``): a socket of its own to ``sendfile``
into, once `write_buffered` says Twisted holds nothing for it."""


def tcp_read_supported():
    """Whether axkit's reactor may read a plain TCP transport itself (as
    ``tcp.Connection.doRead`` does: ``socket.recv(bufferSize)``, then the
    protocol's ``dataReceived``, an empty read being the end): the
    transport's ``socket``, ``bufferSize`` and ``protocol`` attributes and
    the reactor's ``_disconnectSelectable`` (undocumented; tested)."""
    return (
        hasattr(TCPConnection, "bufferSize")
        and hasattr(TCPConnection, "doRead")
        and EPollReactor is not None
        and hasattr(EPollReactor, "_disconnectSelectable")
    )


def plain_tcp(transport):
    """``(peer, socket)`` of a plain TCP server-side transport -- exactly
    `TCPServer`, never TLS -- or None.  ``peer`` is the address tuple
    ``accept()`` gave (``Server.client``: no IPv4Address built), ``socket``
    the connected socket, for sending without queueing and for reading the
    kernel's send queue.

    Relies on ``tcp.Server.client`` and ``tcp.Connection.socket``
    (undocumented attributes; tested).  Missing (another class): None,
    and the connection goes the way a TLS one does (getPeer, every write
    through the transport)."""
    if type(transport) is TCPServer:
        return transport.client, transport.socket
    return None


def accept_connections(port, reactor):
    """Accept the connections waiting on the listening TCP ``port`` (a
    ``tcp.Port``), as its ``doRead`` does, with less work per connection:
    no buffered-logs context, no address object (``factory.buildProtocol``
    gets the ``(host, port)`` tuple accept() returned -- axkit's
    HTTPFactory ignores it), no generator, and the socket made from
    ``socket._accept()``'s descriptor without the enum conversions of
    ``socket.accept()``.  The transport is the port's own class
    (``tcp.Server``), made as Twisted makes it.  Any accept error but
    EAGAIN (EMFILE, ENFILE, EPERM ...) is left to Twisted's ``doRead``,
    which recovers from it.

    Relies on ``socket.socket._accept`` (CPython's private C method;
    tested with 3.11) and on ``tcp.Port``'s ``socket``, ``factory``,
    ``transport``, ``sessionno``, ``numberAccepts`` and ``addressFamily``
    (undocumented; tested).  axkit.reactor uses it only when
    `accept_connections_supported` says so; elsewhere the port's own
    ``doRead`` runs."""
    import socket

    listener = port.socket
    factory = port.factory
    transport_class = port.transport
    family = port.addressFamily
    limit = port.numberAccepts
    accepted = 0
    while accepted < limit:
        try:
            fd, addr = listener._accept()
        except BlockingIOError:
            break
        except InterruptedError:
            continue
        except OSError:
            port.doRead()  # Twisted's recovery (EMFILE's reserved descriptor ...)
            return
        skt = socket.socket(family, socket.SOCK_STREAM, 0, fd)
        accepted += 1
        if len(addr) == 4:
            # IPv6: the scope id in the host, as Twisted's Port gives it.
            host = socket.getnameinfo(addr, socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
            addr = (host[0], *addr[1:])
        protocol = factory.buildProtocol(addr)
        if protocol is None:
            skt.close()
            continue
        session = port.sessionno
        port.sessionno = session + 1
        protocol.makeConnection(transport_class(skt, protocol, addr, port, session, reactor))
    # Twisted's scaling of its accept loop to the traffic.
    port.numberAccepts = limit + 20 if accepted == limit else max(1, accepted)


def accept_connections_supported():
    """Whether `accept_connections` can run here: CPython's
    ``socket._accept`` and Twisted's ``tcp.Port`` attributes it uses."""
    import socket

    return hasattr(socket.socket, "_accept") and all(
        hasattr(_tcp.Port, name) for name in ("transport", "addressFamily", "sessionno")
    )


def can_send_now(transport):
    """Whether bytes written straight to the socket of the plain TCP
    ``transport`` would leave in order: Twisted's write buffer
    (``dataBuffer`` and the private ``_tempDataBuffer``) is empty, no
    producer is registered and the transport is not closing.

    Relies on ``abstract.FileDescriptor``'s two-part write buffer (Twisted
    tested).  A Twisted that buffered elsewhere would make a direct
    send overtake bytes it still holds: tests/test_compat.py checks that
    what ``write`` keeps is seen here."""
    return (
        not transport.dataBuffer
        and not transport._tempDataBuffer
        and transport.producer is None
        and not transport.disconnecting
    )


def write_buffered(transport):
    """Bytes written to ``transport`` that Twisted still holds in its own
    buffer (``dataBuffer`` from ``offset`` on, plus the private
    ``_tempDataLen`` queued behind it), or None when ``transport`` has no
    such buffer (a TLS wrapper, a test transport).

    Relies on ``abstract.FileDescriptor`` (tested).  Missing:
    None -- sendfile is not used (files go through the bounded producer) and
    SendTimeout sees no buffer to watch at that level."""
    try:
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    except AttributeError:
        return None


def write_buffer_mark(transport):
    """A value that changes whenever Twisted sends from ``transport``'s write
    buffer: ``(id(dataBuffer), offset)``, or None without such a buffer
    (see `write_buffered`).  SendTimeout compares two marks to tell a
    client that reads from one that does not."""
    try:
        return id(transport.dataBuffer), transport.offset
    except AttributeError:
        return None


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


# -- weakref (bundled plugins' per-scope caches) -----------------------------


def weak_key_data(mapping):
    """The plain dict behind the ``weakref.WeakKeyDictionary`` ``mapping``,
    keyed by ``weakref.ref(key)``: ``weak_key_data(d).get(weakref.ref(k))``
    is ``d.get(k)`` in one C call (``WeakKeyDictionary.get`` is a Python
    method).  Read only; write through ``mapping``.

    Relies on ``WeakKeyDictionary.data`` (undocumented; tested with CPython
    3.11) staying the same dict for the mapping's life.  No
    fallback (an AttributeError at plugin creation)."""
    return mapping.data


# -- the PROXY protocol (axkit/http/proxy_header.py) -------------------------


def proxy_header_parsers():
    """``(parse_v1, parse_v2, V2_PREFIX)``: Twisted's PROXY protocol header
    parsers.  ``parse_v1(line)`` takes a v1 line without its CRLF,
    ``parse_v2(header)`` a whole v2 header; each returns a ``ProxyInfo``
    (``source`` None for UNKNOWN/LOCAL) or raises.

    Relies on the private ``twisted.protocols.haproxy._v1parser`` and
    ``_v2parser`` (tested with Twisted 25/26): the public API is only
    ``proxyEndpoint``, whose wrapper tells the protocol its peer before
    the header has arrived."""
    from twisted.protocols.haproxy._v1parser import V1Parser
    from twisted.protocols.haproxy._v2parser import V2Parser

    return V1Parser.parse, V2Parser.parse, V2Parser.PREFIX


def swap_protocol(transport, protocol):
    """Make ``protocol`` the one a plain TCP/UNIX server ``transport``
    delivers its events to; False (nothing done) for any other transport
    (TLS).  Relies on ``tcp.Connection.protocol`` (undocumented; tested)."""
    if not isinstance(transport, TCPConnection) or not hasattr(transport, "protocol"):
        return False
    transport.protocol = protocol
    return True


# -- Twisted's plugin scan (axkit.discovery) ---------------------------------


class _QuietPluginLog:
    """twisted.python.log, minus ``err``: what twisted.plugin logs for a
    dropin that fails to import."""

    def __init__(self, real):
        self._real = real

    def err(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        return getattr(self._real, name)


class quiet_dropin_failures:
    """A context manager: while inside, ``twisted.plugin.getCache`` (and so
    ``getPlugins``) does not log the traceback of a dropin that fails to
    import.  twistd's own scan (for ``twistd axkit``) has printed it once
    already, and every later scan would print it again -- axkit's scans
    stay quiet and name the failure themselves (axkit.discovery's
    broken_dropins).

    Relies on twisted.plugin calling ``log.err()`` on the module-level
    ``log`` (``from twisted.python import log``) for such a dropin (tested
    versions).  Missing (no ``log`` there): nothing is changed, and the
    traceback is printed by each scan, as without this."""

    def __enter__(self):
        import twisted.plugin as twisted_plugin

        self._real = getattr(twisted_plugin, "log", None)
        if self._real is not None and hasattr(self._real, "err"):
            twisted_plugin.log = _QuietPluginLog(self._real)
        return self

    def __exit__(self, *exc):
        import twisted.plugin as twisted_plugin

        if isinstance(getattr(twisted_plugin, "log", None), _QuietPluginLog):
            twisted_plugin.log = self._real
        return False


# -- Workers: a worker adopting a unix: listener (axkit.workers.sockets) -----


def adopt_unix_port(reactor, fd, factory):
    """``reactor.adoptStreamPort`` for an AF_UNIX listening socket, except
    that stopping the port leaves the socket file in place: Twisted's
    ``unix.Port.connectionLost`` unlinks its ``_bindPath`` even for an
    adopted socket, which would take the path away from the supervisor and
    every other worker when one worker stops.

    Nor does it ``shutdown()`` the socket on close (``_shouldShutdown``,
    which tcp.Port clears for adopted sockets but unix.Port does not):
    that would stop the listener in every process.

    Relies on ``unix.Port._fromListeningDescriptor`` (what adoptStreamPort
    calls), on ``tcp._SocketCloser._shouldShutdown``, and on
    ``connectionLost`` doing nothing beyond the unlink, the lock file (None
    for an adopted port) and ``tcp.Port.connectionLost``.
    Missing: ImportError/AttributeError at adoption, a worker that does
    not start (the supervisor logs it)."""
    from twisted.internet import tcp, unix

    class KeptPort(unix.Port):
        # Nor shut the socket down: shutdown() of a listening socket stops
        # it for every process holding it (tcp.Port skips it for an adopted
        # socket; unix.Port's own startListening does not).
        _shouldShutdown = False

        def connectionLost(self, reason):
            tcp.Port.connectionLost(self, reason)

    port = KeptPort._fromListeningDescriptor(reactor, fd, factory)
    port.startListening()
    return port


# -- asyncio (axkit.asgi): the loop ASGI apps run on -------------------------
#
# (The ASGI bridge's section, kept last in the file.)  Tested on CPython
# 3.11.7; asyncio's BaseEventLoop internals used here are the same in 3.11 to
# 3.13 (tests/test_compat.py checks each one on the running Python).

_STEPPED_NAMES = (
    "_ready",
    "_scheduled",
    "_run_once",
    "_selector",
    "_debug",
    "_closed",
    "_task_factory",
)


def asyncio_reactor_loop(reactor):
    """The asyncio loop under Twisted's ``AsyncioSelectorReactor`` (its
    private ``_asyncioEventloop``), or None for any other reactor.  Tested
    with Twisted 24.3 to 26.10; missing, an asyncio reactor is taken for
    another one and its apps get a loop thread of their own (correct,
    slower)."""
    return getattr(reactor, "_asyncioEventloop", None)


def stepped_event_loop(arm):
    """A new asyncio event loop for axkit's reactor to step (or None where
    this Python's loop lacks the internals it uses: the caller then runs
    its loop in a thread).  Its methods are the whole interface the ASGI
    bridge needs -- no name of asyncio's internals outside this module:

    * ``turn()``, a reactor poll hook: runs what is ready (a callback, a
      due timer; without polling its selector when no timer is pending),
      then calls ``arm(delay)`` if a timer is pending -- the reactor's own
      timer for its earliest one -- and says whether more is ready;
    * ``step()``: one whole turn of ``_run_once`` that polls its selector
      without waiting (its descriptor, ``selector_fd()``, in the reactor's
      epoll set, is readable);
    * ``queue_task(coro)``: a Task whose first step the next ``turn()``
      runs, kept without a Handle (``step()`` makes Handles of them for a
      turn of asyncio's own);
    * ``start_task(coro)``: a Task whose first step runs now, before the
      call returns, as Python 3.12's eager tasks do -- unless a task is
      running already (one started from inside another's step is queued);
      both use the loop's task factory instead when one is set;
    * ``call_soon`` without the checks a loop stepped by the reactor never
      needs (closed loop, debug mode, the thread), and ``get_debug`` a C
      call (a Task asks it once per request).

    Relies on BaseEventLoop._ready (a deque of Handles), _scheduled (a heap
    of TimerHandles with ``_when``), _run_once, _selector, _debug, _closed,
    _task_factory,
    on asyncio.events.Handle (its _callback, _args, _context, _cancelled,
    _loop, _source_traceback, and what its _run does: ``turn`` does the
    same inline) and _get/_set_running_loop, on
    asyncio.tasks._current_tasks (loop -> its running task), and on the C Task
    scheduling its first step with ``loop.call_soon(step, context=ctx)``
    from its ``__init__`` (CPython 3.11 to 3.13; 3.12's own eager tasks do
    the same).  In debug mode (PYTHONASYNCIODEBUG) ``call_soon`` and tasks
    are asyncio's own."""
    import asyncio
    import itertools
    from asyncio import events

    loop_class = asyncio.SelectorEventLoop
    probe = loop_class()
    try:
        if not all(hasattr(probe, name) for name in _STEPPED_NAMES):
            return None
    finally:
        probe.close()
    get_running = events._get_running_loop
    set_running = events._set_running_loop
    from asyncio import tasks

    # (asyncio.current_task(loop) is a Python function looking up this dict.)
    current_tasks = getattr(tasks, "_current_tasks", None)
    if not isinstance(current_tasks, dict):
        return None
    Task = asyncio.Task
    Handle = events.Handle
    from asyncio import format_helpers

    def failed(handle, error):
        # What Handle._run does with an exception from its callback.
        where = format_helpers._format_callback_source(handle._callback, handle._args)
        context = {"message": f"Exception in callback {where}", "exception": error}
        context["handle"] = handle
        if handle._source_traceback:
            context["source_traceback"] = handle._source_traceback
        handle._loop.call_exception_handler(context)

    yes = itertools.repeat(True).__next__
    no = itertools.repeat(False).__next__

    class SteppedEventLoop(loop_class):
        _eager = False  # the next call_soon is a new task's first step: kept
        _first = None  # (callback, context) it kept

        def set_debug(self, enabled):
            loop_class.set_debug(self, enabled)
            self.get_debug = yes if enabled else no

        def call_soon(self, callback, *args, context=None):
            if self._eager and not args:
                self._eager = False
                self._first = (callback, context)
                return None
            if self._debug or self._closed:
                return loop_class.call_soon(self, callback, *args, context=context)
            handle = Handle(callback, args, self, context)
            self._ready.append(handle)
            return handle

        def _task_and_first_step(self, coro):
            """A Task for ``coro`` and its first step as (callback, context),
            caught from the Task's call_soon instead of queued as a Handle;
            the step is None where Task did not call call_soon as relied on
            (it is queued then, as asyncio would)."""
            self._eager = True
            try:
                task = Task(coro, loop=self)
            except BaseException:
                self._eager = False
                raise
            first = self._first
            if first is None:
                self._eager = False
                return task, None
            self._first = None
            return task, first

        def queue_task(self, coro):
            # A Task whose first step the next turn() runs (before the
            # callbacks queued meanwhile), kept as (callback, context)
            # rather than a Handle.
            if self._debug or self._closed or self._task_factory is not None:
                return self.create_task(coro)
            task, first = self._task_and_first_step(coro)
            if first is not None:
                self._starts.append(first)
            return task

        def start_task(self, coro):
            if self._debug or self._closed or self._task_factory is not None:
                return self.create_task(coro)
            if self in current_tasks:
                return self.queue_task(coro)
            task, first = self._task_and_first_step(coro)
            if first is None:
                return task
            previous = get_running()
            set_running(self)
            try:
                first[1].run(first[0])
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as e:
                self.call_exception_handler(
                    {"message": "axkit: a task's first step failed", "exception": e}
                )
            finally:
                set_running(previous)
            return task

        def turn(self):
            ready = self._ready
            starts = self._starts
            scheduled = self._scheduled
            if not ready and not starts:
                if not scheduled or scheduled[0]._when > self.time():
                    return False
            elif not scheduled:
                # Callbacks ready and no timer: run them without polling the
                # selector (its I/O comes through step(), on its readability).
                previous = get_running()
                set_running(self)
                n = len(ready)  # (what is queued from now on waits for the next turn)
                try:
                    if starts:
                        self._starts = []
                        for callback, context in starts:
                            try:
                                context.run(callback)
                            except (SystemExit, KeyboardInterrupt):
                                raise
                            except BaseException as e:
                                self.call_exception_handler(
                                    {"message": "axkit: a task's first step failed", "exception": e}
                                )
                    for _ in range(n):
                        handle = ready.popleft()
                        if handle._cancelled:
                            continue
                        # (Handle._run, inlined: a call less per callback.)
                        try:
                            handle._context.run(handle._callback, *handle._args)
                        except (SystemExit, KeyboardInterrupt):
                            raise
                        except BaseException as e:
                            failed(handle, e)
                finally:
                    set_running(previous)
                if scheduled:
                    arm(scheduled[0]._when - self.time())
                return bool(ready or self._starts)
            self.step()
            return bool(ready)

        def step(self):
            if self._closed:
                return
            starts = self._starts
            if starts:
                # (A whole turn of asyncio's own: the first steps as Handles.)
                self._starts = []
                self._ready.extendleft(
                    Handle(callback, (), self, context) for callback, context in reversed(starts)
                )
            if not self._ready:
                # A turn that polls the selector without waiting.
                self.call_soon(_noop)
            previous = get_running()
            set_running(self)
            try:
                self._run_once()
            finally:
                set_running(previous)
            scheduled = self._scheduled
            if scheduled:
                arm(scheduled[0]._when - self.time())

        def selector_fd(self):
            return self._selector.fileno()

    loop = SteppedEventLoop()
    loop._starts = []  # (callback, context): first steps of queue_task's tasks
    return loop


def _noop():
    pass
