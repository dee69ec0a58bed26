"""Which application a WSGIScriptAlias names, and loading it.

A target is one of (as mod_wsgi and gunicorn spell them):

* a file -- ``app.wsgi``, ``app.py``, any path with a ``/`` or any
  existing file (relative to the config file's folder) -- defining
  ``application`` (``app.py:app`` names another callable).  It is loaded
  as a module of its own, its folder first on ``sys.path`` (as running
  ``python app.py`` would: its sibling modules import);
* ``package.module:callable`` -- imported from ``sys.path``
  (``WSGIPythonPath``); ``package.module:create_app()`` calls a factory
  without arguments once, as gunicorn does.

The config only checks the form (and that a file exists); the import
happens on an application thread at the first request, so a slow import
never holds the reactor, and a failing one is answered 500 and tried
again at the next request (mod_wsgi's behaviour).
"""

import hashlib
import importlib
import importlib.machinery
import importlib.util
import os
import re
import sys
import threading

from axkit.config import ConfigError
from axkit.config.types import path as _path
from axkit.reload import note_app_module

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_MODULE = re.compile(rf"{_IDENT}(\.{_IDENT})*\Z")
_CALLABLE = re.compile(rf"({_IDENT})(\(\))?\Z")
_FILE_SUFFIXES = (".wsgi", ".py")

OFF = "off"

_path_lock = threading.Lock()


class Target:
    """A parsed TARGET: ``kind`` "file" or "module", where, and the name."""

    __slots__ = ("kind", "where", "name", "factory", "text", "_hash")

    def __init__(self, kind, where, name, factory, text):
        self.kind = kind
        self.where = where  # the file's absolute path, or the module name
        self.name = name  # the callable's name
        self.factory = factory  # call it (without arguments) to get the app
        self.text = text
        self._hash = hash((text, where))  # (a mount's key, looked up per request)

    def __repr__(self):
        return f"Target({self.text!r})"

    def __eq__(self, other):
        return isinstance(other, Target) and other.text == self.text and other.where == self.where

    def __hash__(self):
        return self._hash


def target(word, ctx):
    """The TARGET argument of WSGIScriptAlias (a config type)."""
    if word.lower() == OFF:
        return OFF
    spec, sep, name = word.rpartition(":") if ":" in word else (word, "", "")
    if not sep:
        spec, name = word, "application"
    called = _CALLABLE.match(name)
    if called is None:
        raise ConfigError(f"{word!r}: expected a callable's name after ':', got {name!r}")
    factory = called.group(2) is not None
    name = called.group(1)
    # A file when it names one (or looks like a path); a module otherwise
    # (djsite.wsgi:application is Django's module, not a file).
    where = os.path.abspath(_path(spec, ctx))
    if (
        "/" in spec
        or os.path.isfile(where)
        or (spec.endswith(_FILE_SUFFIXES) and not (sep and _MODULE.match(spec)))
    ):
        if not os.path.isfile(where):
            raise ConfigError(f"WSGI application file {where} does not exist")
        return Target("file", where, name, factory, word)
    if not sep:
        raise ConfigError(
            f"expected a file (app.wsgi, app.py) or package.module:callable, "
            f"got {word!r} (for a module, name its callable: "
            f"{word}:application)"
        )
    if _MODULE.match(spec) is None:
        raise ConfigError(f"{spec!r} is not a Python module name")
    return Target("module", spec, name, factory, word)


target.label = "TARGET"


def prepend_paths(dirs):
    """Put ``dirs`` first on sys.path, in their order (once each)."""
    with _path_lock:
        for d in reversed(dirs):
            if d not in sys.path:
                sys.path.insert(0, d)


def load(t):
    """Import ``t`` and return its WSGI callable (raises on failure)."""
    if t.kind == "file":
        folder = os.path.dirname(t.where)
        prepend_paths([folder])
        digest = hashlib.sha1(t.where.encode("utf-8")).hexdigest()[:12]
        modname = "_axkit_wsgi_" + re.sub(r"\W", "_", os.path.basename(t.where)) + "_" + digest
        module = sys.modules.get(modname)
        if module is None:
            loader = importlib.machinery.SourceFileLoader(modname, t.where)
            spec = importlib.util.spec_from_loader(modname, loader)
            module = importlib.util.module_from_spec(spec)
            sys.modules[modname] = module
            try:
                loader.exec_module(module)
            except BaseException:
                del sys.modules[modname]
                raise
        where = t.where
    else:
        module = importlib.import_module(t.where)
        where = t.where
    note_app_module(module)
    try:
        app = getattr(module, t.name)
    except AttributeError:
        raise LookupError(
            f"{where} defines no {t.name!r} (name the callable: {t.text.partition(':')[0]}:NAME)"
        ) from None
    if t.factory:
        app = app()
    if not callable(app):
        raise TypeError(f"{t.text}: {t.name} is not callable")
    return app
