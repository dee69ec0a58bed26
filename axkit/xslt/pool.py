"""The transformation threads: AxThreads of them, one set per process.

Never the reactor's own pool (a heavy page must not delay DNS lookups or
other plugins' deferToThread work); daemon threads, so a stuck transform
never keeps the process from exiting; a reload resizes the set rather
than starting another.  A set stopped by the reactor's shutdown trigger
is replaced, never used (its queued jobs would never run).

Lean on purpose, as the CGI spawn threads (axkit.cgi.spawn): Twisted's
ThreadPool costs about three times the CPU per call (its team and
coordinator, a context copy per job), and a transformation per request
makes that count on the reactor thread.  Jobs go through a C queue;
finished ones are queued for the reactor thread, which is woken once for
however many finished meanwhile -- and on axkit's reactor only when it is
waiting in its poll: a busy reactor collects them from its poll hook
before it next waits (no wake-up write and read, no thread call).
"""

import collections
import queue
import threading

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure


class TransformThreads:
    """``size`` threads running ``call(func, *args)`` jobs; each job's
    Deferred fires on the reactor thread with its result or failure."""

    def __init__(self, reactor, size, name="axkit-xslt"):
        self.reactor = reactor
        self.name = name
        self.queue = queue.SimpleQueue()
        self.done = collections.deque()
        self.wake_pending = False
        self.joined = False  # stopped: replaced by shared_pool, never used again
        self.size = 0
        self.started = 0  # threads started over the set's life (names them)
        # On axkit's reactor: a wake-up only when it is polling.
        self.hooked = hasattr(reactor, "add_poll_hook")
        if self.hooked:
            reactor.add_poll_hook(self._collect)
        self.resize(size)

    def resize(self, size):
        """Start or stop threads until ``size`` are running (a stopping one
        first finishes the job it holds)."""
        while self.size < size:
            self.started += 1
            threading.Thread(
                target=self._work, daemon=True, name=f"{self.name}-{self.started}"
            ).start()
            self.size += 1
        while self.size > size:
            self.queue.put(None)
            self.size -= 1

    def call(self, func, *args):
        """A Deferred firing with ``func(*args)``, run on one of the threads."""
        d = Deferred()
        self.queue.put((d, func, args))
        return d

    def _work(self):
        get = self.queue.get
        done = self.done
        while True:
            job = get()
            if job is None:
                return
            d, func, args = job
            try:
                done.append((d, True, func(*args)))
            except BaseException as e:
                done.append((d, False, e))
            job = d = args = None  # (not kept, with its request, until the next job)
            if not self.wake_pending and (not self.hooked or self.reactor.polling):
                self.wake_pending = True
                self.reactor.callFromThread(self._finish)

    def _collect(self):
        # The reactor's poll hook: finished jobs, if any, before it waits.
        if self.done:
            self._finish()
            return True
        return False

    def _finish(self):
        # Cleared before the queue is emptied: a job added after this line
        # either is seen by the loop below or schedules another call.
        self.wake_pending = False
        done = self.done
        while done:
            d, ok, value = done.popleft()
            if ok:
                d.callback(value)
            else:
                d.errback(Failure(value))

    def stop(self):
        """Let every thread end once the jobs queued so far are done; their
        results still come back (through a wake-up each: the poll hook goes)."""
        if self.joined:
            return
        self.joined = True
        if self.hooked:
            self.hooked = False  # (set first: a job finishing from now on wakes the reactor)
            self.reactor.remove_poll_hook(self._collect)
            if self.done:
                self._finish()  # finished before the line above, while the hook was there
        self.resize(0)


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
