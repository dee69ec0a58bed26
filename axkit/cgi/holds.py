"""Holding a program's short first output a moment for the end of its pipe.

A program's first output -- a complete head and a little body -- seen
before the end of its stdout is held up to HOLD seconds for that end: most
programs exit right after writing, and the answer then leaves in one send
with a Content-Length (as lighttpd, which buffers the whole output by
default) instead of as a chunked head, body and last chunk.  More output
within HOLD, or HOLD passing, streams it as usual.
"""

import collections

from twisted.logger import Logger

log = Logger(namespace="axkit.cgi")

HOLD = 0.005
HOLD_BELOW = 16384  # only a first read shorter than this is held


class _Holds:
    """The runs holding a short first output (see HOLD), released by one
    reactor timer for all of them rather than a timer each: most holds end
    within a millisecond (the program exits), and a timer made and
    cancelled per request cost more than the rest of the hold.  A run whose
    hold ended early stays queued, not held, until its time comes."""

    def __init__(self, reactor):
        self.reactor = reactor
        self.queue = collections.deque()  # (due, run), in the order due
        self.active = 0  # runs still held
        self.timer = None

    def add(self, run):
        """Hold ``run`` (released by ``run._release()`` once HOLD has
        passed, unless ``done()`` comes first); returns self."""
        reactor = self.reactor
        self.queue.append((reactor.seconds() + HOLD, run))
        self.active += 1
        timer = self.timer
        # (A timer cancelled from outside -- a test's reactor clean-up -- is
        # replaced.)
        if timer is None or not timer.active():
            self.timer = reactor.callLater(HOLD, self._due)
        return self

    def done(self):
        """A held run's hold ended early (its end, or more output, came)."""
        self.active -= 1
        if not self.active:
            self.queue.clear()
            timer, self.timer = self.timer, None
            if timer is not None and timer.active():
                timer.cancel()

    def _due(self):
        self.timer = None
        queue = self.queue
        now = self.reactor.seconds()
        while queue and queue[0][0] <= now:
            run = queue.popleft()[1]
            if run.held is self:
                self.active -= 1
                try:
                    run._release()
                except Exception:
                    log.failure("releasing a held CGI response")
        if queue:
            self.timer = self.reactor.callLater(max(0.0, queue[0][0] - now), self._due)


_last_holds = None


def _holds(reactor):
    """The _Holds of ``reactor`` (one reactor in a server; tests' fake
    clocks each get theirs, and none is kept once another is asked for)."""
    global _last_holds
    holds = _last_holds
    if holds is None or holds.reactor is not reactor:
        holds = _last_holds = _Holds(reactor)
    return holds
