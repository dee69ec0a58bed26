"""Big files over real sockets: zero-copy sendfile on TCP, the bounded
producer on TLS, and files truncated or replaced while being sent."""

import os
import shutil
import subprocess

from twisted.internet import defer, protocol, reactor, task, threads
from twisted.internet.endpoints import SSL4ClientEndpoint, TCP4ClientEndpoint, connectProtocol

from axkit.files import cache as filecache
from axkit.files import producers
from axkit.testing import parse_responses, start_server

from .rawclient import exchange, read_until_closed, request_bytes
from .static_support import REPO, STATIC_PLUGINS, StaticTestCase

BIG = os.urandom(2 * 1024 * 1024 + 12345)


class SlowReader(protocol.Protocol):
    """Reads the head, then stops reading until told to go on."""

    def __init__(self, data):
        self.data = data
        self.received = []
        self.got_data = defer.Deferred()
        self.done = defer.Deferred()

    def connectionMade(self):
        self.transport.write(self.data)

    def dataReceived(self, data):
        self.received.append(data)
        if self.got_data is not None:
            d, self.got_data = self.got_data, None
            self.transport.pauseProducing()
            d.callback(None)

    def go_on(self):
        self.transport.resumeProducing()

    def connectionLost(self, reason):
        if self.got_data is not None:
            d, self.got_data = self.got_data, None
            d.callback(None)
        self.done.callback(b"".join(self.received))


def split_head(data):
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        [
            line.split(b":")[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ][0]
    )
    return head, length, body


class SendfileTests(StaticTestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.make_root()
        self.write("big.bin", BIG)
        self.calls = 0
        real = os.sendfile

        def counting(*args):
            self.calls += 1
            return real(*args)

        self.patch(producers.os, "sendfile", counting)
        yield self.start()

    @defer.inlineCallbacks
    def test_whole_file_with_sendfile(self):
        r = yield self.get("/big.bin")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, BIG)
        self.assertGreater(self.calls, 0)

    @defer.inlineCallbacks
    def test_head_and_empty_file(self):
        r = yield self.get("/big.bin", method="HEAD")
        self.assertEqual((r.status, r.header("Content-Length"), r.body), (200, str(len(BIG)), b""))
        self.assertTrue(r.raw.endswith(b"\r\n\r\n"))
        self.write("empty.txt", b"")
        r = yield self.get("/empty.txt")
        self.assertEqual((r.status, r.header("Content-Length"), r.body), (200, "0", b""))

    @defer.inlineCallbacks
    def test_pipelined_after_big_file(self):
        # The next response must wait behind the sendfile'd body, in order.
        self.write("after.txt", "after\n")
        data = (
            request_bytes("/big.bin", close=False)
            + request_bytes("/after.txt", close=False)
            + request_bytes("/big.bin", [("Range", "bytes=0-2,10-12")])
        )
        got = yield exchange(self.server.port, data)
        responses = parse_responses(got, ["GET", "GET", "GET"])
        self.assertEqual([r.status for r in responses], [200, 200, 206])
        self.assertEqual(responses[0].body, BIG)
        self.assertEqual(responses[1].body, b"after\n")
        self.assertIn(BIG[10:13], responses[2].body)

    @defer.inlineCallbacks
    def test_truncated_while_sending_ends_cleanly(self):
        original = os.urandom(32 * 1024 * 1024)
        self.write("trunc.bin", original)
        reader = SlowReader(request_bytes("/trunc.bin"))
        yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.server.port), reader)
        yield reader.got_data
        yield task.deferLater(reactor, 0.3, lambda: None)
        with open(os.path.join(self.root, "trunc.bin"), "r+b") as f:
            f.truncate(1024 * 1024)
        reader.go_on()
        data = yield reader.done  # no hang: the server closes
        head, length, body = split_head(data)
        self.assertEqual(length, len(original))
        # Cut short of the promised length: the client knows it is incomplete.
        self.assertLess(len(body), length)
        # What the file still holds arrived intact.  Past the new end, bytes
        # sendfile had queued in the kernel before the truncation may leave
        # as zeros (zero-copy sends the pages as they are when they leave):
        # page by page, each is the old content or zeros, never anything else.
        kept = 1024 * 1024
        self.assertEqual(body[:kept], original[:kept])
        zeros = bytes(4096)
        for at in range(kept, len(body), 4096):
            page = body[at : at + 4096]
            self.assertIn(page, (original[at : at + len(page)], zeros[: len(page)]), at)

    @defer.inlineCallbacks
    def test_replaced_while_sending_sends_old_file_whole(self):
        original = os.urandom(24 * 1024 * 1024)
        self.write("swap.bin", original)
        reader = SlowReader(request_bytes("/swap.bin"))
        yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.server.port), reader)
        yield reader.got_data
        yield task.deferLater(reactor, 0.3, lambda: None)
        new = os.path.join(self.root, "swap.new")
        with open(new, "wb") as f:
            f.write(b"new")
        os.rename(new, os.path.join(self.root, "swap.bin"))
        reader.go_on()
        data = yield reader.done
        head, length, body = split_head(data)
        self.assertEqual(body, original)
        r = yield self.get("/swap.bin")
        self.assertEqual(r.body, b"new")

    @defer.inlineCallbacks
    def test_cached_descriptor_sent_slowly_then_again(self):
        # A file the cache keeps open (over FileCacheMaxFileSize, under
        # MAX_OPEN_FILE_SIZE, raised here past what the sockets buffer)
        # sent to a slow reader goes over several turns on a descriptor of
        # its own; the cached one serves the next request whole.
        self.patch(filecache, "MAX_OPEN_FILE_SIZE", 64 * 1024 * 1024)
        owned = []
        real_own = filecache.SharedFile.own
        self.patch(filecache.SharedFile, "own", lambda f: owned.append(1) or real_own(f))
        mid = os.urandom(16 * 1024 * 1024)
        self.write("mid.bin", mid)
        r = yield self.get("/mid.bin")
        self.assertEqual(r.body, mid)
        reader = SlowReader(request_bytes("/mid.bin"))
        yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.server.port), reader)
        yield reader.got_data
        yield task.deferLater(reactor, 0.3, lambda: None)
        r = yield self.get("/mid.bin")
        self.assertEqual(r.body, mid)
        reader.go_on()
        data = yield reader.done
        self.assertEqual(split_head(data)[2], mid)
        self.assertTrue(owned)  # each went over several turns, on its own descriptor

    @defer.inlineCallbacks
    def test_deleted_file_closes_its_cached_descriptor(self):
        mid = os.urandom(300 * 1024)
        path = os.path.join(self.root, "gone.bin")
        self.write("gone.bin", mid)
        r = yield self.get("/gone.bin")
        self.assertEqual(r.body, mid)
        kept = filecache.CACHE.get(os.path.realpath(path)) or filecache.CACHE.get(path)
        self.assertIsNotNone(kept)
        self.assertIsNotNone(kept.file)
        held = kept.file
        os.unlink(path)
        r = yield self.get("/gone.bin")
        self.assertEqual(r.status, 404)
        self.assertTrue(held.closed)


