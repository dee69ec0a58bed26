"""<Proxy balancer://...>, UNIX-socket backends and the proxy's config errors."""

import json
import os
import shutil
import tempfile

from twisted.internet import defer, reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web import server

from axkit.config import ConfigErrors
from axkit.proxy import client
from axkit.testing import load_config
from tests.rawclient import exchange, request_bytes
from tests.test_proxy_e2e import CountingSite, Recorder, head_and_body


class Balanced(TestCase):
    @defer.inlineCallbacks
    def start(self, method="byrequests", dead=1, extra=""):
        from axkit.testing import start_server

        self.backends = []
        members = []
        for _ in range(2):
            rec = Recorder()
            site = CountingSite(rec)
            site.log = lambda request: None
            port = reactor.listenTCP(0, site, interface="127.0.0.1")
            self.addCleanup(port.stopListening)
            rec.port = port.getHost().port
            self.backends.append(rec)
            members.append(f"BalancerMember http://127.0.0.1:{rec.port}/m")
        members += [f"BalancerMember http://127.0.0.1:{1 + i}" for i in range(dead)]
        folder = tempfile.mkdtemp(prefix="axp")
        self.addCleanup(shutil.rmtree, folder, True)
        self.sock = os.path.join(folder, "app.sock")
        self.unix = Recorder()
        usite = server.Site(self.unix)
        usite.log = lambda request: None
        uport = reactor.listenUNIX(self.sock, usite)
        self.addCleanup(uport.stopListening)
        conf = (
            "Plugin proxy\n<Proxy balancer://app>\n"
            + "\n".join(members)
            + f"\nProxySet lbmethod={method} failures=1 retry=30\n</Proxy>\n"
            "ProxyPass /lb/ balancer://app/\n"
            "<Proxy balancer://gone>\nBalancerMember http://127.0.0.1:1\n</Proxy>\n"
            "ProxyPass /gone/ balancer://gone/\n"
            f"ProxyPass /sock/ unix:{self.sock}|http://localhost/u/\n" + extra
        )
        self.server = yield start_server(conf)
        self.addCleanup(self.server.stop)
        self.addCleanup(client.close_all)

    def ask(self, path, method="GET", body=b""):
        return exchange(self.server.port, request_bytes(path, method=method, body=body))

    @defer.inlineCallbacks
    def test_byrequests_spreads_and_skips_a_dead_member(self):
        yield self.start()
        for _ in range(10):
            raw = yield self.ask("/lb/x")
            self.assertEqual(head_and_body(raw)[0], "HTTP/1.1 200 OK")
        counts = sorted(len(b.seen) for b in self.backends)
        self.assertEqual(sum(counts), 10)
        self.assertGreaterEqual(counts[0], 4)
        self.assertEqual(json.loads(head_and_body(raw)[2])["uri"], "/m/x")

    @defer.inlineCallbacks
    def test_post_goes_to_a_live_member_when_one_refuses(self):
        yield self.start(dead=2)
        for _ in range(4):
            raw = yield self.ask("/lb/p", "POST", b"once")
            self.assertEqual(head_and_body(raw)[0], "HTTP/1.1 200 OK")
        self.assertEqual(sum(len(b.seen) for b in self.backends), 4)

    @defer.inlineCallbacks
    def test_every_member_down_is_503_at_once(self):
        yield self.start()
        raw = yield self.ask("/gone/x")
        self.assertEqual(head_and_body(raw)[0], "HTTP/1.1 502 Bad Gateway")
        started = reactor.seconds()
        raw = yield self.ask("/gone/x")
        self.assertEqual(head_and_body(raw)[0], "HTTP/1.1 503 Service Unavailable")
        self.assertLess(reactor.seconds() - started, 1)

    @defer.inlineCallbacks
    def test_bybusyness(self):
        yield self.start("bybusyness", dead=0)
        for _ in range(6):
            yield self.ask("/lb/y")
        self.assertEqual([len(b.seen) for b in self.backends], [3, 3])

    @defer.inlineCallbacks
    def test_unix_socket_backend(self):
        yield self.start()
        raw = yield self.ask("/sock/z?q")
        status, fields, body = head_and_body(raw)
        self.assertEqual(status, "HTTP/1.1 200 OK")
        seen = json.loads(body)
        self.assertEqual(seen["uri"], "/u/z?q")
        self.assertIn(["Host", "localhost"], seen["headers"])

    @defer.inlineCallbacks
    def test_preserve_host(self):
        yield self.start(extra="ProxyPreserveHost On\nProxyAddHeaders Off\n")
        raw = yield self.ask("/sock/h")
        seen = json.loads(head_and_body(raw)[2])
        got = {k.lower(): v for k, v in seen["headers"]}
        self.assertEqual(got["host"], "localhost")
        self.assertNotIn("x-forwarded-for", got)


class ConfigErrorsTest(SynchronousTestCase):
    def assertRefused(self, text, fragment):
        with self.assertRaises((ConfigErrors, Exception)) as caught:
            load_config("Plugin proxy\n" + text)
        self.assertIn(fragment, str(caught.exception))

    def test_bad_lines(self):
        self.assertRefused("ProxyPass /a ftp://x/", "http://")
        self.assertRefused("ProxyPass a http://x/", "must start with '/'")
        self.assertRefused("ProxyPass /a http://x/ colour=red", "unknown key")
        self.assertRefused("ProxyPass /a http://x/ timeout=soon", "duration")
        self.assertRefused("ProxyPass /a unix:/x.sock", "unix:")
        self.assertRefused("<Proxy balancer://b>\n</Proxy>", "no BalancerMember")
        self.assertRefused(
            "<Proxy balancer://b>\nBalancerMember http://x/\nProxySet lbmethod=random\n</Proxy>",
            "lbmethod",
        )
        self.assertRefused("<Proxy balancer://b>\nDocumentRoot /\n</Proxy>", ":3:")

    def test_good_lines(self):
        config = load_config(
            "Plugin proxy\nProxyPass /a/ http://127.0.0.1:8000/x/ timeout=5s max=4\n"
            "ProxyPass /b/ !\n"
        )
        self.assertIsNotNone(config)
