"""axkit._compat: every private Twisted or CPython internal axkit relies on
still exists and behaves as relied on.

A failure here after upgrading Twisted or Python means a fast path would
otherwise have been turned off silently (or left on, and wrong): read the
docstring of the _compat function named in the failure, adapt it to the new
version (or let it fall back), then update TESTED_TWISTED/TESTED_PYTHON and
the Twisted bound in pyproject.toml.
"""

import ast
import gc
import inspect
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import weakref

from twisted.internet import defer, protocol
from twisted.internet import reactor as global_reactor
from twisted.internet.task import deferLater
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

import axkit
from axkit import _compat

LINUX = sys.platform.startswith("linux")
VERSIONS = (
    f"(Twisted {__import__('twisted').__version__}, Python "
    f"{'.'.join(map(str, sys.version_info[:3]))}; tested: Twisted "
    f"{'/'.join(_compat.TESTED_TWISTED)}, Python {'.'.join(map(str, _compat.TESTED_PYTHON))})"
)


def _names(function):
    return set(function.__code__.co_names)


def _arguments(function):
    code = function.__code__
    return code.co_varnames[: code.co_argcount]


def _fresh_reactor(test, cls):
    """A reactor of class ``cls``, not installed, closed after the test."""
    r = cls()

    def close():
        r._poller.close()
        for end in (r.waker.i, r.waker.o):
            os.close(end)

    test.addCleanup(close)
    return r


class EPollReactorTests(unittest.TestCase):
    """What axkit.reactor.AxKitReactor builds on (EPollReactorBase)."""

    if not LINUX:
        skip = "epoll is Linux only"

    def test_this_twisted_has_the_internals(self):
        self.assertTrue(
            _compat.epoll_reactor_supported(),
            "EPollReactor lost _doReadOrWrite, _add, _poller or _selectables: "
            "`twistd axkit` would fall back to Twisted's reactor " + VERSIONS,
        )
        self.assertIsNotNone(_compat.EPollReactorBase)

    def test_doPoll_does_only_what_axkit_replaces(self):
        # AxKitReactor.doPoll replaces Twisted's.  If Twisted's starts doing
        # anything more (or else), this fingerprint changes: compare the two
        # before admitting that Twisted.
        self.assertEqual(
            _names(_compat.EPollReactor.doPoll),
            {
                "_poller",
                "poll",
                "len",
                "_selectables",
                "OSError",
                "errno",
                "EINTR",
                "_doReadOrWrite",
                "log",
                "callWithLogger",
                "KeyError",
            },
            "EPollReactor.doPoll changed " + VERSIONS,
        )
        self.assertIs(_compat.EPollReactor.doIteration, _compat.EPollReactor.doPoll)

    def test_add_and_dispatch_have_the_signatures_used(self):
        EPollReactor = _compat.EPollReactor
        self.assertEqual(
            _arguments(EPollReactor._add),
            ("self", "xer", "primary", "other", "selectables", "event", "antievent"),
            VERSIONS,
        )
        self.assertEqual(
            _arguments(EPollReactor._doReadOrWrite), ("self", "selectable", "fd", "event"), VERSIONS
        )
        # Every registration goes through _add (where `registering` is called).
        self.assertIn("_add", _names(EPollReactor.addReader))
        self.assertIn("_add", _names(EPollReactor.addWriter))

    def test_epoll_parts_and_registering_on_a_real_reactor(self):
        seen = []

        class Recording(_compat.EPollReactorBase):
            def registering(self, selectable, selectables):
                seen.append((selectable, selectable.fileno() in selectables))

        r = _fresh_reactor(self, Recording)
        poller, selectables, dispatch = r.epoll_parts()
        self.assertIsInstance(poller, select.epoll)
        self.assertIsInstance(selectables, dict)
        self.assertEqual(poller.fileno(), r._poller.fileno())

        from twisted.internet import abstract

        class Reader(abstract.FileDescriptor):
            def __init__(self, reactor, sock):
                abstract.FileDescriptor.__init__(self, reactor)
                self.sock = sock
                self.got = []

            def fileno(self):
                return self.sock.fileno()

            def doRead(self):
                self.got.append(self.sock.recv(10))

        ours, theirs = socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(theirs.close)
        reader = Reader(r, ours)
        self.assertIn(r.waker, [s for s, _ in seen])  # (registered as it was made)
        del seen[:]
        r.addReader(reader)
        self.addCleanup(r.removeReader, reader)
        # Called before Twisted added it, then it is in the dict by fd.
        self.assertEqual(seen, [(reader, False)])
        self.assertIs(selectables[ours.fileno()], reader)
        theirs.send(b"ping")
        events = dict(poller.poll(1))
        self.assertIn(ours.fileno(), events)
        dispatch(reader, ours.fileno(), events[ours.fileno()])
        self.assertEqual(reader.got, [b"ping"])

    def test_wakers(self):
        classes = _compat.twisted_waker_classes()
        r = _fresh_reactor(self, _compat.EPollReactor)
        self.assertIn(type(r.waker), classes, "Twisted's waker moved " + VERSIONS)
        from twisted.internet import _signals

        self.assertIn(_signals._SIGCHLDWaker, classes)


