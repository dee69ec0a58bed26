"""The engine's hand-over after a 101 (request.upgrade), in memory."""

import os

from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from axkit.testing import MemorySite

from . import upgradeplugins
from .test_logging import TempDirMixin

HEAD = "GET {path} HTTP/1.1\r\nHost: h\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"
NEXT = b"GET /plain HTTP/1.1\r\nHost: h\r\n\r\n"


class HandOverTests(TempDirMixin, SynchronousTestCase):
    def setUp(self):
        upgradeplugins.made.clear()
        self.log = self.logfile("access.log")
        self.site = MemorySite(f"""
            Listen tcp:0:interface=127.0.0.1
            Plugin tests.upgradeplugins.Upgrader
            Plugin access_log
            AccessLog {self.log} common
        """)
        self.addCleanup(self.site.close)
        self.conn = self.site.connect()

    def head_and_rest(self):
        value = self.conn.transport.value()
        head, sep, rest = value.partition(b"\r\n\r\n")
        self.assertTrue(sep, value)
        return head, rest

    def test_now_sends_101_and_hands_over_bytes_after_the_head(self):
        self.conn.send(HEAD.format(path="/now").encode() + b"hello")
        head, rest = self.head_and_rest()
        lines = head.split(b"\r\n")
        self.assertEqual(lines[0], b"HTTP/1.1 101 Switching Protocols")
        self.assertIn(b"Upgrade: echo", lines)
        self.assertIn(b"Connection: Upgrade", lines)
        self.assertNotIn(b"Content-Length", head)
        self.assertEqual(rest, b"hello")
        (proto,) = upgradeplugins.made
        self.assertIs(proto.connected_with, self.conn.transport)
        self.conn.send(b" world")
        self.assertEqual(b"".join(proto.received), b"hello world")

    def test_later_holds_the_bytes_until_the_101(self):
        self.conn.send(HEAD.format(path="/later").encode() + b"one,")
        self.conn.send(b"two,")
        self.assertEqual(self.conn.transport.value(), b"")
        self.site.clock.advance(1)
        head, rest = self.head_and_rest()
        self.assertIn(b"101 Switching Protocols", head)
        self.assertEqual(rest, b"one,two,")
        self.conn.send(b"three")
        (proto,) = upgradeplugins.made
        self.assertEqual(b"".join(proto.received), b"one,two,three")

    def test_a_request_after_the_upgrade_is_never_parsed(self):
        for path in ("/now", "/later"):
            upgradeplugins.made.clear()
            conn = self.site.connect()
            conn.send(HEAD.format(path=path).encode() + NEXT + NEXT)
            self.site.clock.advance(1)
            value = conn.transport.value()
            self.assertEqual(value.count(b"HTTP/1.1 "), 1, value)  # the 101, no answer
            self.assertTrue(value.endswith(b"\r\n\r\n" + NEXT + NEXT), value)  # echoed
            self.assertEqual(b"".join(upgradeplugins.made[0].received), NEXT + NEXT)

    def test_an_upgrade_queued_behind_a_slow_answer(self):
        self.conn.send(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n" + HEAD.format(path="/now").encode())
        self.conn.send(b"after")
        self.assertEqual(self.conn.transport.value(), b"")
        self.site.clock.advance(1)
        value = self.conn.transport.value()
        self.assertTrue(value.startswith(b"HTTP/1.1 200 OK\r\n"), value)
        self.assertIn(b"slow", value)
        self.assertIn(b"HTTP/1.1 101 Switching Protocols\r\n", value)
        self.assertTrue(value.endswith(b"\r\n\r\nafter"), value)
        self.assertEqual(upgradeplugins.made[0].received, [b"after"])

    def test_large_data_after_the_head_keeps_its_order(self):
        # More than one parser slice (1 KB) after the head in the same read.
        payload = os.urandom(40000)
        for path in ("/now", "/later"):
            upgradeplugins.made.clear()
            conn = self.site.connect()
            conn.send(HEAD.format(path=path).encode() + payload)
            conn.send(b"tail")
            self.site.clock.advance(1)
            self.assertEqual(b"".join(upgradeplugins.made[0].received), payload + b"tail")

    def test_timeouts_are_off_after_the_switch(self):
        self.conn.send(HEAD.format(path="/now").encode())
        self.site.clock.advance(24 * 3600)
        self.site.clock.advance(24 * 3600)
        self.assertFalse(self.conn.closed)
        self.conn.send(b"still here")
        self.assertEqual(b"".join(upgradeplugins.made[0].received), b"still here")

    def test_the_access_log_shows_101(self):
        self.conn.send(HEAD.format(path="/now").encode())
        self.assertRegex(self.read(self.log), r'"GET /now HTTP/1\.1" 101 -\n$')

    def test_half_close_and_loss_go_to_the_protocol(self):
        self.conn.send(HEAD.format(path="/now").encode())
        (proto,) = upgradeplugins.made
        self.conn.half_close()
        self.assertTrue(proto.half_closed)
        self.assertFalse(self.conn.closed)  # the protocol decides
        self.conn.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertIsNotNone(proto.lost)
        self.assertEqual(len(self.site.factory.connections), 0)

    def test_half_close_before_the_101_reaches_the_protocol(self):
        self.conn.send(HEAD.format(path="/later").encode() + b"x")
        self.conn.half_close()
        self.site.clock.advance(1)
        (proto,) = upgradeplugins.made
        self.assertEqual(proto.received, [b"x"])
        self.assertTrue(proto.half_closed)

    def test_a_plain_answer_lets_the_next_request_be_parsed(self):
        self.conn.send(HEAD.format(path="/plain").encode() + NEXT)
        responses = self.conn.responses()
        self.assertEqual([r.status for r in responses], [200, 200])
        self.assertEqual(responses[0].body, b"plain True")
        self.assertEqual(responses[1].body, b"plain False")
        self.assertEqual(upgradeplugins.made, [])

    def test_no_upgrade_asked_is_not_upgradable(self):
        self.conn.request("GET", "/now")
        self.assertEqual(self.conn.responses()[0].status, 426)
        # Upgrade without Connection: upgrade is no upgrade either.
        self.conn.request("GET", "/now", [("Upgrade", "echo")])
        self.assertEqual(self.conn.responses()[1].status, 426)

    def test_upgrade_without_an_upgrade_asked_raises(self):
        self.conn.request("GET", "/force")
        (response,) = self.conn.responses()
        self.assertEqual(response.status, 500)
        self.assertNotIn(b" 101 ", self.conn.transport.value())
        self.flushLoggedErrors(RuntimeError)

    def test_a_graceful_stop_closes_a_switched_connection(self):
        self.conn.send(HEAD.format(path="/now").encode())
        self.assertFalse(self.conn.closed)
        self.site.factory.drain()
        self.assertTrue(self.conn.closed)

    def test_http_1_0_is_not_upgradable(self):
        self.conn.send(b"GET /now HTTP/1.0\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
        self.assertEqual(self.conn.responses()[0].status, 426)
