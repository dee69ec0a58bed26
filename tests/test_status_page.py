"""Plugin server_status: Apache's ?auto keys and values, the page, who may see it."""

from twisted.trial import unittest

import axkit.wsgi.pool
from axkit import status
from axkit.cgi.slots import SLOTS
from axkit.hooks import DONE
from axkit.status import Counters
from axkit.testing import MemorySite

APACHE_KEYS = [
    "ServerVersion",
    "ServerMPM",
    "CurrentTime",
    "RestartTime",
    "ParentServerConfigGeneration",
    "ParentServerMPMGeneration",
    "ServerUptimeSeconds",
    "ServerUptime",
    "Load1",
    "Load5",
    "Load15",
    "Total Accesses",
    "Total kBytes",
    "Total Duration",
    "CPUUser",
    "CPUSystem",
    "CPUChildrenUser",
    "CPUChildrenSystem",
    "CPULoad",
    "Uptime",
    "ReqPerSec",
    "BytesPerSec",
    "BytesPerReq",
    "DurationPerReq",
    "BusyWorkers",
    "GracefulWorkers",
    "IdleWorkers",
    "Processes",
    "Stopping",
    "ConnsTotal",
    "ConnsAsyncWriting",
    "ConnsAsyncKeepAlive",
    "ConnsAsyncClosing",
    "Scoreboard",
]


class Hello:
    name = "status_hello"

    def hook_response(self, request, conf):
        request.send(200, "x" * 3000, "text/plain")
        return DONE


def parse_auto(body):
    lines = body.decode("latin-1").splitlines()
    return lines[0], dict(line.split(": ", 1) for line in lines[1:])


class StatusTests(unittest.SynchronousTestCase):
    def setUp(self):
        self.patch(status, "COUNTERS", Counters())

    def site(self, inside="", extra=""):
        site = MemorySite(
            f"""
            Plugin server_status
            Plugin access
            {extra}
            <Location /server-status>
                ServerStatus On
                {inside}
            </Location>
            Plugin tests.test_status_page.Hello
            """
        )
        self.addCleanup(site.close)
        return site

    def auto(self, site, peer=("127.0.0.1", 40000)):
        conn = site.connect(peer)
        conn.request("GET", "/server-status?auto")
        return site.wait_for(conn)[0]

    def test_auto_has_apaches_keys_and_counts(self):
        site = self.site()
        for path in ("/a", "/b"):
            self.assertEqual(site.get(path).status, 200)
        r = self.auto(site)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "text/plain; charset=ISO-8859-1")
        host, values = parse_auto(r.body)
        self.assertEqual(host, "localhost")
        self.assertEqual(list(values)[: len(APACHE_KEYS)], APACHE_KEYS)
        self.assertEqual(values["Total Accesses"], "2")  # this request is not over yet
        self.assertEqual(values["Total kBytes"], "5")  # 2 x 3000 bytes
        self.assertEqual(values["ServerMPM"], "event")
        self.assertEqual(values["Processes"], "1")
        self.assertGreater(float(values["ReqPerSec"]), 0)
        self.assertEqual(float(values["BytesPerReq"]), 3000)
        # Two kept-alive connections and this one, being answered.
        self.assertEqual(values["ConnsTotal"], "3")
        self.assertEqual(values["ConnsAsyncKeepAlive"], "2")
        self.assertEqual(values["ConnsAsyncWriting"], "1")
        self.assertEqual(values["BusyWorkers"], "1")
        self.assertEqual(values["IdleWorkers"], str(10000 - 3))
        self.assertEqual(sorted(values["Scoreboard"]), ["K", "K", "W"])
        self.assertEqual(values["ConnsAccepted"], "3")
        r = self.auto(site)
        self.assertEqual(parse_auto(r.body)[1]["Total Accesses"], "3")

    def test_pools(self):
        class Pool:
            busy, size, depth = 3, 16, 5

        self.patch(axkit.wsgi.pool, "_shared", Pool())
        self.patch(SLOTS, "used", 2)
        values = parse_auto(self.auto(self.site()).body)[1]
        self.assertEqual(
            [values[k] for k in ("CGIRunning", "WSGIThreadsBusy", "WSGIThreads", "WSGIQueued")],
            ["2", "3", "16", "5"],
        )

    def test_html_page(self):
        site = self.site()
        site.get("/a")
        r = site.get("/server-status")
        self.assertEqual(r.status, 200)
        self.assertIn(b"Total accesses: 1 - Total Traffic: 2 kB", r.body)
        self.assertIn(b"1 requests/sec - 3000 B/second - 3000 B/request", r.body)
        self.assertIn(b"<th>ConnsTotal</th><td>2</td>", r.body)  # /a's, kept alive
        self.assertIn(b"<th>Total Duration</th><td>0</td>", r.body)  # the fake clock

    def test_loopback_only_by_default(self):
        site = self.site()
        self.assertEqual(self.auto(site, ("192.0.2.1", 1)).status, 403)
        self.assertEqual(self.auto(site, ("::1", 1)).status, 200)

    def test_require_decides_when_given(self):
        site = self.site(inside="Require ip 192.0.2.0/24")
        self.assertEqual(self.auto(site, ("192.0.2.1", 1)).status, 200)
        self.assertEqual(self.auto(site, ("198.51.100.1", 1)).status, 403)
        self.assertEqual(self.auto(site, ("127.0.0.1", 1)).status, 403)

    def test_other_urls_untouched(self):
        site = self.site()
        r = site.get("/server-statusx")
        self.assertEqual((r.status, len(r.body)), (200, 3000))

    def test_inner_require_replaces_an_outer_grant(self):
        site = self.site(inside="Require local", extra="Require all granted")
        self.assertEqual(self.auto(site, ("192.0.2.1", 1)).status, 403)
        self.assertEqual(self.auto(site, ("127.0.0.1", 1)).status, 200)
        self.assertEqual(site.get("/elsewhere").status, 200)


