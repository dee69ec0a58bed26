"""Blocking work off the reactor thread -- and the one place that knows a
reactor may have no threads at all (axkit.testing's fake clock, where
MemorySite runs the engine in memory): there the work runs at once, in
the calling thread, so in-memory tests see the same answers without
threads or sleeps."""

from twisted.internet.defer import maybeDeferred
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool


def has_threads(reactor):
    """Whether ``reactor`` runs threads (False for a fake clock)."""
    return IReactorThreads.providedBy(reactor)


def defer_to_pool(reactor, pool, fn, *args):
    """``fn(*args)`` on a thread of ``pool`` -- a Twisted ThreadPool, a set
    of threads of axkit's own with ``call(fn, *args)`` giving a Deferred
    (xslt's), a function making either (called only when threads are
    used), or None for the reactor's pool -- as a Deferred fired on the
    reactor thread; at once (still a Deferred) where the reactor has no
    threads."""
    if not IReactorThreads.providedBy(reactor):
        return maybeDeferred(fn, *args)
    if pool is None:
        pool = reactor.getThreadPool()
    elif callable(pool) and not hasattr(pool, "call"):
        pool = pool()
    call = getattr(pool, "call", None)
    if call is not None:
        return call(fn, *args)
    return deferToThreadPool(reactor, pool, fn, *args)
