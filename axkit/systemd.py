"""Tell systemd how the service is doing (sd_notify), for `Type=notify` units.

systemd passes a datagram socket in $NOTIFY_SOCKET; a service writes
``READY=1`` once it accepts connections and ``STOPPING=1`` when it begins
to stop; around a SIGHUP reload ``RELOADING=1`` (with ``MONOTONIC_USEC``)
then ``READY=1`` (what ``Type=notify-reload`` waits for); and, when the
unit sets ``WatchdogSec=``, ``WATCHDOG=1`` every half of it from the
reactor thread, so a reactor that hangs gets the service restarted.
Outside systemd (no $NOTIFY_SOCKET) this does nothing.
"""

import os
import socket
import time

from twisted.application.service import Service
from twisted.logger import Logger

log = Logger(namespace="axkit.systemd")


def notify(state, environ=None):
    """Send ``state`` (e.g. "READY=1") to systemd; True if it was sent."""
    path = (os.environ if environ is None else environ).get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]  # an abstract socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(path)
            s.sendall(state.encode("utf-8"))
    except OSError as e:
        log.warn("could not notify systemd ({state!r}): {error}", state=state, error=e)
        return False
    return True


def monotonic_usec():
    """CLOCK_MONOTONIC in microseconds, as systemd wants MONOTONIC_USEC."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def notifying_reload(reload, environ=None):
    """``reload`` (a service's, returning a Deferred) wrapped to say
    ``RELOADING=1`` before and ``READY=1`` after, whatever the outcome: a
    refused config leaves the old one serving, which is ready too."""

    def reloading(*args, **kwargs):
        notify(f"RELOADING=1\nMONOTONIC_USEC={monotonic_usec()}", environ)
        d = reload(*args, **kwargs)

        def ready(result):
            notify("READY=1", environ)
            return result

        return d.addBoth(ready)

    return reloading


def watchdog_interval(environ=None):
    """Seconds between ``WATCHDOG=1`` pings: half of $WATCHDOG_USEC, or None
    when systemd asks for none (or asks another process: $WATCHDOG_PID)."""
    environ = os.environ if environ is None else environ
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = environ.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 2 / 1_000_000


class Watchdog(Service):
    """Pings systemd's watchdog while the service runs (a LoopingCall on
    the reactor: if the reactor stops turning, the pings stop)."""

    def __init__(self, reactor=None, environ=None):
        self.reactor = reactor
        self.environ = environ
        self.loop = None

    def startService(self):
        Service.startService(self)
        interval = watchdog_interval(self.environ)
        if interval is None:
            return
        from twisted.internet.task import LoopingCall

        self.loop = LoopingCall(notify, "WATCHDOG=1", self.environ)
        if self.reactor is not None:
            self.loop.clock = self.reactor
        self.loop.start(interval, now=True)

    def stopService(self):
        Service.stopService(self)
        if self.loop is not None and self.loop.running:
            self.loop.stop()
