"""Where the asyncio loop runs, and how work crosses between it and the reactor.

Two bridges, one interface (``to_loop(fn, *args)``, ``to_reactor(fn, *args)``,
``run_sync(coro)``, ``stop()``):

* `ThreadBridge` -- an asyncio loop in one dedicated thread beside the
  reactor (axkit's epoll reactor, or any other).  Crossings are batched: a
  burst of calls costs one wake-up of the other side, not one each.  On
  axkit's reactor the calls to it are collected by a poll hook (run before
  each poll), and the reactor is woken only while it sleeps in epoll.
* `SameThreadBridge` -- the reactor *is* an asyncio loop (``twistd
  --reactor=asyncio axkit``): both sides are the same thread, calls are
  direct.

* `SteppedBridge` -- on axkit's own reactor: one thread, the asyncio loop
  is stepped by the reactor (a poll hook runs its ready callbacks, its
  selector's epoll descriptor sits in the reactor's epoll set, a reactor
  timer stands for its earliest timer).  No thread crossing at all.

`bridge_for(reactor)` picks one; docs/asgi.md says which is faster and why.
"""

import asyncio
import os
import threading
from collections import deque

from axkit._compat import asyncio_reactor_loop, stepped_event_loop


class SameThreadBridge:
    """The app's loop is the reactor's own (Twisted's asyncio reactor), or a
    loop a test steps by hand."""

    threaded = False

    def __init__(self, loop):
        self.loop = loop

    def to_loop(self, fn, *args):
        fn(*args)

    def to_reactor(self, fn, *args):
        fn(*args)

    def start_task(self, coro):
        loop = self.loop
        if loop.get_task_factory() is None:
            return asyncio.Task(coro, loop=loop)  # (create_task's checks skipped)
        return loop.create_task(coro)

    def run_sync(self, coro, timeout=None):
        """Run ``coro`` to its end before the reactor runs (lifespan startup)."""
        if self.loop.is_running():
            raise RuntimeError("the loop is running already")
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def run_deferred(self, coro):
        from twisted.internet.defer import Deferred

        return Deferred.fromFuture(self.loop.create_task(coro))

    def stop(self):
        pass


