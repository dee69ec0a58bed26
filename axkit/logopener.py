"""The log opener: a tiny process that stays root when `twistd -u/-g`
drops the server's privileges, so SIGUSR1 can reopen root-owned log files
after logrotate moved them -- what Apache's root parent process does.

Started before the drop with the log files open at that moment, it
answers one request per datagram on a SOCK_SEQPACKET socketpair: the
server sends a path, the opener opens it for appending (created 0640 if
missing) and passes the descriptor back with SCM_RIGHTS (``send_fds``).

It opens nothing else: only the paths it was started with (a config
reloaded later that names a new log file needs that file writable by the
serving user, as before), only for appending, never truncating, and not
through a symbolic link in the last component (``O_NOFOLLOW``: a serving
user who can write the log folder cannot point the path at /etc/shadow).
It exits when the server closes its end (the server stopped).

Run as ``python -m axkit.logopener FD PATH...`` by ``LogOpener.start``.
"""

import os
import signal
import socket
import subprocess
import sys

OK = b"ok"
MAX_MESSAGE = 65536


def open_append(path):
    """``path`` opened for appending as a descriptor; created with 0640
    (not masked by the umask) if missing; a symlink is refused."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o640)
    except FileExistsError:
        return os.open(path, flags)
    try:
        os.fchmod(fd, 0o640)
    except OSError:
        pass
    return fd


def serve(sock, allowed):
    """Answer requests on ``sock`` until the other end closes."""
    allowed = {os.fsencode(p) for p in allowed}
    while True:
        try:
            path = sock.recv(MAX_MESSAGE)
        except InterruptedError:  # pragma: no cover (PEP 475 retries)
            continue
        except OSError:
            return
        if not path:
            return  # the server's end is closed: it has stopped
        if path not in allowed:
            sock.send(b"not a log file this server opened at start")
            continue
        try:
            fd = open_append(path)
        except OSError as e:
            sock.send((e.strerror or str(e)).encode("utf-8", "replace"))
            continue
        try:
            socket.send_fds(sock, [OK], [fd])
        finally:
            os.close(fd)


def main(argv):
    # Signals meant for the server (a terminal's ^C reaches the whole
    # process group; logrotate's USR1, a reload's HUP) are not for us:
    # the server's stopping closes our socket and we leave then.
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, signal.SIG_IGN)
    sock = socket.socket(fileno=int(argv[0]))
    serve(sock, argv[1:])


class LogOpener:
    """The server's side: ``open(path)`` -> a descriptor from the opener,
    or OSError with the opener's reason."""

    def __init__(self, sock, process, paths):
        self.sock = sock
        self.process = process
        self.paths = frozenset(paths)

    @classmethod
    def start(cls, paths):
        """Start the opener (call as root, before the drop) for ``paths``."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.set_inheritable(False)
        process = subprocess.Popen(
            [sys.executable, "-m", "axkit.logopener", str(theirs.fileno()), *paths],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        ours.settimeout(10)
        return cls(ours, process, paths)

    def knows(self, path):
        return path in self.paths

    def open(self, path):
        self.sock.send(os.fsencode(path))
        message, fds, _flags, _addr = socket.recv_fds(self.sock, MAX_MESSAGE, 1)
        if message == OK and fds:
            return fds[0]
        for fd in fds:
            os.close(fd)
        reason = message.decode("utf-8", "replace") or "the log opener has stopped"
        raise PermissionError(f"log opener: {reason}")

    def stop(self):
        self.sock.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            self.process.kill()
            self.process.wait()


if __name__ == "__main__":
    main(sys.argv[1:])