class ExitSignalTests(unittest.TestCase):
    """forget_exit_signal: a graceful stop exits 0 under twistd."""

    def test_twistd_reads_the_reactors_exit_signal(self):
        from twisted.application.app import ApplicationRunner
        from twisted.internet.interfaces import _ISupportsExitSignalCapturing
        from twisted.scripts import twistd

        self.assertTrue(_ISupportsExitSignalCapturing.providedBy(global_reactor))
        self.assertIn("_exitSignal", _names(ApplicationRunner.startReactor))
        self.assertIn("_exitSignal", _names(twistd.runApp))

    def test_sigterm_is_recorded_then_forgotten(self):
        if not LINUX:
            raise unittest.SkipTest("epoll is Linux only")
        r = _fresh_reactor(self, _compat.EPollReactor)
        self.assertFalse(_compat.forget_exit_signal(r, (signal.SIGTERM,)))
        r.sigTerm(signal.SIGTERM, None)
        self.assertEqual(r._exitSignal, signal.SIGTERM, VERSIONS)
        self.assertFalse(_compat.forget_exit_signal(r, (signal.SIGINT,)))
        self.assertEqual(r._exitSignal, signal.SIGTERM)
        self.assertTrue(_compat.forget_exit_signal(r, (signal.SIGTERM, signal.SIGINT)))
        self.assertIsNone(r._exitSignal)


class _Server(protocol.Protocol):
    def connectionMade(self):
        self.factory.connected.callback(self)


