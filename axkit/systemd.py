"""Tell systemd how the service is doing (sd_notify), for `Type=notify` units.

systemd passes a datagram socket in $NOTIFY_SOCKET; a service writes
``READY=1`` once it accepts connections and ``STOPPING=1`` when it begins
to stop.  Outside systemd (no $NOTIFY_SOCKET) this does nothing.
"""

import os
import socket

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
