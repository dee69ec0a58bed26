"""axkit's reactor (axkit/reactor.py): direct dispatch for registered
protocols, Twisted's log context for everything else, and what `twistd axkit`
installs."""

import http.client
import os
import socket
import struct
import tempfile
import time

from twisted.internet import abstract, error, main, protocol
from twisted.python import context, failure, log
from twisted.trial import unittest

from axkit import reactor as axreactor
from axkit.http.connection import HTTPConnection
from axkit.testing import TwistdProcess

if axreactor.AxKitReactor is None or not axreactor._supported():
    skip_reason = "no epoll reactor here"
else:
    skip_reason = None


class DirectProtocol:
    """Registered with dispatch_directly in setUp."""


class OtherProtocol:
    """Not registered."""


class Reader(abstract.FileDescriptor):
    """One end of a socketpair; records the legacy log system seen by doRead."""

    def __init__(self, reactor, sock, protocol, fail_on_lost=False):
        abstract.FileDescriptor.__init__(self, reactor)
        self.socket = sock
        self.protocol = protocol
        self.systems = []
        self.fail_on_lost = fail_on_lost
        self.lost = []

    def fileno(self):
        return self.socket.fileno()

    def logPrefix(self):
        return "ReaderPrefix"

    def doRead(self):
        self.systems.append(context.get(log.ILogContext)["system"])
        if not self.socket.recv(100):
            return main.CONNECTION_DONE

    def connectionLost(self, reason):
        self.lost.append(reason)
        self.reactor.removeReader(self)
        if self.fail_on_lost:
            raise RuntimeError("connectionLost blew up")


