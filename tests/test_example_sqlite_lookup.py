"""The example plugin axkit.examples.sqlite_lookup: it answers from a
SQLite database in a thread pool of its own, so a query that is held
(a slow report, a locked table) holds only its own request -- other
clients, static files and other lookups alike, are answered meanwhile."""

import os
import sqlite3
import tempfile
import threading

import treq
from twisted.internet import defer, threads
from twisted.trial.unittest import TestCase

from axkit.examples.sqlite_lookup import SQLiteLookup
from axkit.testing import http_pool, start_server

HELD_KEY = "held"


class SQLiteLookupTests(TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.folder = tempfile.mkdtemp()
        self.addCleanup(__import__("shutil").rmtree, self.folder, True)
        db = os.path.join(self.folder, "notes.sqlite")
        with sqlite3.connect(db) as c:
            c.execute("CREATE TABLE items (key TEXT PRIMARY KEY, value TEXT)")
            c.execute("INSERT INTO items VALUES ('greeting', 'hello from sqlite')")
            c.execute(f"INSERT INTO items VALUES ('{HELD_KEY}', 'released')")
        c.close()
        with open(os.path.join(self.folder, "static.txt"), "w") as f:
            f.write("static\n")

        # The gate: a query for HELD_KEY waits in its pool thread until
        # the test lets it go (the stand-in for a slow query).
        self.entered = threading.Event()
        self.release = threading.Event()
        self.addCleanup(self.release.set)  # (never leave a pool thread waiting)
        real_query = SQLiteLookup.query
        entered, release = self.entered, self.release

        def gated_query(plugin, database, sql, key):
            if key == HELD_KEY:
                entered.set()
                if not release.wait(30):
                    raise RuntimeError("the test never released the query")
            return real_query(plugin, database, sql, key)

        self.patch(SQLiteLookup, "query", gated_query)

        self.server = yield start_server(f"""
            Include "{os.path.dirname(os.path.dirname(__file__))}/conf.d/mime.conf"
            Plugin axkit.examples.sqlite_lookup.SQLiteLookup
            Plugin uri_to_file
            Plugin mime_map
            Plugin serve_file
            DocumentRoot {self.folder}
            SQLDatabase {db}
        """)
        self.addCleanup(self.server.stop)
        self.pool = http_pool(self)

    @defer.inlineCallbacks
    def get(self, path):
        r = yield treq.get(self.server.url(path), pool=self.pool)
        body = yield r.content()
        return r.code, body

    @defer.inlineCallbacks
    def test_lookup(self):
        self.assertEqual((yield self.get("/db/greeting")), (200, b"hello from sqlite\n"))
        code, _ = yield self.get("/db/nothing")
        self.assertEqual(code, 404)

    @defer.inlineCallbacks
    def test_other_clients_answered_while_a_query_is_held(self):
        held = self.get(f"/db/{HELD_KEY}")
        entered = yield threads.deferToThread(self.entered.wait, 10)
        self.assertTrue(entered, "the held query never started")

        # While the query is held: a static file, and another lookup.
        self.assertEqual((yield self.get("/static.txt")), (200, b"static\n"))
        self.assertEqual((yield self.get("/db/greeting")), (200, b"hello from sqlite\n"))
        self.assertFalse(held.called, "the held query's request was answered before its release")

        self.release.set()
        self.assertEqual((yield held), (200, b"released\n"))
