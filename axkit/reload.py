"""Development mode (``twistd -n axkit --config site.conf --reload``):
restart the server when a Python file of a mounted app changes, as
``uvicorn --reload`` does, keeping the listening sockets open across the
restart so a browser never sees a refused connection.

The process re-executes itself (same pid, same command line) with its
listening sockets inherited; the new one adopts them instead of binding
(``inherited_socket``).  At a change the server stops accepting (the
sockets stay open: new connections wait in the kernel's accept queue for
the new process), closes idle keep-alive connections and lets requests in
flight finish, for at most DRAIN seconds (then cuts them), as uvicorn's
reload lets its worker shut down gracefully: a browser sees neither a
refused nor a reset connection.
"""

import os
import socket
import sys

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

log = Logger(namespace="axkit.reload")

ENV = "AXKIT_RELOAD_SOCKETS"  # "endpoint\x1ffd\x1ffamily" records, "\x1e"-separated
INTERVAL = 0.5
DRAIN = 5.0  # seconds requests in flight may take to finish at a restart


def inherited_socket(endpoint):
    """(fd, family) of a listening socket inherited for ``endpoint`` across a
    reload, or None."""
    for record in os.environ.get(ENV, "").split("\x1e"):
        if record:
            ep, fd, family = record.split("\x1f")
            if ep == endpoint:
                return int(fd), int(family)
    return None


# The modules of mounted applications (WSGI and ASGI), for watching: their
# loaders add each module they import (note_app_module).
APP_MODULES = set()


def note_app_module(module):
    """Record the module an application was loaded from (its folder, or its
    top-level package's, is watched under --reload)."""
    APP_MODULES.add(module.__name__)


def watched_folders():
    """The folders holding the mounted apps' code: a file's folder, or the
    folder of a module's top-level package."""
    folders = set()
    for name in APP_MODULES:
        module = sys.modules.get(name)
        filename = getattr(module, "__file__", None)
        if not filename:
            continue
        top = sys.modules.get(name.split(".")[0])
        filename = getattr(top, "__file__", None) or filename
        folder = os.path.dirname(os.path.abspath(filename))
        if os.path.basename(filename) == "__init__.py":
            folder = os.path.dirname(folder)
        folders.add(folder)
    return folders


def snapshot(folders):
    """{path: mtime} of the .py files under ``folders``."""
    found = {}
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            dirs[:] = [
                d
                for d in dirs
                if not d.startswith(".") and d != "__pycache__" and "site-packages" not in d
            ]
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(root, name)
                    try:
                        found[path] = os.stat(path).st_mtime_ns
                    except OSError:
                        pass
    return found


class Reloader:
    """Polls the apps' files; on a change, re-executes the server."""

    def __init__(self, service):
        self.service = service
        self.folders = watched_folders()
        self.files = snapshot(self.folders)
        self.call = LoopingCall(self.check)
        self.call.clock = service.reactor

    def start(self):
        os.environ.pop(ENV, None)  # adopted by now
        log.info(
            "--reload: watching {count} Python file(s) under {folders}",
            count=len(self.files),
            folders=", ".join(sorted(self.folders)),
        )
        self.call.start(INTERVAL, now=False)

    def check(self):
        now = snapshot(self.folders)
        if now == self.files:
            return
        changed = sorted(p for p in set(now) | set(self.files) if now.get(p) != self.files.get(p))
        log.info("--reload: {changed} changed; restarting", changed=", ".join(changed))
        self.call.stop()
        self.drain().addCallback(lambda _: self.shut_down())

    def drain(self):
        """Stop accepting (the sockets stay open for the new process), close
        idle keep-alive connections, and fire once every connection has
        ended, or after DRAIN seconds with the rest cut."""
        from axkit.http.factory import Drain

        service = self.service
        reactor = service.reactor
        service.gate.ports = []  # nothing starts them reading again
        for port in service.ports.values():
            stop = getattr(port, "stopReading", None)
            if stop is not None:
                stop()
        factories = list(service.factories.values()) + list(service.retired_factories)
        return Drain(
            reactor,
            factories,
            DRAIN,
            lambda count: log.warn(
                "--reload: cutting {count} request(s) still running after {s}s",
                count=count,
                s=DRAIN,
            ),
        ).done

    def shut_down(self):
        # The plugins' shutdown (an app's lifespan shutdown), then the restart.
        from twisted.internet import defer

        stops = [
            defer.maybeDeferred(plugin.shutdown)
            for plugin in self.service.holder.config.plugins.values()
            if getattr(plugin, "shutdown", None) is not None
        ]
        defer.DeferredList(stops, consumeErrors=True).addBoth(lambda _: self.restart())

    def restart(self):
        records = []
        for endpoint, port in self.service.ports.items():
            handle = port.socket if hasattr(port, "socket") else None
            if handle is None:
                continue
            fd = handle.fileno()
            os.set_inheritable(fd, True)
            records.append(f"{endpoint}\x1f{fd}\x1f{int(handle.family)}")
        os.environ[ENV] = "\x1e".join(records)
        # twistd would take its own pid file, still holding our pid, for
        # another server's.
        for path in _pidfiles():
            try:
                with open(path) as f:
                    if f.read().strip() == str(os.getpid()):
                        os.remove(path)
            except OSError:
                pass
        from axkit.log import flush_all

        flush_all()
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, sys.orig_argv)


def _pidfiles():
    argv = sys.orig_argv
    for i, arg in enumerate(argv):
        if arg.startswith("--pidfile="):
            value = arg.partition("=")[2]
            return [value] if value else []
        if arg == "--pidfile" and i + 1 < len(argv):
            return [argv[i + 1]]
    return ["twistd.pid"]


def adopt(reactor, endpoint, factory):
    """Listen on the socket inherited for ``endpoint`` (a Deferred port), or None."""
    found = inherited_socket(endpoint)
    if found is None:
        return None
    from twisted.internet import defer

    fd, family = found
    port = reactor.adoptStreamPort(fd, socket.AddressFamily(family), factory)
    os.close(fd)  # adoptStreamPort made its own copy
    return defer.succeed(port)