class DispatchTests(unittest.TestCase):
    skip = skip_reason

    def setUp(self):
        self.reactor = axreactor.AxKitReactor()
        self.addCleanup(self._close_reactor)
        axreactor.dispatch_directly(DirectProtocol)
        self.addCleanup(axreactor._DIRECT.discard, DirectProtocol)

    def _close_reactor(self):
        self.reactor._poller.close()
        for end in (self.reactor.waker.i, self.reactor.waker.o):
            os.close(end)

    def reader(self, protocol, **kw):
        ours, theirs = socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(theirs.close)
        ours.setblocking(False)
        reader = Reader(self.reactor, ours, protocol, **kw)
        self.reactor.addReader(reader)
        self.addCleanup(self.reactor.removeReader, reader)  # before the closes
        return reader, theirs

    def test_registered_protocol_skips_the_log_context(self):
        reader, peer = self.reader(DirectProtocol())
        peer.send(b"x")
        self.reactor.doIteration(1)  # what the reactor's loop calls
        self.assertEqual(reader.systems, ["-"])

    def test_other_selectables_keep_the_log_context(self):
        reader, peer = self.reader(OtherProtocol())
        peer.send(b"x")
        self.reactor.doPoll(1)
        self.assertEqual(reader.systems, ["ReaderPrefix"])

    def test_selectable_without_protocol_keeps_the_log_context(self):
        reader, peer = self.reader(None)
        del reader.protocol
        peer.send(b"x")
        self.reactor.doPoll(1)
        self.assertEqual(reader.systems, ["ReaderPrefix"])

    def test_registered_selectable_class_skips_the_log_context(self):
        class DirectReader(Reader):
            pass

        axreactor.dispatch_directly(DirectReader)
        self.addCleanup(axreactor._DIRECT.discard, DirectReader)
        ours, peer = socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(peer.close)
        ours.setblocking(False)
        reader = DirectReader(self.reactor, ours, OtherProtocol())
        self.reactor.addReader(reader)
        self.addCleanup(self.reactor.removeReader, reader)
        peer.send(b"x")
        self.reactor.doIteration(1)
        self.assertEqual(reader.systems, ["-"])

    def closing_reader(self):
        class Writer(Reader):
            def writeSomeData(self, data):
                return self.socket.send(data)

        ours, peer = socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(peer.close)
        ours.setblocking(False)
        reader = Writer(self.reactor, ours, DirectProtocol())
        reader.connected = 1
        self.reactor.addReader(reader)
        return reader, peer

    def test_close_soon_closes_before_the_next_poll(self):
        reader, peer = self.closing_reader()
        reader.stopReading()
        self.reactor.close_soon(reader)
        self.assertEqual(reader.lost, [])
        self.reactor.doPoll(0)
        self.assertEqual(len(reader.lost), 1)
        self.assertTrue(reader.lost[0].check(main.CONNECTION_DONE.__class__))
        self.assertNotIn(reader, self.reactor.getReaders())
        self.assertNotIn(reader, self.reactor.getWriters())

    def test_close_soon_flushes_what_was_written_meanwhile(self):
        reader, peer = self.closing_reader()
        reader.stopReading()
        self.reactor.close_soon(reader)
        reader.write(b"late bytes")  # buffered (Twisted's write)
        for _ in range(10):
            if reader.lost:
                break
            self.reactor.doPoll(0.1)
        self.assertEqual(len(reader.lost), 1)
        self.assertEqual(peer.recv(100), b"late bytes")  # sent, then closed

    def test_http_listening_ports_are_dispatched_directly(self):
        from axkit.http.factory import HTTPFactory

        self.assertIn(HTTPFactory, axreactor._DIRECT)

    def test_http_connections_and_cgi_pipes_are_registered(self):
        from axkit.cgi.process import _Poller

        self.assertIn(HTTPConnection, axreactor._DIRECT)
        self.assertIn(_Poller, axreactor._DIRECT)

    def test_twisted_wakers_are_registered(self):
        # callFromThread's waker (every CGI spawn comes back through it) and
        # the SIGCHLD waker (every CGI program's end) of this reactor.
        from twisted.internet import _signals

        self.assertIn(type(self.reactor.waker), axreactor._DIRECT)
        self.assertIn(_signals._SIGCHLDWaker, axreactor._DIRECT)

    def test_thread_calls_are_run(self):
        # Through the waker's direct dispatch: a call from another thread
        # is run by the next iteration.
        import threading

        ran = []
        t = threading.Thread(target=self.reactor.callFromThread, args=(ran.append, 1))
        t.start()
        t.join()
        self.reactor.doIteration(1)
        self.reactor.runUntilCurrent()
        self.assertEqual(ran, [1])

    def test_poll_hooks_run_before_the_poll_and_work_done_keeps_it_from_blocking(self):
        seen = []

        def hook():
            seen.append(self.reactor.polling)
            return True  # "did work": the poll must not block

        self.reactor.add_poll_hook(hook)
        started = time.monotonic()
        self.reactor.doPoll(5)
        self.assertLess(time.monotonic() - started, 4)
        self.assertEqual(seen, [True])
        self.assertFalse(self.reactor.polling)
        self.reactor.remove_poll_hook(hook)
        self.reactor.doPoll(0)
        self.assertEqual(seen, [True])

    def test_a_failing_poll_hook_is_logged_and_polling_goes_on(self):
        def hook():
            raise RuntimeError("hook blew up")

        self.reactor.add_poll_hook(hook)
        reader, peer = self.reader(DirectProtocol())
        peer.send(b"x")
        self.reactor.doPoll(1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(reader.systems, ["-"])

    def test_a_raw_reader_gets_its_events_until_removed(self):
        import select

        class Raw:
            def __init__(self):
                self.events = []

            def doRead(self, events):
                self.events.append(events)
                os.read(r, 100)

        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        raw = Raw()
        self.reactor.add_raw_reader(r, raw)
        os.write(w, b"x")
        self.reactor.doPoll(1)
        self.assertEqual(raw.events, [select.EPOLLIN])
        self.reactor.remove_raw_reader(r)
        os.write(w, b"y")
        self.reactor.doPoll(0)
        self.assertEqual(len(raw.events), 1)

    def test_a_failing_raw_reader_is_logged_and_told(self):
        class Raw:
            failed = 0

            def doRead(self, events):
                raise RuntimeError("raw reader blew up")

            def readFailed(self):
                self.failed += 1
                self.reactor.remove_raw_reader(r)

        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        raw = Raw()
        raw.reactor = self.reactor
        self.reactor.add_raw_reader(r, raw)
        other, peer = self.reader(DirectProtocol())
        os.write(w, b"x")
        peer.send(b"x")
        self.reactor.doPoll(1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(raw.failed, 1)
        self.assertEqual(other.systems, ["-"])  # the other reader still ran

    def test_an_event_of_a_descriptor_closed_in_the_batch_does_not_reach_its_successor(self):
        # Two pipes ready in one batch; handling the first closes the second
        # (as a CGI program's stdout end reads its stderr to its end) and a
        # new connection gets the second's number (an accept in the same
        # turn).  The second pipe's hang-up, still in the batch, must not
        # reach the connection as its end.
        import select

        first_r, first_w = os.pipe()
        second_r, second_w = os.pipe()
        self.addCleanup(os.close, first_r)
        self.addCleanup(os.close, first_w)
        os.write(first_w, b"x")
        os.close(second_w)  # the second pipe: hung up
        successor = {}
        test = self

        class First:
            def doRead(self, events):
                os.read(first_r, 10)
                test.reactor.remove_raw_reader(first_r)
                number = second_r
                test.reactor.remove_raw_reader(number)
                os.close(number)
                ours, theirs = socket.socketpair()
                test.addCleanup(theirs.close)
                if ours.fileno() != number:  # (the number came back elsewhere)
                    os.dup2(ours.fileno(), number)
                    ours.close()
                    ours = socket.socket(fileno=number)
                test.addCleanup(ours.close)
                ours.setblocking(False)
                reader = Reader(test.reactor, ours, DirectProtocol())
                test.reactor.addReader(reader)
                test.addCleanup(test.reactor.removeReader, reader)
                successor["reader"] = reader

        class Second:
            def doRead(self, events):
                raise AssertionError("the second pipe is closed before its turn")

        self.reactor.add_raw_reader(first_r, First())
        self.reactor.add_raw_reader(second_r, Second())
        events = dict(self.reactor._poller.poll(0))
        self.assertEqual(set(events), {first_r, second_r})
        self.assertTrue(events[second_r] & select.EPOLLHUP)
        # One batch holding both events, the first's first.

        class OneBatch:
            def __init__(self, real, batch):
                self.real, self.batch = real, batch

            def poll(self, timeout, most):
                batch, self.batch = self.batch, []
                return batch

            def __getattr__(self, name):
                return getattr(self.real, name)

        real = self.reactor._poller
        self.reactor._poller = OneBatch(
            real, [(first_r, events[first_r]), (second_r, events[second_r])]
        )
        self.reactor.refresh_epoll_parts()
        try:
            self.reactor.doPoll(0)
        finally:
            self.reactor._poller = real
            self.reactor.refresh_epoll_parts()
        reader = successor["reader"]
        self.assertEqual(reader.lost, [])
        self.assertEqual(reader.systems, [])
        self.assertIn(reader, self.reactor.getReaders())

    def test_cgi_pipes_use_raw_readers_on_this_reactor(self):
        from axkit.cgi import process

        self.patch(process, "_poller", None)
        self.assertIsInstance(process._pipe_poller(self.reactor), process._ReactorPipes)

    def test_end_of_stream_disconnects(self):
        reader, peer = self.reader(DirectProtocol())
        peer.close()
        self.reactor.doPoll(1)
        self.assertEqual(len(reader.lost), 1)
        self.assertNotIn(reader, self.reactor.getReaders())

    def test_error_escaping_dispatch_is_logged_and_polling_goes_on(self):
        failing, failing_peer = self.reader(DirectProtocol(), fail_on_lost=True)
        other, other_peer = self.reader(DirectProtocol())
        failing_peer.close()
        other_peer.send(b"y")
        self.reactor.doPoll(1)  # must not raise
        errors = self.flushLoggedErrors(RuntimeError)
        self.assertEqual(len(errors), 1)
        self.assertEqual(other.systems, ["-"])


class DirectTCPProtocol(protocol.Protocol):
    """A plain TCP connection's protocol, registered in TCPReadTests."""

    def __init__(self):
        self.received = []
        self.lost = []
        self.fail = False

    def dataReceived(self, data):
        self.received.append(data)
        if self.fail:
            raise RuntimeError("dataReceived blew up")

    def connectionLost(self, reason):
        self.lost.append(reason)


class MainLoopTests(unittest.TestCase):
    skip = skip_reason

    def test_an_error_escaping_a_turn_is_logged_and_the_loop_goes_on(self):
        reactor = axreactor.AxKitReactor()
        self.addCleanup(reactor._poller.close)
        for end in (reactor.waker.i, reactor.waker.o):
            self.addCleanup(os.close, end)
        turns = []

        def turn(timeout):
            turns.append(timeout)
            if len(turns) == 1:
                raise RuntimeError("turn blew up")
            reactor._started = False  # (what stop() ends with)

        reactor.doIteration = turn
        reactor._started = reactor.running = True
        reactor.mainLoop()
        self.assertEqual(len(turns), 2)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class TCPReadTests(unittest.TestCase):
    """The reactor reads a plain TCP connection of a registered protocol
    itself: what Twisted's doRead would give, and Twisted's ends."""

    skip = skip_reason

    def setUp(self):
        self.reactor = axreactor.AxKitReactor()
        self.addCleanup(self._close_reactor)
        axreactor.dispatch_directly(DirectTCPProtocol)
        self.addCleanup(axreactor._DIRECT.discard, DirectTCPProtocol)
        factory = protocol.Factory.forProtocol(DirectTCPProtocol)
        self.protocols = []
        build = factory.buildProtocol

        def built(addr):
            p = build(addr)
            self.protocols.append(p)
            return p

        factory.buildProtocol = built
        self.port = self.reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.client = socket.create_connection(("127.0.0.1", self.port.getHost().port))
        self.addCleanup(self.client.close)
        for _ in range(20):
            if self.protocols:
                break
            self.reactor.doPoll(1)
        self.protocol = self.protocols[0]
        self.assertIs(self.protocol.transport.__class__, axreactor._TCP_SERVER)

    def _close_reactor(self):
        done = failure.Failure(error.ConnectionDone())
        for p in self.protocols:
            if p.transport.connected:
                self.reactor.removeReader(p.transport)
                p.transport.connectionLost(done)
        self.reactor.removeReader(self.port)
        self.port.connectionLost(done)
        self.reactor._poller.close()
        for end in (self.reactor.waker.i, self.reactor.waker.o):
            os.close(end)

    def poll_until(self, done):
        for _ in range(20):
            if done():
                return
            self.reactor.doPoll(1)
        self.fail("nothing happened")

    def test_data_reaches_the_protocol(self):
        self.client.sendall(b"hello")
        self.poll_until(lambda: self.protocol.received)
        self.assertEqual(b"".join(self.protocol.received), b"hello")
        self.assertEqual(self.protocol.lost, [])

    def test_read_by_the_reactor_not_through_do_read(self):
        # The point of the direct path: Twisted's doRead (and the calls
        # around it) is not how the bytes arrive.
        calls = []
        transport = self.protocol.transport
        real = transport.doRead
        transport.doRead = lambda: calls.append(1) or real()
        self.client.sendall(b"direct")
        self.poll_until(lambda: self.protocol.received)
        self.assertEqual(b"".join(self.protocol.received), b"direct")
        self.assertEqual(calls, [])

    def test_end_of_stream_is_connection_done(self):
        self.client.close()
        self.poll_until(lambda: self.protocol.lost)
        self.assertTrue(self.protocol.lost[0].check(error.ConnectionDone))
        self.assertNotIn(self.protocol.transport, self.reactor.getReaders())

    def test_a_reset_is_connection_lost(self):
        # SO_LINGER 0: the close sends a reset, and the read an error.
        self.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.client.close()
        self.poll_until(lambda: self.protocol.lost)
        self.assertTrue(self.protocol.lost[0].check(error.ConnectionLost))

    def test_an_error_in_data_received_is_logged_and_ends_the_connection(self):
        self.protocol.fail = True
        self.client.sendall(b"x")
        self.poll_until(lambda: self.protocol.lost)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertTrue(self.protocol.lost[0].check(RuntimeError))
        self.assertNotIn(self.protocol.transport, self.reactor.getReaders())


class InstallTests(unittest.TestCase):
    skip = skip_reason

    def test_install_default_leaves_an_installed_reactor(self):
        # Trial has installed its reactor: nothing is replaced.
        from twisted.internet import reactor

        self.assertIsNone(axreactor.install_default())
        from twisted.internet import reactor as after

        self.assertIs(after, reactor)

    def test_this_twisted_has_what_the_reactor_uses(self):
        # If a Twisted upgrade renames these, install() refuses (and this
        # test says why) instead of failing at the first event.
        self.assertTrue(axreactor._supported())


class TwistdTests(unittest.TestCase):
    skip = skip_reason

    def config(self):
        folder = tempfile.mkdtemp()
        self.addCleanup(__import__("shutil").rmtree, folder, True)
        with open(os.path.join(folder, "hello.txt"), "w") as f:
            f.write("hello\n")
        path = os.path.join(folder, "site.conf")
        with open(path, "w") as f:
            f.write(
                f'Listen tcp:0:interface=127.0.0.1\nDocumentRoot "{folder}"\n'
                "Plugin uri_to_file\nPlugin serve_file\n"
            )
        return path

    def serve(self, **kw):
        server = TwistdProcess(self.config(), **kw)
        self.addCleanup(server.stop)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        for _ in range(3):  # keep-alive: several reads on one connection
            conn.request("GET", "/hello.txt")
            response = conn.getresponse()
            self.assertEqual((response.status, response.read()), (200, b"hello\n"))
        conn.close()
        return server.output()

    def test_twistd_axkit_runs_on_the_axkit_reactor(self):
        self.assertIn("reactor class: axkit.reactor.AxKitReactor", self.serve())

    def test_cgi_programs_through_the_axkit_reactor(self):
        # The spawn threads' poll-hook hand-over, the waker and SIGCHLD
        # dispatch, under concurrent requests, a failed exec and a body.
        import concurrent.futures

        cgi_bin = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cgi-bin")
        path = self.config()
        with open(path, "a") as f:
            f.write(f"Plugin axkit.plugins.cgi.CGI\nScriptAlias /cgi-bin/ {cgi_bin}/\n")
        server = TwistdProcess(path)
        self.addCleanup(server.stop)

        def get(target, method="GET", body=None):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
            try:
                statuses = []
                for _ in range(5):  # keep-alive
                    conn.request(method, target, body=body)
                    response = conn.getresponse()
                    statuses.append((response.status, response.read()))
                return statuses
            finally:
                conn.close()

        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            results = list(pool.map(get, ["/cgi-bin/hello.sh"] * 20))
        self.assertEqual([r for rs in results for r in rs], [(200, b"Hello, world!\n")] * 100)
        self.assertEqual(get("/cgi-bin/interp-noexec.sh")[0][0], 403)
        self.assertEqual(get("/cgi-bin/badinterp.sh")[0][0], 502)
        self.assertEqual(get("/cgi-bin/cat.sh", "POST", b"x" * 100000)[0], (200, b"x" * 100000))
        self.assertEqual(get("/cgi-bin/hello.sh")[0], (200, b"Hello, world!\n"))
        self.assertIn("reactor class: axkit.reactor.AxKitReactor", server.output())

    def test_an_explicit_reactor_is_kept(self):
        output = self.serve(twistd_args=["--reactor=epoll"])
        self.assertIn("reactor class: twisted.internet.epollreactor.EPollReactor", output)
