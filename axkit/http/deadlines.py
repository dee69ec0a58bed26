"""The timer service: every deadline of one listener, on one reactor timer."""


class DeadlineWheel:
    """The one timer service handlers and the engine use for deadlines
    (``request.channel.factory.wheel``; the time is ``factory.now()``).

    Instead of a reactor timer per deadline -- 100,000 connections would be
    100,000 timers, each moved on every request -- deadlines are filed in
    one-second buckets and one reactor timer ticks once a second while any
    is pending.  A tick looks only at the buckets that are due, so a
    deadline costs O(1) whatever their number.

    The contract, for any object ``obj`` (a connection, a CGI run, ...):

    * ``slot = wheel.add(obj, deadline, old_slot=None)`` files ``obj`` to be
      called back at or after ``deadline`` (seconds on the reactor's
      clock), moving it from ``old_slot`` if given; keep the slot.
    * When its bucket comes due the wheel calls
      ``obj.deadline_check(slot, now)``; that entry is gone then.  ``obj``
      compares ``slot`` with the one it kept (an older entry is stale:
      ignore it), and if its real deadline has moved later meanwhile, files
      itself again (``add``).  So moving a deadline later costs nothing:
      change it and let the entry be checked when it comes due.  Moving it
      earlier needs a new ``add`` with the old slot.
    * ``wheel.discard(obj, slot)`` takes ``obj`` out now (when it closes,
      so nothing in the wheel keeps it alive).

    Deadlines are called back up to two seconds late (a bucket is a
    second, a tick once a second), never early.
    """

    __slots__ = ("reactor", "buckets", "timer", "cursor")

    def __init__(self, reactor):
        self.reactor = reactor
        self.buckets = {}
        self.timer = None
        self.cursor = 0

    def add(self, obj, deadline, old_slot=None):
        """File ``obj`` under ``deadline`` (moving it from ``old_slot``);
        returns its slot.  An object is in one bucket at most, so a closed
        one is dropped at once (see discard)."""
        if old_slot is not None:
            self.discard(obj, old_slot)
        slot = int(deadline) + 1
        bucket = self.buckets.get(slot)
        if bucket is None:
            self.buckets[slot] = {obj}
        else:
            bucket.add(obj)
        if self.timer is None:
            self.cursor = int(self.reactor.seconds())
            self.timer = self.reactor.callLater(1.0, self._tick)
        return slot

    def _tick(self):
        self.timer = None
        now = self.reactor.seconds()
        buckets = self.buckets
        end = int(now)
        slot = self.cursor + 1
        if end - slot > len(buckets):
            # Long gap (a fake clock jumping): walk the keys, not the seconds.
            due = sorted(s for s in buckets if s <= end)
        else:
            due = range(slot, end + 1)
        self.cursor = end
        for slot in due:
            bucket = buckets.pop(slot, None)
            if bucket:
                for obj in bucket:
                    obj.deadline_check(slot, now)
        if buckets and self.timer is None:
            self.timer = self.reactor.callLater(1.0, self._tick)

    def discard(self, obj, slot):
        """Take ``obj`` out of the bucket ``slot`` (if it is there)."""
        bucket = self.buckets.get(slot)
        if bucket is not None:
            bucket.discard(obj)
            if not bucket:
                del self.buckets[slot]

    def stop(self):
        """Forget every deadline and stop the timer (the listener is gone)."""
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
        self.buckets.clear()
