"""Deadlines for handlers: the public face of the connections' timer wheel.

A handler that must give up on something slow (a CGI program silent for
CGITimeout, a backend that does not answer) takes a ``Deadline`` from
``request.deadline(on_expire)`` instead of a reactor timer of its own: the
deadline sits in the same one-second buckets as every connection's
timeouts (``DeadlineWheel``), so a thousand of them cost one timer, and
moving one later -- on every piece of output -- costs an attribute store.
Resolution: about one second, never early.
"""

from collections.abc import Callable
from typing import Any


class Deadline:
    """Calls ``on_expire()`` once ``when`` (reactor seconds) has passed.

    ``extend(seconds)`` moves it to now + seconds, cheaply when that is later
    (the wheel finds the new time when the old one comes due); ``at(when)``
    sets it, earlier or later; ``cancel()`` stops it.  After it fired it is
    unarmed until set again."""

    __slots__ = ("wheel", "clock", "on_expire", "when", "slot")

    def __init__(
        self, wheel: Any, clock: Callable[[], float], on_expire: Callable[[], object]
    ) -> None:
        self.wheel = wheel
        self.clock = clock  # () -> seconds, the reactor's
        self.on_expire = on_expire
        self.when: float | None = None
        self.slot: int | None = None

    @property
    def armed(self) -> bool:
        return self.when is not None

    def at(self, when: float) -> None:
        """Expire at ``when`` (filed anew: it may be earlier than before)."""
        self.when = when
        self.slot = self.wheel.add(self, when, self.slot)

    def after(self, seconds: float) -> None:
        """Expire ``seconds`` from now (filed anew)."""
        self.when = when = self.clock() + seconds
        self.slot = self.wheel.add(self, when, self.slot)

    def extend(self, seconds: float) -> None:
        """Move an armed deadline to ``seconds`` from now; nothing if unarmed.
        Meant for the hot path: no refiling when the new time is later."""
        if self.when is not None:
            when = self.clock() + seconds
            if when >= self.when:
                self.when = when
            else:
                self.at(when)

    def remaining(self) -> float | None:
        """Seconds left, or None when unarmed."""
        return None if self.when is None else self.when - self.clock()

    def cancel(self) -> None:
        self.when = None
        slot = self.slot
        if slot is not None:
            self.slot = None
            self.wheel.discard(self, slot)

    def deadline_check(self, slot: int, now: float) -> None:
        """From the wheel, for an entry at ``slot``."""
        if slot != self.slot:
            return  # a stale entry
        self.slot = None
        when = self.when
        if when is None:
            return
        if when > now:  # moved later meanwhile: file it again
            self.slot = self.wheel.add(self, when)
            return
        self.when = None
        self.on_expire()
