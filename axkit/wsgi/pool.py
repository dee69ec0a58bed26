"""The application thread pool: WSGIThreads threads and a bounded queue.

Its own threads, never the reactor's and never Twisted's shared pool (a
slow application must not delay DNS lookups or other plugins' deferToThread
work).  Jobs are started in arrival order; past ``queue_limit`` jobs
waiting for a thread, ``submit`` refuses (the plugin answers 503).
``depth`` (jobs waiting), ``busy`` and ``size`` are read by status and
metrics code.  Threads start when first needed and are daemons: a stuck
application never keeps the process from exiting.
"""

import threading
from queue import SimpleQueue

_STOP = object()


class AppPool:
    def __init__(self, size, queue_limit, name="axkit-wsgi"):
        self.size = max(1, size)
        self.queue_limit = queue_limit
        self.name = name
        self._queue = SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self.started = 0  # jobs run so far
        self.refused = 0  # jobs refused (queue full)

    @property
    def depth(self):
        """Jobs waiting for a thread (not yet started)."""
        return max(0, self._queue.qsize() - self._idle)

    @property
    def busy(self):
        """Threads running a job."""
        return self._threads - self._idle

    def submit(self, job):
        """Run ``job()`` on a pool thread; False when the queue is full."""
        with self._lock:
            waiting = self._queue.qsize() - self._idle
            if waiting >= 0 and self._threads < self.size:
                self._threads += 1
                self._idle += 1  # (counted idle until it takes a job)
                threading.Thread(
                    target=self._work, name=f"{self.name}-{self._threads}", daemon=True
                ).start()
            elif waiting >= self.queue_limit:
                self.refused += 1
                return False
        self._queue.put(job)
        return True

    def resize(self, size, queue_limit):
        """New limits (a reloaded config); surplus threads leave when idle."""
        with self._lock:
            surplus = self._threads - max(1, size)
            self.size = max(1, size)
            self.queue_limit = queue_limit
        for _ in range(max(0, surplus)):
            self._queue.put(_STOP)

    def stop(self):
        """Every thread leaves once the jobs queued before are done."""
        with self._lock:
            count = self._threads
        for _ in range(count):
            self._queue.put(_STOP)

    def _work(self):
        queue = self._queue
        lock = self._lock
        while True:
            job = queue.get()
            with lock:
                self._idle -= 1
                if job is _STOP:
                    self._threads -= 1
                    return
                self.started += 1
            try:
                job()
            except BaseException:  # a job handles its own errors; never die
                pass
            finally:
                job = None
                with lock:
                    self._idle += 1


class InlinePool:
    """Runs each job at once in the calling thread: for in-memory tests
    (axkit.testing.MemorySite), where the fake reactor has no threads."""

    threaded = False
    size = 1
    queue_limit = 0
    depth = 0
    busy = 0

    def submit(self, job):
        job()
        return True

    def resize(self, size, queue_limit):
        pass

    def stop(self):
        pass


AppPool.threaded = True


_shared = None
_shared_lock = threading.Lock()


def shared(size, queue_limit):
    """The process's application pool, sized by the config now in force
    (one pool whatever the number of reloads: a reload resizes it)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = AppPool(size, queue_limit)
            try:
                from twisted.internet import reactor

                reactor.addSystemEventTrigger("before", "shutdown", _shared.stop)
            except Exception:
                pass
        elif (_shared.size, _shared.queue_limit) != (max(1, size), queue_limit):
            _shared.resize(size, queue_limit)
        return _shared


def current():
    """The shared pool, or None before any WSGI request (for metrics)."""
    return _shared
