"""The transformation threads: AxThreads of them, one pool per process.

Never the reactor's own pool (a heavy page must not delay DNS lookups or
other plugins' deferToThread work); daemon threads, so a stuck transform
never keeps the process from exiting; a reload resizes the pool rather
than starting another.  A pool stopped by the reactor's shutdown trigger
is replaced, never used (its queued jobs would never run).
"""

import threading

from twisted.python.threadpool import ThreadPool


def _daemon_thread(*args, **kwargs):
    thread = threading.Thread(*args, **kwargs)
    thread.daemon = True  # a stuck transform never keeps the process from exiting
    return thread


class TransformPool(ThreadPool):
    """AxThreads threads for transformations (never the reactor's pool)."""

    threadFactory = staticmethod(_daemon_thread)


_shared = None


def shared_pool(reactor, threads):
    """The process's transformation pool, sized by the config in force (one
    pool whatever the number of reloads: a reload resizes it)."""
    global _shared
    if _shared is None or _shared.joined:
        # (joined: stopped by a shutdown trigger -- under trial that fires
        # between test passes while the process goes on; start a new one)
        _shared = TransformPool(1, threads, name="axkit-xslt")
        _shared.start()
        reactor.addSystemEventTrigger("before", "shutdown", _shared.stop)
    elif _shared.max != threads:
        _shared.adjustPoolsize(1, threads)
    return _shared