class TCPTransportTests(unittest.TestCase):
    """plain_tcp, can_send_now, write_buffered, write_buffer_mark on the
    running reactor's real TCP transport."""

    @defer.inlineCallbacks
    def setUp(self):
        factory = protocol.ServerFactory()
        factory.protocol = _Server
        factory.connected = defer.Deferred()
        port = global_reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.client = socket.create_connection(("127.0.0.1", port.getHost().port))
        self.addCleanup(self.client.close)
        self.server = yield factory.connected
        self.addCleanup(self.server.transport.abortConnection)

    def test_plain_tcp(self):
        transport = self.server.transport
        self.assertIs(type(transport), _compat.TCPServer, VERSIONS)
        self.assertIsInstance(transport, _compat.TCPConnection)
        found = _compat.plain_tcp(transport)
        self.assertIsNotNone(found)
        peer, sock = found
        self.assertEqual(tuple(peer[:2]), self.client.getsockname()[:2])
        self.assertEqual(sock.fileno(), transport.fileno())
        self.assertIsNone(_compat.plain_tcp(StringTransport()))

    def test_swap_protocol(self):
        # The PROXY header reader stands in as the transport's protocol.
        transport = self.server.transport
        self.assertIs(transport.protocol, self.server, VERSIONS)
        other = object()
        self.assertTrue(_compat.swap_protocol(transport, other))
        self.assertIs(transport.protocol, other)
        self.assertTrue(_compat.swap_protocol(transport, self.server))
        self.assertFalse(_compat.swap_protocol(StringTransport(), other))

    def test_proxy_header_parsers(self):
        parse_v1, parse_v2, prefix = _compat.proxy_header_parsers()
        self.assertEqual(prefix, b"\r\n\r\n\x00\r\nQUIT\n", VERSIONS)
        info = parse_v1(b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2")
        self.assertEqual((info.source.host, info.source.port), ("192.0.2.1", 1))
        header = prefix + b"\x21\x11\x00\x0c" + bytes([192, 0, 2, 1, 192, 0, 2, 2, 0, 1, 0, 2])
        info = parse_v2(header)
        self.assertEqual((info.source.host, info.source.port), ("192.0.2.1", 1))

    @defer.inlineCallbacks
    def test_write_buffer_is_seen(self):
        transport = self.server.transport
        self.assertTrue(_compat.can_send_now(transport))
        self.assertEqual(_compat.write_buffered(transport), 0)
        before = _compat.write_buffer_mark(transport)
        self.assertIsNotNone(before)
        # transport.write queues; Twisted sends on the reactor's next turn.
        transport.write(b"x" * 1000)
        self.assertFalse(
            _compat.can_send_now(transport),
            "a direct send would overtake bytes Twisted holds " + VERSIONS,
        )
        self.assertEqual(_compat.write_buffered(transport), 1000, VERSIONS)
        # Sent: the buffer is empty and a direct send is safe again.
        for _ in range(100):
            yield deferLater(global_reactor, 0.01, lambda: None)
            if _compat.write_buffered(transport) == 0:
                break
        self.assertEqual(_compat.write_buffered(transport), 0)
        self.assertTrue(_compat.can_send_now(transport))
        self.assertEqual(self.client.recv(2000), b"x" * 1000)

    @defer.inlineCallbacks
    def test_mark_moves_as_a_slow_reader_reads(self):
        transport = self.server.transport
        transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        self.client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        transport.write(b"y" * (4 * 1024 * 1024))
        yield deferLater(global_reactor, 0.05, lambda: None)
        held = _compat.write_buffered(transport)
        mark = _compat.write_buffer_mark(transport)
        self.assertGreater(held, 0)
        self.assertFalse(_compat.can_send_now(transport))
        self.client.setblocking(False)
        got = 0
        for _ in range(200):
            try:
                got += len(self.client.recv(1 << 20))
            except BlockingIOError:
                pass
            yield deferLater(global_reactor, 0.005, lambda: None)
            if _compat.write_buffer_mark(transport) != mark:
                break
        self.assertNotEqual(_compat.write_buffer_mark(transport), mark, VERSIONS)
        self.assertLess(_compat.write_buffered(transport), held)

    def test_no_buffer(self):
        self.assertIsNone(_compat.write_buffered(object()))
        self.assertIsNone(_compat.write_buffer_mark(object()))


class _Recorder(protocol.Protocol):
    def connectionMade(self):
        self.factory.made.append(self)


class _RecordingFactory(protocol.Factory):
    protocol = _Recorder

    def __init__(self, refuse=False):
        self.made = []
        self.addrs = []
        self.refuse = refuse

    def buildProtocol(self, addr):
        self.addrs.append(addr)
        if self.refuse:
            return None
        return protocol.Factory.buildProtocol(self, addr)


class AcceptTests(unittest.TestCase):
    """accept_connections: tcp.Port.doRead's work, lighter."""

    def listen(self, factory):
        port = global_reactor.listenTCP(0, factory, interface="127.0.0.1")
        port.stopReading()  # only accept_connections accepts here
        self.addCleanup(port.stopListening)
        return port

    def connect(self, port):
        client = socket.create_connection(("127.0.0.1", port.getHost().port))
        self.addCleanup(client.close)
        return client

    def test_supported_here(self):
        self.assertTrue(_compat.accept_connections_supported())
        self.assertTrue(hasattr(socket.socket, "_accept"))
        for name in ("transport", "sessionno", "addressFamily"):  # class attributes
            self.assertTrue(hasattr(_compat.TCPPort, name), name)

    def test_accepts_every_waiting_connection(self):
        factory = _RecordingFactory()
        port = self.listen(factory)
        port.numberAccepts = 100
        clients = [self.connect(port) for _ in range(3)]
        _compat.accept_connections(port, global_reactor)
        self.assertEqual(len(factory.made), 3)
        for proto, client in zip(factory.made, clients, strict=True):
            self.addCleanup(proto.transport.abortConnection)
            self.assertIs(type(proto.transport), _compat.TCPServer)
            self.assertEqual(proto.transport.client, client.getsockname())
            self.assertEqual(proto.transport.getPeer().port, client.getsockname()[1])
        self.assertEqual(factory.addrs, [c.getsockname() for c in clients])
        self.assertEqual([p.transport.sessionno for p in factory.made], [0, 1, 2])
        self.assertEqual(port.numberAccepts, 3)  # Twisted's scaling

    def test_refused_connection_is_closed(self):
        factory = _RecordingFactory(refuse=True)
        port = self.listen(factory)
        client = self.connect(port)
        _compat.accept_connections(port, global_reactor)
        client.settimeout(5)
        self.assertEqual(client.recv(10), b"")  # closed by the server
        self.assertEqual(factory.made, [])

    def test_other_accept_errors_go_to_twisted(self):
        factory = _RecordingFactory()
        port = self.listen(factory)
        called = []

        class Failing:
            def _accept(self):
                raise OSError(24, "EMFILE")

        port.socket, real = Failing(), port.socket
        self.addCleanup(setattr, port, "socket", real)
        self.patch(port, "doRead", lambda: called.append(True))
        _compat.accept_connections(port, global_reactor)
        self.assertEqual(called, [True])


class ProcessTests(unittest.TestCase):
    """stdin_writer, watch_exit, unwatch_exit (Twisted's process support)."""

    def _child(self, *argv, stdin=None):
        return subprocess.Popen(list(argv), stdin=stdin, stdout=subprocess.DEVNULL)

    def _wait_exited(self, pid):
        # Wait for the exit without reaping it (WNOWAIT).
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)

    def test_an_exited_child_is_reaped_at_once(self):
        child = self._child("sh", "-c", "exit 3")
        _compat.disown_popen(child)
        self._wait_exited(child.pid)
        ended = []

        class Proc:
            def processEnded(self, status):
                ended.append(status)

            def reapProcess(self):
                raise AssertionError("not registered")

        _compat.watch_exit(child.pid, Proc())
        self.assertEqual(len(ended), 1)
        self.assertEqual(os.waitstatus_to_exitcode(ended[0]), 3)

    def test_a_running_child_is_reaped_by_the_sigchld_handling(self):
        from twisted.internet import process

        r, w = os.pipe()
        child = self._child("cat", stdin=r)
        os.close(r)
        _compat.disown_popen(child)
        reaped = []

        class Proc:
            def processEnded(self, status):
                raise AssertionError("still running")

            def reapProcess(self):
                found, status = os.waitpid(child.pid, os.WNOHANG)
                if found:
                    _compat.unwatch_exit(child.pid, self)
                    reaped.append(status)

        proc = Proc()
        _compat.watch_exit(child.pid, proc)
        self.assertIs(process.reapProcessHandlers.get(child.pid), proc, VERSIONS)
        os.close(w)
        self._wait_exited(child.pid)
        # What Twisted's SIGCHLD waker runs.
        process.reapAllProcesses()
        self.assertEqual(len(reaped), 1)
        self.assertNotIn(child.pid, process.reapProcessHandlers)

    @defer.inlineCallbacks
    def test_stdin_writer(self):
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        lost = []

        class Proc:
            def childConnectionLost(self, name, reason):
                lost.append(name)
                os.close(writer.fileno())

        writer = _compat.stdin_writer(global_reactor, Proc(), w)
        writer.write(b"hello")
        writer.loseConnection()
        for _ in range(100):
            if lost:
                break
            yield deferLater(global_reactor, 0.01, lambda: None)
        self.assertEqual(lost, [0])
        self.assertEqual(os.read(r, 100), b"hello")
        self.assertEqual(os.read(r, 100), b"")  # its end closed