class SharedCountingTests(unittest.SynchronousTestCase):
    """server_status and metrics read one set of counters: with both loaded
    a response and a connection are counted once."""

    def test_both_plugins_count_once(self):
        shared = Counters()
        self.patch(status, "COUNTERS", shared)
        site = MemorySite(
            """
            Plugin server_status
            Plugin metrics
            <Location /server-status>
                ServerStatus On
            </Location>
            Plugin tests.test_status_page.Hello
            """
        )
        self.addCleanup(site.close)
        for plugin in site.config.plugins.values():
            if plugin.name in ("server_status", "metrics"):
                plugin.startup(site.config, site.clock)
        for path in ("/a", "/b", "/c"):
            self.assertEqual(site.get(path).status, 200)
        self.assertEqual(sum(shared.requests.values()), 3)
        self.assertEqual(shared.accepted, 3)
        self.assertEqual(shared.generation, 1)  # one config, two plugins started
        conn = site.connect(("127.0.0.1", 1))
        conn.request("GET", "/server-status?auto")
        values = parse_auto(site.wait_for(conn)[0].body)[1]
        self.assertEqual(values["Total Accesses"], "3")
        self.assertEqual(values["Total kBytes"], str(3 * 3000 // 1024))
        self.assertEqual(values["ConnsAccepted"], "4")


class ConnectionStateTests(unittest.SynchronousTestCase):
    """The scoreboard letter of a connection by its state (status.connection_state)."""

    class Conn:
        def __init__(self, **kw):
            self._switched = None
            self.closing = False
            self.state = None
            self.requests = 0
            self.__dict__.update(kw)

    def test_a_switched_connection_is_writing_not_closing(self):
        # A WebSocket tunnel: HTTP is over (closing) but its answer goes on,
        # as Apache shows a mod_proxy_wstunnel worker: W.
        tunnel = self.Conn(_switched=object(), closing=True)
        self.assertEqual(status.connection_state(tunnel), "writing")
        self.assertEqual(status.connection_state(self.Conn(closing=True)), "closing")
        counts, board = status.connections([tunnel, self.Conn(closing=True)])
        self.assertEqual((counts["writing"], counts["closing"]), (1, 1))
        self.assertEqual(sorted(board), ["C", "W"])