class ThreadBridge:
    """An asyncio loop in a thread of its own."""

    threaded = True

    def __init__(self, reactor):
        self.reactor = reactor
        self.loop = asyncio.new_event_loop()
        self._to_loop = deque()
        self._loop_woken = False
        self._to_reactor = deque()
        self._reactor_woken = False
        self._thread = threading.Thread(target=self._run, name="axkit-asgi-loop", daemon=True)
        self._thread.start()
        if hasattr(reactor, "add_poll_hook"):
            # axkit's reactor: collect our calls before each poll, wake it
            # only while it sleeps.
            reactor.add_poll_hook(self._reactor_hook)
            self._wake_reactor = self._wake_polling
        else:
            self._wake_reactor = self._wake_by_call

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    # -- reactor -> loop ---------------------------------------------------

    def to_loop(self, fn, *args):
        self._to_loop.append((fn, args))
        if not self._loop_woken:
            self._loop_woken = True
            self.loop.call_soon_threadsafe(self._drain_loop)

    def start_task(self, coro):
        """Start ``coro`` as a task on the loop (None: it is not made yet)."""
        self.to_loop(self.loop.create_task, coro)
        return None

    def _drain_loop(self):
        # Cleared before draining: a call queued from now on schedules
        # another drain, one queued before is taken by this one.
        self._loop_woken = False
        calls = self._to_loop
        while calls:
            fn, args = calls.popleft()
            try:
                fn(*args)
            except Exception as e:
                self.loop.call_exception_handler(
                    {"message": "axkit asgi call failed", "exception": e}
                )

    # -- loop -> reactor ---------------------------------------------------

    def to_reactor(self, fn, *args):
        self._to_reactor.append((fn, args))
        if not self._reactor_woken:
            self._reactor_woken = True
            self._wake_reactor()

    def _wake_polling(self):
        if self.reactor.polling:
            self.reactor.wakeUp()

    def _wake_by_call(self):
        self.reactor.callFromThread(self._drain_reactor)

    def _reactor_hook(self):
        if self._to_reactor:
            self._drain_reactor()
            return True
        return False

    def _drain_reactor(self):
        from twisted.python import log

        self._reactor_woken = False
        calls = self._to_reactor
        while calls:
            fn, args = calls.popleft()
            try:
                fn(*args)
            except Exception:
                log.err(system="axkit asgi")

    # -- whole coroutines --------------------------------------------------

    def run_sync(self, coro, timeout=None):
        """Run ``coro`` on the loop and wait for its result (blocking)."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def run_deferred(self, coro):
        """Run ``coro`` on the loop; a Deferred (on the reactor) of its result."""
        from twisted.internet.defer import Deferred

        d = Deferred()
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)

        def done(f):
            self.reactor.callFromThread(_settle, d, f)

        future.add_done_callback(done)
        return d

    def stop(self):
        if hasattr(self.reactor, "remove_poll_hook"):
            self.reactor.remove_poll_hook(self._reactor_hook)
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)


class SteppedBridge(SameThreadBridge):
    """An asyncio loop run by axkit's reactor, on its thread: the reactor's
    poll hook runs one turn of the loop (never waiting) whenever it has
    work -- callbacks ready, a timer due -- and its selector's epoll
    descriptor, in the reactor's set, says when it has I/O of its own.
    A request's task takes its first step at once (``start_task``): a
    hello-world app has answered before the reactor goes on.  (The
    loop's internals are axkit._compat's: `stepped_event_loop`.)"""

    def __init__(self, reactor):
        loop = stepped_event_loop(self._arm)
        if loop is None:
            raise NotImplementedError("this Python's asyncio loop cannot be stepped")
        SameThreadBridge.__init__(self, loop)
        self.reactor = reactor
        self._timer = None
        self.start_task = loop.start_task  # (the method itself: one call less)
        self._hook = loop.turn
        self._fd = loop.selector_fd()
        reactor.add_poll_hook(self._hook)
        reactor.add_raw_reader(self._fd, self)

    def doRead(self, events_mask=None):
        # The loop's selector has events (a socket of the app's, a thread's
        # call_soon_threadsafe).
        self.loop.step()

    def readFailed(self):
        pass

    def _arm(self, delay):
        # A reactor timer for the loop's earliest one: the poll then wakes in time.
        timer = self._timer
        if timer is not None and timer.active():
            if timer.getTime() <= self.reactor.seconds() + delay:
                return
            timer.cancel()
        self._timer = self.reactor.callLater(max(0.0, delay), _noop)

    def stop(self):
        self.reactor.remove_poll_hook(self._hook)
        self.reactor.remove_raw_reader(self._fd)
        if self._timer is not None and self._timer.active():
            self._timer.cancel()


def _noop():
    pass


def _settle(d, future):
    exc = future.exception()
    if exc is not None:
        d.errback(exc)
    else:
        d.callback(future.result())


def bridge_for(reactor):
    """The bridge for ``reactor``: its own loop if it is an asyncio
    reactor, the stepped loop on axkit's reactor, else a loop thread."""
    loop = asyncio_reactor_loop(reactor)
    if loop is not None:
        return SameThreadBridge(loop)
    wanted = os.environ.get("AXKIT_ASGI_LOOP", "")  # "thread": for measuring
    if (
        wanted != "thread"
        and hasattr(reactor, "add_raw_reader")
        and hasattr(reactor, "add_poll_hook")
    ):
        try:
            return SteppedBridge(reactor)
        except NotImplementedError:
            pass
    return ThreadBridge(reactor)


_BRIDGE = None


def bridge(reactor):
    """The process's bridge (made on first use, for ``reactor``)."""
    global _BRIDGE
    if _BRIDGE is None:
        _BRIDGE = bridge_for(reactor)
    return _BRIDGE
