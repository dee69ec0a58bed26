"""Slow work off the reactor: the example SQLite plugin answers from a
thread pool; a slow query does not hold up a static file."""

import os
import sqlite3
import tempfile
import time

import treq
from twisted.internet import defer
from twisted.trial.unittest import TestCase

from axkit.testing import http_pool, start_server

# A query that keeps SQLite busy for a while (sqlite3 lets go of the GIL
# while it steps), standing for a slow report on a big table.
SLOW_QUERY = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
    "WHERE x < 300000) SELECT count(*) || ' ' || ? FROM c"
)


class SlowWorkTests(TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.folder = tempfile.mkdtemp()
        self.addCleanup(__import__("shutil").rmtree, self.folder, True)
        db = os.path.join(self.folder, "notes.sqlite")
        with sqlite3.connect(db) as c:
            c.execute("CREATE TABLE items (key TEXT PRIMARY KEY, value TEXT)")
            c.execute("INSERT INTO items VALUES ('greeting', 'hello from sqlite')")
        c.close()
        with open(os.path.join(self.folder, "static.txt"), "w") as f:
            f.write("static\n")
        self.server = yield start_server(f"""
            Include "{os.path.dirname(os.path.dirname(__file__))}/conf.d/mime.conf"
            Plugin axkit.examples.sqlite_lookup.SQLiteLookup
            Plugin uri_to_file
            Plugin mime_map
            Plugin serve_file
            DocumentRoot {self.folder}
            SQLDatabase {db}
            <Location /slow/>
                SQLPrefix /slow/
                SQLQuery "{SLOW_QUERY}"
            </Location>
        """)
        self.addCleanup(self.server.stop)
        self.pool = http_pool(self)

    @defer.inlineCallbacks
    def timed_get(self, path):
        started = time.monotonic()
        r = yield treq.get(self.server.url(path), pool=self.pool)
        body = yield r.content()
        return r.code, body, time.monotonic() - started

    @defer.inlineCallbacks
    def test_lookup(self):
        code, body, _ = yield self.timed_get("/db/greeting")
        self.assertEqual((code, body), (200, b"hello from sqlite\n"))
        code, body, _ = yield self.timed_get("/db/nothing")
        self.assertEqual(code, 404)

    @defer.inlineCallbacks
    def test_slow_query_does_not_block_a_static_file(self):
        slow = self.timed_get("/slow/x")
        yield deferLater(0.05)  # the query is running
        code, body, static_took = yield self.timed_get("/static.txt")
        self.assertEqual((code, body), (200, b"static\n"))
        self.assertFalse(slow.called, "the slow query should still be running")
        code, body, slow_took = yield slow
        self.assertEqual((code, body), (200, b"300000 x\n"))
        self.assertLess(static_took, slow_took / 2)


def deferLater(seconds):
    from twisted.internet import reactor
    from twisted.internet.task import deferLater as later

    return later(reactor, seconds, lambda: None)
