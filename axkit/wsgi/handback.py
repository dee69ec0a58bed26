"""Calls from application threads to the reactor thread, batched.

Every WSGI request comes back to the reactor at least once (its response).
``reactor.callFromThread`` would cost a wake-up each time -- a write to
the waker pipe, the reactor's epoll returning for it, a read -- whether
or not the reactor was waiting.  Here calls go into one deque for the
process; the reactor is woken once for however many arrive before it
drains them, and, on axkit's reactor, only while it waits in its poll: a
busy reactor collects them from its poll hook before it next waits (as
axkit.cgi.spawn does for started programs).  Calls run in the order they
were made.
"""

from collections import deque

from twisted.logger import Logger

log = Logger(namespace="axkit.wsgi")


class Handback:
    def __init__(self, reactor):
        self.reactor = reactor
        self.calls = deque()
        self.wake_pending = False
        self.hooked = hasattr(reactor, "add_poll_hook")
        if self.hooked:
            reactor.add_poll_hook(self._collect)

    def call(self, fn, *args):
        """Run ``fn(*args)`` on the reactor thread (from any thread)."""
        self.calls.append((fn, args))
        if not self.wake_pending and (not self.hooked or self.reactor.polling):
            self.wake_pending = True
            self.reactor.callFromThread(self._drain)

    def _collect(self):
        # The reactor's poll hook: calls made meanwhile, before it waits.
        if self.calls:
            self._drain()
            return True
        return False

    def _drain(self):
        # Cleared first: a call made from now on is drained below or wakes
        # the reactor again.
        self.wake_pending = False
        calls = self.calls
        while calls:
            fn, args = calls.popleft()
            try:
                fn(*args)
            except Exception:
                log.failure("a WSGI call on the reactor thread failed", plugin="wsgi")

    def stop(self):
        if self.hooked:
            self.reactor.remove_poll_hook(self._collect)
        self._drain()


_handbacks = {}


def handback(reactor):
    """The process's Handback for ``reactor`` (one poll hook, whatever the
    number of config reloads)."""
    found = _handbacks.get(id(reactor))
    if found is None or found.reactor is not reactor:
        found = _handbacks[id(reactor)] = Handback(reactor)
    return found