class TLSTests(StaticTestCase):
    """On TLS there is no socket to sendfile into: the bounded producer."""

    @defer.inlineCallbacks
    def setUp(self):
        if shutil.which("openssl") is None:
            raise self.skipTest("openssl binary not installed")
        self.make_root()
        self.write("big.bin", BIG)
        key = os.path.join(self.root, "..key.pem")
        cert = os.path.join(self.root, "..cert.pem")
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                key,
                "-out",
                cert,
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
            ],
            check=True,
            capture_output=True,
        )
        self.calls = 0
        real = os.sendfile

        def counting(*args):
            self.calls += 1
            return real(*args)

        self.patch(producers.os, "sendfile", counting)
        text = (
            f'Listen "ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"\n'
            f'DocumentRoot "{self.root}"\n' + STATIC_PLUGINS.format(repo=REPO)
        )
        self.server = yield start_server(text)
        self.addCleanup(self.server.stop)

    @defer.inlineCallbacks
    def test_big_file_over_tls(self):
        from twisted.internet.ssl import CertificateOptions

        reader = SlowReader(request_bytes("/big.bin"))
        yield connectProtocol(
            SSL4ClientEndpoint(reactor, "127.0.0.1", self.server.port, CertificateOptions()), reader
        )
        yield reader.got_data
        yield task.deferLater(reactor, 0.2, lambda: None)
        reader.go_on()
        data = yield reader.done
        head, length, body = split_head(data)
        self.assertEqual(length, len(BIG))
        self.assertEqual(body, BIG)
        self.assertEqual(self.calls, 0)

    @defer.inlineCallbacks
    def test_clients_offering_alpn_are_served(self):
        # Browsers and curl offer ALPN (h2, http/1.1): the handshake must
        # pick http/1.1, not fail with an "internal error" alert.
        import socket
        import ssl

        def fetch():
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(["h2", "http/1.1"])
            with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as raw:
                with context.wrap_socket(raw) as s:
                    chosen = s.selected_alpn_protocol()
                    s.sendall(request_bytes("/big.bin"))
                    data = read_until_closed(s, 10, strict=True)
            return chosen, data

        chosen, data = yield threads.deferToThread(fetch)
        self.assertEqual(chosen, "http/1.1")
        head, length, body = split_head(data)
        self.assertEqual(body, BIG)