class ForkExecTests(unittest.TestCase):
    """fork_exec_group_leader: CPython's private _posixsubprocess.fork_exec."""

    # The argument expressions of subprocess's own call, in order: the
    # positions fork_exec_group_leader fills.
    SUBPROCESS_CALL = [
        "args",
        "executable_list",
        "close_fds",
        "tuple(sorted(map(int, fds_to_keep)))",
        "cwd",
        "env_list",
        "p2cread",
        "p2cwrite",
        "c2pread",
        "c2pwrite",
        "errread",
        "errwrite",
        "errpipe_read",
        "errpipe_write",
        "restore_signals",
        "start_new_session",
        "process_group",
        "gid",
        "gids",
        "uid",
        "umask",
        "preexec_fn",
        "_USE_VFORK",
    ]

    if not LINUX:
        skip = "CGI spawns are tuned for Linux"

    def test_usable_on_this_python(self):
        self.assertIsNotNone(
            _compat.fork_exec_group_leader,
            "this Python is outside _compat.FORK_EXEC_PYTHONS: every CGI spawn would go "
            "through Popen " + VERSIONS,
        )

    def test_subprocess_calls_it_with_the_same_arguments(self):
        source = textwrap.dedent(inspect.getsource(subprocess.Popen._execute_child))
        calls = [
            node
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and "fork_exec" in ast.unparse(node.func)
        ]
        self.assertEqual(len(calls), 1)
        self.assertEqual(
            [ast.unparse(a) for a in calls[0].args],
            self.SUBPROCESS_CALL,
            "_posixsubprocess.fork_exec's arguments changed " + VERSIONS,
        )
        self.assertEqual(calls[0].keywords, [])

    def _start(self, executable, args, cwd, env_list):
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        stdin = os.open(os.devnull, os.O_RDONLY)
        try:
            pid = _compat.fork_exec_group_leader(
                args, os.fsencode(executable), cwd, env_list, stdin, out_w, out_w, err_r, err_w
            )
        finally:
            for fd in (out_w, err_w, stdin):
                os.close(fd)
        with os.fdopen(out_r, "rb") as f:
            output = f.read()
        try:
            report = os.read(err_r, 1000)
        except BlockingIOError:
            report = b""
        os.close(err_r)
        _, status = os.waitpid(pid, 0)
        return pid, output, report, status

    def test_a_group_leader_in_its_folder_with_its_environment(self):
        if _compat.fork_exec_group_leader is None:
            raise unittest.SkipTest("not usable here (see test_usable_on_this_python)")
        folder = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, folder)
        kept = os.open(os.devnull, os.O_RDONLY)
        os.set_inheritable(kept, True)  # close_fds must close it all the same
        self.addCleanup(os.close, kept)
        code = (
            "import os; print(repr((os.getpid(), os.getpgrp(), os.getcwd(), "
            f"os.environ.get('AXKIT_X'), os.listdir('/proc/self/fd'), {kept})))"
        )
        pid, output, report, status = self._start(
            sys.executable, [sys.executable, "-c", code], folder, [b"AXKIT_X=1"]
        )
        self.assertEqual(report, b"")
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, output)
        child, group, cwd, x, fds, kept_fd = eval(output)
        self.assertEqual((child, group), (pid, pid))  # leads its own group
        self.assertEqual(os.path.realpath(cwd), os.path.realpath(folder))
        self.assertEqual(x, "1")
        self.assertNotIn(str(kept_fd), fds)

    def test_sigpipe_is_restored(self):
        # The server ignores SIGPIPE (Python does); a program must not
        # inherit that (a shell pipeline would never end on a closed pipe).
        if _compat.fork_exec_group_leader is None:
            raise unittest.SkipTest("not usable here (see test_usable_on_this_python)")
        self.assertEqual(signal.getsignal(signal.SIGPIPE), signal.SIG_IGN)
        cat = "/bin/cat"
        pid, output, report, status = self._start(cat, [cat, "/proc/self/status"], "/", [])
        ignored = int(re.search(rb"^SigIgn:\s*([0-9a-f]+)$", output, re.M).group(1), 16)
        self.assertFalse(ignored & (1 << (signal.SIGPIPE - 1)))

    def test_a_failed_exec_is_reported(self):
        if _compat.fork_exec_group_leader is None:
            raise unittest.SkipTest("not usable here (see test_usable_on_this_python)")
        missing = "/nonexistent/axkit-program"
        pid, output, report, status = self._start(missing, [missing], "/", [])
        name, number, _ = report.split(b":", 2)
        self.assertEqual((name, int(number, 16)), (b"OSError", 2))
        self.assertEqual(os.waitstatus_to_exitcode(status), 255)


