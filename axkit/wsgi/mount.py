"""One WSGIScriptAlias: its URL prefix, its application (loaded once, on
an application thread), and what is the same for all its requests."""

import threading

from twisted.logger import Logger

from . import loader
from .environ import ErrorStream, mount_base
from .filewrapper import FileWrapper

log = Logger(namespace="axkit.wsgi")


class Mount:
    def __init__(self, prefix, target, python_path=(), call=None):
        self.prefix = prefix
        # SCRIPT_NAME: the prefix without its trailing slash ("" for "/").
        self.script_name = prefix.rstrip("/")
        self.target = target
        self.label = f"{prefix} ({target.text})"
        self.python_path = tuple(python_path)
        self.app = None  # the WSGI callable, once imported
        self._lock = threading.Lock()
        self._warned = set()
        self.errors = ErrorStream(self.label, log, call)
        self.base = mount_base(self.script_name, self.errors, FileWrapper)

    def application(self):
        """The WSGI callable, imported at the first call (application thread)."""
        app = self.app
        if app is None:
            with self._lock:
                app = self.app
                if app is None:
                    if self.python_path:
                        loader.prepend_paths(self.python_path)
                    app = self.app = loader.load(self.target)
        return app

    def dropped(self, name, exchange):
        """A hop-by-hop field from the application was dropped: say so once."""
        if name in self._warned:
            return
        self._warned.add(name)
        exchange.emit(
            lambda: log.warn(
                "WSGI application {mount} sent a {name} header (hop-by-hop, forbidden by "
                "PEP 3333): dropped, and not logged again",
                mount=self.label,
                name=name,
                plugin="wsgi",
            )
        )
