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

# Socket activation's variables as the process got them: Twisted deletes
# LISTEN_PID and LISTEN_FDS once it has read them (so that no one takes the
# sockets twice), before an error about them could be explained.  This
# module is imported by `twistd axkit`'s options, before Twisted reads them.
ACTIVATION_ENVIRON = {
    key: os.environ[key]
    for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
    if key in os.environ
}


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


# -- socket activation -----------------------------------------------------------


def activation_problem(endpoint, environ=None, pid=None):
    """Why the ``systemd:`` endpoint ``endpoint`` found no socket to take
    over, worked out from what systemd (or a stand-in) put in the
    environment: LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES."""
    environ = ACTIVATION_ENVIRON if environ is None else environ
    pid = os.getpid() if pid is None else pid
    options = dict(part.split("=", 1) for part in endpoint.split(":")[1:] if "=" in part)
    fds = environ.get("LISTEN_FDS")
    if not fds:
        return (
            "no socket was passed by systemd (LISTEN_FDS is not set: is the "
            ".socket unit active, and does the service start through it?)"
        )
    if environ.get("LISTEN_PID") != str(pid):
        return (
            f"the sockets systemd passed are for process {environ.get('LISTEN_PID')}, "
            f"not this one ({pid}): start twistd directly from ExecStart=, "
            "not through a wrapper that forks"
        )
    try:
        count = int(fds)
    except ValueError:
        return f"LISTEN_FDS={fds!r} is not a number"
    names = environ.get("LISTEN_FDNAMES")
    if names is None:
        return (
            f"systemd passed {count} socket(s) but no LISTEN_FDNAMES, and Twisted "
            "takes over no socket without it (systemd older than 227, or "
            "systemd-socket-activate without --fdname=NAME: give the socket a "
            "name with FileDescriptorName= or --fdname)"
        )
    name_list = names.split(":") if names else []
    if len(name_list) != count:
        return (
            f"LISTEN_FDNAMES names {len(name_list)} socket(s) but LISTEN_FDS says "
            f"{count}: Twisted takes over none of them"
        )
    if "name" in options and options["name"] not in name_list:
        return (
            f"systemd passed no socket named {options['name']!r} "
            f"(it passed: {', '.join(name_list) or 'none'})"
        )
    if "index" in options:
        return (
            f"index={options['index']} but systemd passed {count} socket(s) "
            f"(index 0 to {count - 1}: one per ListenStream= line)"
        )
    return "no such socket was passed by systemd"


# -- STATUS= ---------------------------------------------------------------------

STATUS_INTERVAL = 10.0  # seconds between STATUS= updates (at most)


class StatusReporter(Service):
    """Sends ``STATUS=`` with live figures every STATUS_INTERVAL seconds,
    or as often as the watchdog pings when that is more often
    (``systemctl status axkit`` shows the last one): open connections,
    requests per second over the interval, requests since start.

    ``figures()`` returns ``(open connections, requests so far)``; the
    figures are read when a report is due, never per request."""

    def __init__(self, figures, reactor=None, environ=None, interval=None):
        self.figures = figures
        self.reactor = reactor
        self.environ = environ
        # With a watchdog as often as its pings, if they are more frequent.
        self.interval = interval or min(STATUS_INTERVAL, watchdog_interval(environ) or 1e9)
        self.loop = None
        self.last = None  # (when, requests) of the previous report

    def startService(self):
        Service.startService(self)
        if not (os.environ if self.environ is None else self.environ).get("NOTIFY_SOCKET"):
            return
        from twisted.internet.task import LoopingCall

        self.loop = LoopingCall(self.report)
        if self.reactor is not None:
            self.loop.clock = self.reactor
        self.loop.start(self.interval, now=False)

    def stopService(self):
        Service.stopService(self)
        if self.loop is not None and self.loop.running:
            self.loop.stop()

    def report(self):
        notify(f"STATUS={self.status_line()}", self.environ)

    def status_line(self):
        connections, requests = self.figures()
        now = self.loop.clock.seconds() if self.loop is not None else time.monotonic()
        rate = 0.0
        if self.last is not None and now > self.last[0]:
            rate = (requests - self.last[1]) / (now - self.last[0])
        self.last = (now, requests)
        return (
            f"serving: {connections} connection{'s' if connections != 1 else ''}, "
            f"{rate:.1f} requests/s, {requests} requests since start"
        )