class PopenTests(unittest.TestCase):
    """disown_popen: Popen's finaliser leaves the child to its reaper."""

    def _exited_child(self):
        child = subprocess.Popen(["true"])
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        return child

    def test_popen_finaliser_reads_the_flag(self):
        self.assertIn("_child_created", _names(subprocess.Popen.__del__), VERSIONS)

    def test_a_disowned_child_is_left_to_us(self):
        child = self._exited_child()
        pid = child.pid
        _compat.disown_popen(child)
        del child
        gc.collect()
        found, status = os.waitpid(pid, 0)  # ours to reap, exit status intact
        self.assertEqual((found, os.waitstatus_to_exitcode(status)), (pid, 0))

    def test_an_owned_child_is_reaped_by_popen(self):
        # The control: without disown_popen the status would be stolen.
        child = self._exited_child()
        pid = child.pid
        del child
        gc.collect()
        self.assertRaises(ChildProcessError, os.waitpid, pid, 0)


class WeakKeyDataTests(unittest.TestCase):
    def test_the_dict_behind_a_weak_key_dictionary(self):
        class Key:
            pass

        mapping = weakref.WeakKeyDictionary()
        data = _compat.weak_key_data(mapping)
        self.assertIs(type(data), dict, VERSIONS)
        keys = [Key() for _ in range(100)]
        for i, key in enumerate(keys):
            mapping[key] = i
        self.assertIs(_compat.weak_key_data(mapping), data)  # the same dict all along
        self.assertEqual(data.get(weakref.ref(keys[42])), 42)
        other = Key()
        self.assertIsNone(data.get(weakref.ref(other)))
        del keys[:50]
        gc.collect()
        self.assertEqual(len(data), 50)


