"""ProxyPass's WebSocket forms: upgrade=websocket, ws:// and wss:// URLs."""

from twisted.trial.unittest import SynchronousTestCase

from axkit.config import ConfigErrors
from axkit.testing import MemorySite, load_config


def routes(text):
    config = load_config("Plugin proxy\n" + text)
    return config.global_resolved.conf.proxy_pass


class ConfigTests(SynchronousTestCase):
    def test_the_key(self):
        (route,) = routes("ProxyPass /ws/ http://127.0.0.1:9/ upgrade=websocket\n")
        self.assertEqual(route.upgrade, "websocket")
        (route,) = routes("ProxyPass /ws/ http://127.0.0.1:9/ upgrade=WebSocket timeout=5\n")
        self.assertEqual(route.upgrade, "websocket")
        (route,) = routes("ProxyPass /p/ http://127.0.0.1:9/\n")
        self.assertIsNone(route.upgrade)

    def test_ws_and_wss_urls_imply_the_key(self):
        (route,) = routes("ProxyPass /ws/ ws://127.0.0.1:9/app/\n")
        self.assertEqual(
            (route.upgrade, route.backend.tls, route.base), ("websocket", False, "/app/")
        )
        (route,) = routes("ProxyPass /ws/ wss://example.test/\n")
        self.assertEqual(
            (route.upgrade, route.backend.tls, route.backend.port), ("websocket", True, 443)
        )
        (route,) = routes("ProxyPass /ws/ unix:/run/app.sock|ws://localhost/\n")
        self.assertEqual(route.backend.socket, "/run/app.sock")

    def test_bad_forms_are_refused_with_the_line(self):
        for line, why in (
            ("ProxyPass /ws/ http://127.0.0.1:9/ upgrade=h2c", "upgrade= takes websocket"),
            ("ProxyPass /ws/ ftp://127.0.0.1:9/", "must be http:// or ws://"),
            ("ProxyPass /ws/ unix:/run/a.sock|wss://localhost/", "must be http:// or ws://"),
        ):
            with self.assertRaises(ConfigErrors) as caught:
                routes(line + "\n")
            self.assertIn(":2:", str(caught.exception))
            self.assertIn(why, str(caught.exception))

    def test_https_does_not_imply_the_key(self):
        (route,) = routes("ProxyPass /p/ https://example.test/\n")
        self.assertIsNone(route.upgrade)

    def test_a_plain_request_on_a_wss_route_is_proxied(self):
        # (As Apache falls back to mod_proxy_http: over https, here.)
        site = MemorySite("Plugin proxy\nProxyPass /ws/ wss://127.0.0.1:9/\n")
        self.addCleanup(site.close)
        conn = site.connect()
        conn.request("GET", "/ws/x")
        self.assertEqual(conn.responses(), [])  # waiting for the backend
        self.assertEqual(site.clock.tcpClients[-1][:2], ("127.0.0.1", 9))
