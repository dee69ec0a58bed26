"""Plugin metrics: Prometheus text format, bounded labels, who may scrape."""

from prometheus_client.parser import text_string_to_metric_families
from twisted.trial import unittest

import axkit.wsgi.pool
from axkit import status
from axkit.hooks import DONE
from axkit.status import Counters
from axkit.testing import MemorySite


class Slow:
    """Answers after a second of the fake clock; 404 for /missing."""

    name = "metrics_slow"

    def hook_response(self, request, conf):
        if request.path == "/missing":
            return 404
        from twisted.internet.task import deferLater

        def answer():
            request.send(200, "x" * 100, "text/plain")
            return DONE

        return deferLater(request.reactor, 0.3 if request.path == "/slow" else 0, answer)


def samples(body):
    """{(name, frozenset(labels)): value} of an exposition."""
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


class MetricsTests(unittest.SynchronousTestCase):
    def setUp(self):
        self.patch(status, "COUNTERS", Counters())

    def site(self, inside=""):
        site = MemorySite(
            f"""
            Plugin metrics
            Plugin access
            <Server main>
                ServerName main.example
            </Server>
            <Location /metrics>
                Metrics On
                {inside}
            </Location>
            Plugin tests.test_status_metrics.Slow
            <Server other>
                ServerName other.example
            </Server>
            """
        )
        for plugin in site.config.plugins.values():
            if plugin.name == "metrics":
                plugin.startup(site.config, site.clock)
        self.addCleanup(site.close)
        return site

    def scrape(self, site, peer=("127.0.0.1", 40000)):
        conn = site.connect(peer)
        conn.request("GET", "/metrics")
        return site.wait_for(conn)[0]

    def test_requests_durations_bytes(self):
        site = self.site()
        site.get("/a")
        site.get("/slow")
        site.get("/missing")
        site.request("PROPFIND", "/a")
        site.request("GET", "/a", headers=[("Host", "other.example")])
        site.request("GET", "/a", headers=[("Host", "attacker-chosen.example")])
        r = self.scrape(site)
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("content-type").startswith("text/plain; version=0.0.4"))
        got = samples(r.body)

        def requests(code, method, server):
            labels = frozenset({"code": code, "method": method, "server": server}.items())
            return got.get(("axkit_http_requests_total", labels))

        # Unknown Hosts go to the default server: "main.example".
        self.assertEqual(requests("200", "GET", "main.example"), 3)
        self.assertEqual(requests("200", "GET", "other.example"), 1)
        self.assertEqual(requests("404", "GET", "main.example"), 1)
        self.assertEqual(requests("200", "_other", "main.example"), 1)  # PROPFIND
        names = {name for name, _ in got}
        self.assertNotIn("attacker-chosen.example", str(got))
        self.assertEqual(
            got[("axkit_http_response_bytes_total", frozenset({("server", "other.example")}))], 100
        )
        main = frozenset({("server", "main.example")})
        self.assertEqual(got[("axkit_http_request_duration_seconds_count", main)], 5)
        le = frozenset({("server", "main.example"), ("le", "0.25")})
        self.assertEqual(got[("axkit_http_request_duration_seconds_bucket", le)], 4)
        le = frozenset({("server", "main.example"), ("le", "0.5")})
        self.assertEqual(got[("axkit_http_request_duration_seconds_bucket", le)], 5)
        self.assertAlmostEqual(got[("axkit_http_request_duration_seconds_sum", main)], 0.3)
        for name in (
            "axkit_http_requests_in_flight",
            "axkit_connections_active",
            "axkit_connections_reading",
            "axkit_connections_writing",
            "axkit_connections_waiting",
            "axkit_connections_accepted_total",
            "axkit_cgi_running",
            "axkit_wsgi_queued",
            "axkit_config_reloads_total",
            "process_cpu_seconds_total",
        ):
            self.assertIn(name, names)
        self.assertEqual(got[("axkit_http_requests_in_flight", frozenset())], 1)  # the scrape
        self.assertEqual(got[("axkit_connections_active", frozenset())], 7)
        self.assertEqual(got[("axkit_connections_waiting", frozenset())], 6)
        self.assertEqual(got[("axkit_connections_accepted_total", frozenset())], 7)

    def test_pools(self):
        class Pool:
            busy, size, depth = 2, 8, 9

        self.patch(axkit.wsgi.pool, "_shared", Pool())
        got = samples(self.scrape(self.site()).body)
        self.assertEqual(got[("axkit_wsgi_busy", frozenset())], 2)
        self.assertEqual(got[("axkit_wsgi_queued", frozenset())], 9)

    def test_loopback_only_unless_require(self):
        self.assertEqual(self.scrape(self.site(), ("192.0.2.1", 1)).status, 403)
        site = self.site("Require ip 192.0.2.0/24")
        self.assertEqual(self.scrape(site, ("192.0.2.1", 1)).status, 200)
        self.assertEqual(self.scrape(site, ("127.0.0.1", 1)).status, 403)