class QuietDropinFailuresTests(unittest.TestCase):
    def setUp(self):
        import twisted.plugins

        folder = tempfile.mkdtemp()
        self.addCleanup(__import__("shutil").rmtree, folder)
        with open(os.path.join(folder, "axkit_compat_broken_dropin.py"), "w") as f:
            f.write("import no_such_module_for_axkit_compat\n")
        self.patch(twisted.plugins, "__path__", list(twisted.plugins.__path__) + [folder])

    def test_get_cache_logs_a_broken_dropin_through_its_log(self):
        import twisted.plugin

        import twisted.plugins

        self.assertTrue(hasattr(twisted.plugin.log, "err"), VERSIONS)
        twisted.plugin.getCache(twisted.plugins)
        self.assertEqual(len(self.flushLoggedErrors(ModuleNotFoundError)), 1, VERSIONS)

    def test_quiet_inside_and_restored_after(self):
        import twisted.plugin

        import twisted.plugins

        real = twisted.plugin.log
        with _compat.quiet_dropin_failures():
            twisted.plugin.getCache(twisted.plugins)
            self.assertEqual(twisted.plugin.log.msg, real.msg)
        self.assertEqual(self.flushLoggedErrors(ModuleNotFoundError), [])
        self.assertIs(twisted.plugin.log, real)


class OnlyCompatNamesInternalsTests(unittest.TestCase):
    """No module of axkit but _compat names these internals."""

    # (Matched against the code with comments and strings removed and its
    # tokens spaced out.)
    PATTERNS = {
        "dataBuffer": r"\bdataBuffer\b",
        "_tempDataBuffer/_tempDataLen": r"\b_tempData(Buffer|Len)\b",
        "_exitSignal": r"\b_exitSignal\b",
        "_posixsubprocess": r"\b_posixsubprocess\b",
        "_child_created": r"\b_child_created\b",
        "__code__": r"\b__code__\b",
        "_doReadOrWrite": r"\b_doReadOrWrite\b",
        "EPollReactor's _poller/_selectables": r"\.\s*(_poller|_selectables)\b",
        "EPollReactor._add": r"\b_add\s*\(\s*self\s*,\s*xer\b",
        "twisted.internet._signals": r"\b_signals\b",
        "twisted.internet.tcp": r"\binternet\s*\.\s*tcp\b|\binternet\s+import\s+tcp\b",
        "twisted.internet.process": r"\binternet\s*\.\s*process\b|\binternet\s+import\s+process\b",
        "AsyncioSelectorReactor._asyncioEventloop": r"\b_asyncioEventloop\b",
        "asyncio loop internals (loop._*)": r"\bloop\s*\.\s*_[a-z]\w*",
        "asyncio _run_once/_get/_set_running_loop": r"\b(_run_once|_[gs]et_running_loop)\b",
    }
    # Files allowed a private name anyway (none: keep it so).
    PENDING: dict = {}

    def test_only_compat(self):
        root = os.path.dirname(axkit.__file__)
        found = []
        for folder, _, files in os.walk(root):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, root)
                if rel.startswith("_compat" + os.sep):
                    continue  # (the package where they belong)
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                # Docstrings and comments may name them; code may not.
                code = _strip_comments_and_strings(text)
                for label, pattern in self.PATTERNS.items():
                    if re.search(pattern, code) and label not in self.PENDING.get(rel, ()):
                        found.append(f"axkit/{rel}: {label}")
        self.assertEqual(found, [], "use (or add) a function of axkit._compat")


