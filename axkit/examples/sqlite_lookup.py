"""sqlite_lookup: answers GET <SQLPrefix><key> from a SQLite database, without
blocking the server while the query runs.

The answer to "how does a single-threaded server do slow work like a
database query?": the query runs in a thread pool of the plugin's own
(sized by SQLThreads), the hook is an ``async def`` that awaits it, and
the reactor thread goes on serving every other client meanwhile.

    Plugin axkit.examples.sqlite_lookup.SQLiteLookup
    SQLDatabase /srv/notes.sqlite
    SQLPrefix /notes/
    SQLQuery "SELECT body FROM notes WHERE name = ?"

(docs/asgi.md, "Slow work", shows the other ways: twisted.enterprise.adbapi,
an async driver.)
"""

import sqlite3
import threading

from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from axkit.config import ANY, GLOBAL, Directive, count, path, string, url_path
from axkit.hooks import DECLINED, DONE

# The pool, and one connection per pool thread and database.
_POOL = None
_LOCAL = threading.local()


class SQLiteLookup:
    """Answers GET <SQLPrefix><key> with the row SQLQuery finds for key."""

    name = "sqlite_lookup"
    directives = [
        Directive(
            "SQLDatabase",
            path,
            scopes=ANY,
            default=None,
            doc="The SQLite database file to answer from.",
        ),
        Directive(
            "SQLPrefix",
            url_path,
            scopes=ANY,
            default="/db/",
            doc="The URL prefix answered; the rest of the path is the key.",
        ),
        Directive(
            "SQLQuery",
            string,
            scopes=ANY,
            default="SELECT value FROM items WHERE key = ?",
            doc="The query; ? is the key. Its first column is the answer.",
        ),
        Directive(
            "SQLThreads",
            count,
            scopes={GLOBAL},
            default=4,
            doc="Threads running queries at once (the plugin's own pool).",
        ),
    ]

    def startup(self, config, reactor):
        """Before the server listens: the pool (one per process, kept by
        the instances of later configs after a SIGHUP)."""
        global _POOL
        if _POOL is None:
            _POOL = ThreadPool(0, config.global_resolved.conf.sql_threads, name="sqlite_lookup")
            _POOL.start()
        self.pool = _POOL

    def shutdown(self):
        """After the last request: stop the pool's threads."""
        global _POOL
        if _POOL is not None:
            _POOL.stop()
            _POOL = None

    async def hook_response(self, request, conf):
        prefix = conf.sql_prefix
        if (
            conf.sql_database is None
            or not request.path.startswith(prefix)
            or request.method not in ("GET", "HEAD")
        ):
            return DECLINED
        key = request.path[len(prefix) :]
        # The reactor thread is free while this waits: other clients are served.
        value = await deferToThreadPool(
            request.reactor, self.pool, self.query, conf.sql_database, conf.sql_query, key
        )
        if value is None:
            return 404
        request.send(200, f"{value}\n", "text/plain")
        return DONE

    def query(self, database, sql, key):
        """In a pool thread: the first column of the first row, or None."""
        connections = getattr(_LOCAL, "connections", None)
        if connections is None:
            connections = _LOCAL.connections = {}
        db = connections.get(database)
        if db is None:
            db = connections[database] = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        row = db.execute(sql, (key,)).fetchone()
        return None if row is None else row[0]
