"""server_status and metrics with Workers N: totals over every worker, each
response counted once, the figures of a worker that exited kept."""

import os
import signal
import time

from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import SynchronousTestCase

from .test_status_page import parse_auto
from .test_workers import WorkersProcess, config_text, get

STATUS = """Plugin server_status
Plugin metrics
<Location /server-status>
    ServerStatus On
</Location>
<Location /metrics>
    Metrics On
</Location>
"""


def auto(port):
    status, body = get(port, "/server-status?auto")
    assert status == 200, status
    return parse_auto(body.encode("latin-1"))[1]


def requests_total(port):
    status, body = get(port, "/metrics")
    assert status == 200, status
    total, workers = 0, None
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == "axkit_http_requests_total":
                total += sample.value
            elif sample.name == "axkit_workers":
                workers = sample.value
    return total, workers


class WorkersStatusTests(WorkersProcess, SynchronousTestCase):
    def counted(self, read, done, limit=200, deadline=15.0):
        """Ask ``read()`` (one counted request each time) until it says
        every earlier request is counted: ``done + i`` at the i-th asking.
        Never more: that would be a response counted twice."""
        end = time.monotonic() + deadline
        for i in range(limit):
            value = read()
            self.assertLessEqual(value, done + i, f"counted twice? asking {i}")
            if value == done + i:
                return done + i + 1  # this one, counted once it is sent
            self.assertLess(time.monotonic(), end, f"{value} of {done + i} counted")
            time.sleep(0.1)
        self.fail("never all counted")

    def why_not(self, served, asked, done):
        """What a failure should show (it was seen twice under heavy load,
        never reproduced): a page counts a worker whose file it reads, so
        ``Processes: 1`` with exact totals means the other worker had exited
        (its figures retired, its replacement not yet written) -- which the
        supervisor's output says ("exited unasked") -- or a file went unseen."""
        live = sorted(self.worker_pids())
        self.server.wait_for_output("exited unasked", 2.0)  # (logs are flushed each second)
        return (
            f"Processes: {asked['Processes']}, expected 2; "
            f"Total Accesses {asked['Total Accesses']} of {done}; answered: {sorted(served)}, "
            f"workers now: {live}\n{self.server.output()}"
        )

    def test_totals_over_workers_counted_once(self):
        self.start(config_text(workers=2, extra=STATUS))
        self.wait_workers(2)
        self.assertTrue(self.server.wait_for_output("2 workers accepting"))
        served = set()
        for _ in range(40):
            status, body = get(self.server.port)
            self.assertEqual(status, 200)
            served.add(body.split()[0])
        self.assertEqual(len(served), 2)  # both workers counted some
        # Each ?auto (and /metrics) is itself counted once it is sent.
        done = self.counted(lambda: int(auto(self.server.port)["Total Accesses"]), 40)
        asked = auto(self.server.port)
        # Neither worker gone meanwhile (a page then counts one process until
        # the replacement has written its figures: ~3 s here).
        self.assertNotIn("exited unasked", self.server.output())
        if asked["Processes"] != "2":
            self.fail(self.why_not(served, asked, done))
        done += 1
        status, page = get(self.server.port, "/server-status")
        done += 1
        self.assertEqual(status, 200)
        for pid in served:  # a row per worker
            self.assertIn(f"<td>{pid}</td>", page)
        done = self.counted(lambda: int(requests_total(self.server.port)[0]), done)
        self.assertEqual(requests_total(self.server.port)[1], 2)
        done += 1
        # A worker killed: what it had counted stays in the totals, once.
        time.sleep(2.0)  # its last figures written (once a second)
        victim = min(self.worker_pids())
        os.kill(victim, signal.SIGKILL)
        self.wait_workers(2, exclude=[victim])
        self.counted(lambda: int(auto(self.server.port)["Total Accesses"]), done)
