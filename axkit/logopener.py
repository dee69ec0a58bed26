"""The log opener: a tiny process that stays root when `twistd -u/-g`
drops the server's privileges, so SIGUSR1 can reopen root-owned log files
after logrotate moved them -- what Apache's root parent process does --
and SIGHUP can re-read root-only TLS keys (certbot's privkey.pem).

Started before the drop with the log files open at that moment and the
TLS certificate and key files read then, it answers one request per
datagram on a SOCK_SEQPACKET socketpair: the server sends a mode byte
(``a`` append, ``r`` read) and a path; the opener opens it and passes
the descriptor back with SCM_RIGHTS (``send_fds``).

It opens nothing else: only the paths it was started with and only in
their mode -- log files for appending (created 0640 if missing), never
truncating, and not through a symbolic link in the last component
(``O_NOFOLLOW``: a serving user who can write the log folder cannot point
the path at /etc/shadow); certificate files for reading, and only from
folders root owns and nobody else may write (certbot's live/ symlinks
are followed).  A config reloaded later that names new files needs them
readable or writable by the serving user, as before.  It exits when the
server closes its end (the server stopped).

Run as ``python -m axkit.logopener FD a:PATH... r:PATH...`` by
``LogOpener.start``.
"""

import os
import signal
import socket
import stat
import subprocess
import sys

OK = b"ok"
APPEND = b"a"
READ = b"r"
MAX_MESSAGE = 65536
REFUSED = b"not a file this server opened at start"

_active = None  # the LogOpener of this process, once privileges are dropped


def activate(opener):
    """Make ``opener`` the one log files and certificates go through (None: none)."""
    global _active
    _active = opener


def active():
    return _active


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


def open_read(path):
    """``path`` opened for reading, if root owns the folders it is in (as
    named and as resolved) and nobody else may write them, nor any folder
    above them: otherwise a user could rename a folder on the way and put
    a file of theirs in its place.  A folder above that others may write is
    accepted when it is sticky (/tmp): there only the owner of an entry,
    here root, may rename it."""
    for folder in {os.path.dirname(os.path.abspath(path)), os.path.dirname(os.path.realpath(path))}:
        _only_root_writes(folder)
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


def _only_root_writes(folder):
    st = os.stat(folder)
    if st.st_uid != 0 or st.st_mode & 0o022:
        raise PermissionError(f"{os.fsdecode(folder)} is not a folder only root may write")
    child, parent = folder, os.path.dirname(folder)
    while parent != child:  # each folder above; `child` is root's (checked)
        st = os.stat(parent)
        if st.st_uid != 0 or (st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX):
            raise PermissionError(f"{os.fsdecode(parent)} is not a folder only root may write")
        child, parent = parent, os.path.dirname(parent)


def serve(sock, allowed):
    """Answer requests on ``sock`` until the other end closes; ``allowed``
    holds ``a:PATH`` and ``r:PATH`` words."""
    allowed = {os.fsencode(p[:1]) + os.fsencode(p[2:]) for p in allowed}
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
            sock.send(REFUSED)
            continue
        try:
            fd = open_append(path[1:]) if path[:1] == APPEND else open_read(path[1:])
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
    """The server's side: ``open(path)`` -> a log file's descriptor (append)
    and ``read(path)`` -> a certificate file's bytes, from the opener;
    OSError with the opener's reason."""

    def __init__(self, sock, process, paths, read_paths=()):
        self.sock = sock
        self.process = process
        self.paths = frozenset(paths)
        self.read_paths = frozenset(read_paths)

    @classmethod
    def start(cls, paths, read_paths=()):
        """Start the opener (call as root, before the drop) for log files
        ``paths`` and certificate files ``read_paths``."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.set_inheritable(False)
        words = [f"a:{p}" for p in paths] + [f"r:{p}" for p in read_paths]
        process = subprocess.Popen(
            [sys.executable, "-m", "axkit.logopener", str(theirs.fileno()), *words],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        ours.settimeout(10)
        return cls(ours, process, paths, read_paths)

    def knows(self, path):
        return path in self.paths

    def can_read(self, path):
        return path in self.read_paths

    def open(self, path):
        return self._ask(APPEND, path)

    def read(self, path):
        with os.fdopen(self._ask(READ, path), "rb") as f:
            return f.read()

    def _ask(self, mode, path):
        self.sock.send(mode + os.fsencode(path))
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


def start_for(config, drop_to_uid):
    """Started as root, with twistd about to drop to ``drop_to_uid``: a
    LogOpener for the log files open now (the logger plugins' startup has
    opened them) and the TLS files ``config`` read, made the active one.
    None when there is nothing to do."""
    from axkit import log as logs

    if not drop_to_uid or os.getuid() != 0:
        return None
    paths = logs.file_paths()
    # TLS keys are often root's alone: SIGHUP re-reads them through it.
    certificates = sorted({f for c in config.tls.values() for f in c.files})
    if not paths and not certificates:
        return None
    opener = LogOpener.start(paths, certificates)
    activate(opener)
    return opener


def stop(opener):
    if opener is not None:
        activate(None)
        opener.stop()


def read_file(path):
    """``path``'s bytes; through the root-held opener when this process
    dropped its privileges and the file was read before (a TLS key)."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except PermissionError:
        opener = _active
        if opener is None or not opener.can_read(path):
            raise
    return opener.read(path)


if __name__ == "__main__":
    main(sys.argv[1:])
