"""Plugin remoteip: RemoteIPHeader/RemoteIPTrustedProxy (mod_remoteip's rule),
and what sees the result: Require ip, the access log, CGI and WSGI environs."""

import io
import json
import os
import tempfile

from twisted.trial import unittest

from axkit.hooks import DONE
from axkit.log import close_file
from axkit.plugins.remoteip import LOOPBACK, cidr, real_client
from axkit.testing import MemorySite

NETS = (cidr("10.0.0.0/8"), cidr("127.0.0.1"))


class Echo:
    """Answers with what a handler sees of the client."""

    name = "remoteip_echo"

    def hook_response(self, request, conf):
        from axkit.cgi.environ import build_environ as cgi_environ
        from axkit.wsgi.environ import build_environ as wsgi_environ
        from axkit.wsgi.environ import mount_base

        class ScopeEnv:
            base = {}
            pass_auth = False
            unset = ()

        cgi = cgi_environ(request, ScopeEnv, "/x", "/x", "")
        wsgi = wsgi_environ(request, mount_base("/x", None, None), "", io.BytesIO())
        request.send(
            200,
            json.dumps(
                {
                    "client": request.client_address,
                    "xff": request.headers.get("x-forwarded-for"),
                    "cgi": cgi["REMOTE_ADDR"],
                    "wsgi": wsgi["REMOTE_ADDR"],
                    "hops": request.notes.get("remoteip.proxies"),
                }
            ),
            "application/json",
        )
        return DONE


class RuleTests(unittest.SynchronousTestCase):
    """real_client: right to left, trusted hops stripped."""

    def test_first_untrusted_from_the_right(self):
        client, unread, hops = real_client(
            "127.0.0.1", ["198.51.100.2", "203.0.113.9", "10.0.0.2"], NETS
        )
        self.assertEqual(client, "203.0.113.9")
        self.assertEqual(unread, ["198.51.100.2"])
        self.assertEqual(hops, ["127.0.0.1", "10.0.0.2"])

    def test_untrusted_peer_ignored(self):
        self.assertEqual(real_client("192.0.2.1", ["203.0.113.9"], NETS)[0], None)

    def test_all_trusted_gives_leftmost(self):
        self.assertEqual(real_client("127.0.0.1", ["10.1.1.1", "10.0.0.2"], NETS)[0], "10.1.1.1")

    def test_garbage_stops(self):
        client, unread, _ = real_client("127.0.0.1", ["203.0.113.9", "10.0.0.2", "junk"], NETS)
        self.assertEqual(client, None)
        self.assertEqual(unread, ["203.0.113.9", "10.0.0.2", "junk"])
        client, unread, _ = real_client("127.0.0.1", ["junk", "10.0.0.2"], NETS)
        self.assertEqual(client, "10.0.0.2")
        self.assertEqual(unread, ["junk"])

    def test_ports_and_brackets(self):
        self.assertEqual(real_client("127.0.0.1", ["[2001:db8::1]:443"], NETS)[0], "2001:db8::1")
        self.assertEqual(real_client("127.0.0.1", ["203.0.113.9:5555"], NETS)[0], "203.0.113.9")
        self.assertEqual(real_client("::ffff:127.0.0.1", ["203.0.113.9"], NETS)[0], "203.0.113.9")

    def test_default_trusts_loopback_only(self):
        self.assertEqual(real_client("127.0.0.5", ["203.0.113.9"], LOOPBACK)[0], "203.0.113.9")
        self.assertEqual(real_client("10.0.0.1", ["203.0.113.9"], LOOPBACK)[0], None)


class SiteTests(unittest.SynchronousTestCase):
    def site(self, extra=""):
        site = MemorySite(
            f"""
            Plugin remoteip
            Plugin access
            Plugin tests.test_remoteip_header.Echo
            RemoteIPHeader X-Forwarded-For
            RemoteIPTrustedProxy 127.0.0.1 10.0.0.0/8
            {extra}
            """
        )
        self.addCleanup(site.close)
        return site

    def get(self, site, xff, peer=("127.0.0.1", 40000), path="/"):
        conn = site.connect(peer)
        conn.request("GET", path, [("X-Forwarded-For", xff)] if xff else [])
        return site.wait_for(conn)[0]

    def test_everything_sees_the_client(self):
        r = self.get(self.site(), "198.51.100.2, 203.0.113.9, 10.0.0.2")
        self.assertEqual(r.status, 200)
        seen = json.loads(r.body)
        self.assertEqual(seen["client"], "203.0.113.9")
        self.assertEqual(seen["cgi"], "203.0.113.9")
        self.assertEqual(seen["wsgi"], "203.0.113.9")
        self.assertEqual(seen["xff"], "198.51.100.2")  # what is left unread
        self.assertEqual(seen["hops"], ["127.0.0.1", "10.0.0.2"])

    def test_header_from_untrusted_peer_ignored(self):
        r = self.get(self.site(), "203.0.113.9", peer=("192.0.2.1", 5000))
        seen = json.loads(r.body)
        self.assertEqual(seen["client"], "192.0.2.1")
        self.assertEqual(seen["xff"], "203.0.113.9")

    def test_each_request_of_a_front_end_connection(self):
        # nginx reuses its upstream connections for many clients.
        site = self.site()
        conn = site.connect()
        conn.request("GET", "/", [("X-Forwarded-For", "203.0.113.1")])
        conn.request("GET", "/", [("X-Forwarded-For", "203.0.113.2")])
        conn.request("GET", "/")
        got = [json.loads(r.body) for r in site.wait_for(conn, 3)]
        self.assertEqual([g["client"] for g in got], ["203.0.113.1", "203.0.113.2", "127.0.0.1"])
        self.assertEqual([g["cgi"] for g in got], ["203.0.113.1", "203.0.113.2", "127.0.0.1"])

    def test_require_ip(self):
        site = self.site(
            """
            <Location /inside>
                Require ip 203.0.113.0/24
            </Location>
            """
        )
        self.assertEqual(self.get(site, "203.0.113.9", path="/inside").status, 200)
        self.assertEqual(self.get(site, "198.51.100.9", path="/inside").status, 403)
        self.assertEqual(self.get(site, None, path="/inside").status, 403)
        # A client outside cannot claim an inside address.
        self.assertEqual(self.get(site, "203.0.113.9", ("192.0.2.1", 1), "/inside").status, 403)

    def test_access_log(self):
        folder = tempfile.mkdtemp()
        path = os.path.join(folder, "access.log")
        self.addCleanup(close_file, path)
        site = self.site(f'Plugin access_log\nAccessLog {path} "%a %h %>s"')
        self.get(site, "203.0.113.9")
        self.get(site, "203.0.113.9", peer=("192.0.2.1", 1))
        close_file(path)
        with open(path) as f:
            self.assertEqual(f.read(), "203.0.113.9 203.0.113.9 200\n192.0.2.1 192.0.2.1 200\n")

    def test_bad_cidr_is_a_config_error(self):
        from axkit.config.errors import ConfigErrors

        with self.assertRaises(ConfigErrors) as e:
            MemorySite("Plugin remoteip\nRemoteIPTrustedProxy 10.0.0.0/33\n")
        self.assertIn("<test config>:2:", str(e.exception.errors[0]))
