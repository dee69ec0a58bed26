"""Threads whose finished jobs are handed back to the reactor thread in batches.

Shared by the CGI spawn threads (axkit.cgi.spawn) and the transformation
threads (axkit.xslt.pool).  Lean on purpose: Twisted's ThreadPool costs
about three times the CPU per call (its team and coordinator, a context
copy per job), and a job per request makes that count on the reactor
thread.  Jobs go through a C queue; a thread does as little as it can
while holding the GIL (each time it takes it back from the reactor thread
costs both a futex round trip).  Finished jobs are queued for the reactor
thread, which is woken once for however many finished meanwhile -- and on
axkit's reactor only when it is waiting in its poll: a busy reactor
collects them from its poll hook before it next waits (no wake-up write
and read, no thread call).  There the wake-up is an eventfd of the set's
own, read by a raw reader (axkit.reactor's add_raw_reader) that delivers
at once: not the reactor's waker pipe and thread-call queue, and an
eventfd's wake-up is not a "sync" one -- a pipe's tells the scheduler the
writer is about to sleep, so the reactor is run on the writing thread's
core at once, preempting a transformation that goes on working.
"""

import collections
import os
import queue
import threading


class HandBackThreads:
    """``size`` daemon threads running queued jobs, each an object with a
    ``run()`` method.  On the reactor thread, ``deliver(done)`` is given the
    deque of ``(job, ok, value)`` -- ``value`` is ``run()``'s result, or the
    exception it raised when ``ok`` is false -- and must empty it.
    Subclasses define ``deliver``."""

    def __init__(self, reactor, size, name):
        self.reactor = reactor
        self.name = name
        self.queue = queue.SimpleQueue()
        self.done = collections.deque()
        self.wake_pending = False
        self.joined = False  # stopped: never used again
        self.size = 0
        self.started = 0  # threads started over the set's life (names them)
        self.alive = 0  # threads running (the last one out closes wake_fd)
        self.lock = threading.Lock()
        # On axkit's reactor: a wake-up only when it is polling, through
        # an eventfd of the set's own (see the module's doc).
        self.hooked = hasattr(reactor, "add_poll_hook")
        self.wake_fd = None
        if self.hooked:
            reactor.add_poll_hook(self._collect)
            if hasattr(reactor, "add_raw_reader") and hasattr(os, "eventfd"):
                self.wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
                reactor.add_raw_reader(self.wake_fd, self)
        self.resize(size)

    def deliver(self, done):
        raise NotImplementedError

    def submit(self, job):
        """Queue ``job``: one of the threads calls its ``run()``."""
        self.queue.put(job)

    def resize(self, size):
        """Start or stop threads until ``size`` are running (a stopping one
        first finishes the job it holds)."""
        while self.size < size:
            self.started += 1
            with self.lock:
                self.alive += 1
            threading.Thread(
                target=self._work, daemon=True, name=f"{self.name}-{self.started}"
            ).start()
            self.size += 1
        while self.size > size:
            self.queue.put(None)
            self.size -= 1

    def _work(self):
        try:
            self._run_jobs()
        finally:
            with self.lock:
                self.alive -= 1
                last = self.joined and not self.alive and self.wake_fd is not None
                if last:  # (no thread left to write to it)
                    fd, self.wake_fd = self.wake_fd, None
            if last:
                os.close(fd)

    def _run_jobs(self):
        get = self.queue.get
        done = self.done
        while True:
            job = get()
            if job is None:
                return
            try:
                done.append((job, True, job.run()))
            except BaseException as e:
                done.append((job, False, e))
            job = None  # (not kept, with its request, until the next job)
            if not self.wake_pending and (not self.hooked or self.reactor.polling):
                self.wake_pending = True
                if self.hooked and self.wake_fd is not None:
                    os.eventfd_write(self.wake_fd, 1)
                else:
                    self.reactor.callFromThread(self._finish)

    # The eventfd's raw reader (on the reactor thread).

    def doRead(self, events):
        try:
            os.eventfd_read(self.wake_fd)
        except (BlockingIOError, TypeError):
            pass  # (read already; TypeError: closed meanwhile)
        if self.done:
            self._finish()
        else:
            self.wake_pending = False

    def readFailed(self):
        pass

    def _collect(self):
        # The reactor's poll hook: finished jobs, if any, before it waits.
        if self.done:
            self._finish()
            return True
        return False

    def _finish(self):
        # Cleared before the queue is emptied: a job added after this line
        # either is seen by deliver() or schedules another call.
        self.wake_pending = False
        self.deliver(self.done)

    def stop(self):
        """Let every thread end once the jobs queued so far are done; their
        results still come back (through a wake-up each: the poll hook goes)."""
        if self.joined:
            return
        self.joined = True
        if self.hooked:
            self.hooked = False  # (set first: a job finishing from now on wakes the reactor)
            self.reactor.remove_poll_hook(self._collect)
            if self.wake_fd is not None:
                self.reactor.remove_raw_reader(self.wake_fd)
            if self.done:
                self._finish()  # finished before the line above, while the hook was there
        self.resize(0)
        with self.lock:
            last = not self.alive and self.wake_fd is not None
            if last:
                fd, self.wake_fd = self.wake_fd, None
        if last:
            os.close(fd)