def _strip_comments_and_strings(text):
    """Python source with comments and string literals blanked."""
    import io
    import tokenize

    out = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type in (tokenize.COMMENT, tokenize.STRING):
            continue
        if sys.version_info >= (3, 12) and tok.type in (
            tokenize.FSTRING_START,
            tokenize.FSTRING_MIDDLE,
            tokenize.FSTRING_END,
        ):
            continue
        out.append(tok.string)
    return " ".join(out)


class AsyncioTests(unittest.TestCase):
    """stepped_event_loop: asyncio's loop internals it relies on."""

    def make(self):
        armed = []
        loop = _compat.stepped_event_loop(armed.append)
        self.assertIsNotNone(loop, VERSIONS)  # (None: this Python lacks the internals)
        self.addCleanup(loop.close)
        return loop, armed

    def test_turn_runs_what_was_ready_and_no_more(self):
        import asyncio

        loop, armed = self.make()
        ran = []
        loop.call_soon(ran.append, 1)
        loop.call_soon(ran.append, "cancelled").cancel()
        loop.call_soon(lambda: ran.append(asyncio.get_running_loop()))
        loop.call_soon(lambda: loop.call_soon(ran.append, "next turn"))
        self.assertTrue(loop.turn())  # (more is ready)
        self.assertEqual(ran, [1, loop])
        self.assertTrue(loop.turn() is False)
        self.assertEqual(ran, [1, loop, "next turn"])
        self.assertIsNone(asyncio._get_running_loop())  # (put back)
        self.assertFalse(loop.turn())
        self.assertEqual(armed, [])

    def test_turn_reports_a_failing_callback_as_asyncio_does(self):
        loop, _ = self.make()
        seen = []
        loop.set_exception_handler(lambda loop, context: seen.append(context))
        ran = []

        def boom():
            raise ValueError("no")

        handle = loop.call_soon(boom)
        loop.call_soon(ran.append, "after")
        loop.turn()
        self.assertEqual(ran, ["after"])  # (the turn went on)
        [context] = seen
        self.assertIsInstance(context["exception"], ValueError)
        self.assertIs(context["handle"], handle)
        self.assertIn("Exception in callback", context["message"])
        self.assertIn("boom", context["message"])

    def test_turn_runs_due_timers_and_arms_for_the_next(self):
        loop, armed = self.make()
        ran = []
        loop.call_later(-1, ran.append, "due")
        loop.call_later(1000, ran.append, "later")
        loop.turn()
        self.assertEqual(ran, ["due"])
        self.assertEqual(len(armed), 1)
        self.assertTrue(990 < armed[0] <= 1000, armed)
        loop.call_soon(ran.append, "ready")
        loop.turn()
        self.assertEqual(ran, ["due", "ready"])
        self.assertEqual(len(armed), 2)  # (armed again for the pending one)

    def test_step_polls_the_selector_without_waiting(self):
        import socket

        loop, armed = self.make()
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        got = []
        loop.add_reader(a.fileno(), lambda: got.append(a.recv(10)))
        self.assertIsInstance(loop.selector_fd(), int)
        loop.step()  # (nothing to read: returns at once)
        self.assertEqual(got, [])
        b.send(b"x")
        loop.step()
        self.assertEqual(got, [b"x"])
        loop.remove_reader(a.fileno())

    def test_start_task_takes_the_first_step_now(self):
        import asyncio

        loop, _ = self.make()
        seen = []
        gate = loop.create_future()

        async def app():
            seen.append((asyncio.current_task(), asyncio.get_running_loop()))
            await gate
            seen.append("after")
            return "done"

        task = loop.start_task(app())
        self.assertIsInstance(task, asyncio.Task)
        self.assertEqual(seen, [(task, loop)])  # (it ran, as the current task)
        self.assertIsNone(asyncio._get_running_loop())
        self.assertIn(task, asyncio.all_tasks(loop))
        gate.set_result(None)
        while loop.turn():
            pass
        self.assertEqual(seen[1:], ["after"])
        self.assertEqual(task.result(), "done")

    def test_a_task_started_inside_another_waits_its_turn(self):
        import asyncio

        loop, _ = self.make()
        order = []

        async def inner():
            order.append("inner")

        async def outer():
            order.append("outer")
            loop.start_task(inner())
            order.append("outer goes on")

        loop.start_task(outer())
        self.assertEqual(order, ["outer", "outer goes on"])
        loop.turn()
        self.assertEqual(order, ["outer", "outer goes on", "inner"])
        self.assertEqual(asyncio.all_tasks(loop), set())

    def test_queue_task_takes_the_first_step_at_the_next_turn(self):
        import asyncio

        loop, _ = self.make()
        seen = []

        async def app(name):
            seen.append((name, asyncio.current_task(), asyncio.get_running_loop()))
            await asyncio.sleep(0)
            seen.append(name + " again")

        loop.call_soon(seen.append, "callback")
        one = loop.queue_task(app("one"))
        two = loop.queue_task(app("two"))
        self.assertEqual(seen, [])
        self.assertTrue(loop.turn())  # (the tasks' next steps are ready)
        self.assertEqual(seen, [("one", one, loop), ("two", two, loop), "callback"])
        while loop.turn():
            pass
        self.assertEqual(seen[3:], ["one again", "two again"])
        self.assertTrue(one.done() and two.done())
        self.assertEqual(asyncio.all_tasks(loop), set())

    def test_queued_first_steps_in_a_whole_turn(self):
        loop, _ = self.make()
        seen = []

        async def app():
            seen.append("ran")

        task = loop.queue_task(app())
        loop.call_later(-1, seen.append, "timer")  # (due: turn() takes a whole turn)
        loop.turn()
        self.assertEqual(seen, ["ran", "timer"])
        self.assertTrue(task.done())

    def test_a_task_factory_is_used(self):
        import asyncio

        loop, _ = self.make()
        made = []

        def factory(loop, coro, **kwargs):
            made.append(coro)
            return asyncio.Task(coro, loop=loop, **kwargs)

        loop.set_task_factory(factory)

        async def app():
            pass

        loop.queue_task(app())
        loop.start_task(app())
        self.assertEqual(len(made), 2)
        loop.run_until_complete(asyncio.sleep(0))

    def test_a_failing_first_step_fails_the_task(self):
        loop, _ = self.make()

        async def app():
            raise ValueError("no")

        task = loop.start_task(app())
        self.assertIsInstance(task.exception(), ValueError)

    def test_start_task_of_a_non_coroutine_leaves_call_soon_alone(self):
        loop, _ = self.make()
        self.assertRaises(TypeError, loop.start_task, "not a coroutine")
        ran = []
        loop.call_soon(ran.append, 1)
        loop.turn()
        self.assertEqual(ran, [1])

    def test_call_soon_queues_handles_as_asyncio_does(self):
        import asyncio

        loop, _ = self.make()
        self.assertIsNot(type(loop), asyncio.SelectorEventLoop)  # (the fast one)
        ran = []
        handle = loop.call_soon(ran.append, 1)
        self.assertIsInstance(handle, asyncio.Handle)
        loop.call_soon(ran.append, 2).cancel()
        loop.run_until_complete(asyncio.sleep(0))
        self.assertEqual(ran, [1])
        self.assertFalse(loop.get_debug())
        loop.set_debug(True)  # (debug mode: asyncio's own call_soon, with its checks)
        self.assertTrue(loop.get_debug())
        self.assertRaises(TypeError, loop.call_soon, "not callable")
        loop.set_debug(False)
        self.assertFalse(loop.get_debug())

    def test_asyncio_reactor_loop(self):
        import asyncio

        from twisted.internet.asyncioreactor import AsyncioSelectorReactor

        loop = asyncio.new_event_loop()
        self.addCleanup(loop.close)
        reactor = AsyncioSelectorReactor(loop)
        self.assertIs(_compat.asyncio_reactor_loop(reactor), loop, VERSIONS)
        self.assertIsNone(_compat.asyncio_reactor_loop(object()))


class AdoptUnixPortTests(unittest.TestCase):
    """adopt_unix_port (axkit.workers): a worker stopping its adopted unix:
    listener leaves the socket file to the supervisor and the others."""

    @defer.inlineCallbacks
    def test_stopping_leaves_the_socket_file(self):
        folder = tempfile.mkdtemp()
        self.addCleanup(lambda: __import__("shutil").rmtree(folder, True))
        path = os.path.join(folder, "s.sock")
        listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(listening.close)
        listening.bind(path)
        listening.listen(5)
        listening.setblocking(False)
        port = _compat.adopt_unix_port(
            global_reactor, os.dup(listening.fileno()), protocol.Factory.forProtocol(_Server)
        )
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(client.close)
        client.connect(path)
        yield port.stopListening()
        self.assertTrue(os.path.exists(path), f"the adopted port removed it {VERSIONS}")
        # The supervisor's socket still accepts.
        other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(other.close)
        other.connect(path)
