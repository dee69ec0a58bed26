"""The transformation threads: AxThreads of them, one set per process.

Never the reactor's own pool (a heavy page must not delay DNS lookups or
other plugins' deferToThread work); daemon threads, so a stuck transform
never keeps the process from exiting; a reload resizes the set rather
than starting another.  A set stopped by the reactor's shutdown trigger
is replaced, never used (its queued jobs would never run).

Lean on purpose (axkit.handback, as the CGI spawn threads): Twisted's
ThreadPool costs about three times the CPU per call, and a transformation
per request makes that count on the reactor thread.
"""

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from ..handback import HandBackThreads


class _Call:
    __slots__ = ("d", "func", "args", "then", "fail", "extra")

    def __init__(self, d, func, args, then=None, fail=None, extra=()):
        self.d = d
        self.func = func
        self.args = args
        self.then = then  # called on the reactor thread with the result (see run)
        self.fail = fail
        self.extra = extra

    def run(self):
        return self.func(*self.args)


class TransformThreads(HandBackThreads):
    """``size`` threads running ``call(func, *args)`` jobs; each job's
    Deferred fires on the reactor thread with its result or failure."""

    def __init__(self, reactor, size, name="axkit-xslt"):
        super().__init__(reactor, size, name)

    def call(self, func, *args):
        """A Deferred firing with ``func(*args)``, run on one of the threads."""
        d = Deferred()
        self.submit(_Call(d, func, args))
        return d

    def run(self, func, args, then, fail, extra):
        """A Deferred firing with ``then(func(*args), *extra)``, or if
        ``func`` raised, ``fail(exception, *extra)``: ``func`` runs on one
        of the threads, ``then`` or ``fail`` on the reactor thread (the
        Deferred fails with what they raise).  One callback fewer to run
        per job than ``call(...).addCallbacks(...)``."""
        d = Deferred()
        self.submit(_Call(d, func, args, then, fail, extra))
        return d

    def deliver(self, done):
        while done:
            call, ok, value = done.popleft()
            d = call.d
            call.args = None  # (not kept, with its request, past this)
            then = call.then
            if then is not None:
                extra = call.extra
                call.extra = None
                try:
                    value = then(value, *extra) if ok else call.fail(value, *extra)
                except BaseException:
                    d.errback(Failure())
                else:
                    d.callback(value)
            elif ok:
                d.callback(value)
            else:
                d.errback(Failure(value))


_shared = None


def shared_pool(reactor, threads):
    """The process's transformation threads, sized by the config in force
    (one set whatever the number of reloads: a reload resizes it)."""
    global _shared
    if _shared is None or _shared.joined:
        # (joined: stopped by a shutdown trigger -- under trial that fires
        # between test passes while the process goes on; start a new one)
        _shared = TransformThreads(reactor, threads)
        reactor.addSystemEventTrigger("before", "shutdown", _shared.stop)
    elif _shared.size != threads:
        _shared.resize(threads)
    return _shared
