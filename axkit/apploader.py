"""Which application a WSGIScriptAlias or ASGIAlias names, and loading it.

One grammar for both (as mod_wsgi, gunicorn and uvicorn spell targets):

* a file -- ``app.wsgi``, ``app.py``, any path with a ``/`` or any
  existing file (relative to the config file's folder) -- defining the
  plugin's default name (WSGI: ``application``; ASGI: ``app``, else
  ``application``); ``app.py:app`` names another callable.  It is loaded
  as a module of its own (its name carries a digest of the path, so two
  ``app.py`` files never share one), its folder first on ``sys.path`` (as
  running ``python app.py`` would: its sibling modules import);
* ``package.module:callable`` -- imported from ``sys.path``;
  ``package.module:create_app()`` calls a factory without arguments once
  (gunicorn's form, uvicorn's ``--factory``); ``module:obj.attr`` follows
  attributes.

The config checks the form (and that a file exists), so a typo is a
``file:line`` error before anything listens; ``load`` imports.
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
_CALLABLE = re.compile(rf"({_IDENT}(?:\.{_IDENT})*)(\(\))?\Z")
_FILE_SUFFIXES = (".wsgi", ".py")

_path_lock = threading.Lock()


class Target:
    """A parsed TARGET: ``kind`` "file" or "module", where, and the name
    (None: the first of the plugin's default names the module defines)."""

    __slots__ = ("kind", "where", "name", "factory", "text", "_hash")

    def __init__(self, kind, where, name, factory, text):
        self.kind = kind
        self.where = where  # the file's absolute path, or the module name
        self.name = name  # the callable's (dotted) name, or None
        self.factory = factory  # call it (without arguments) to get the app
        self.text = text
        self._hash = hash((text, where))  # (a mount's key, looked up per request)

    def __repr__(self):
        return f"Target({self.text!r})"

    def __str__(self):
        return self.text

    def __eq__(self, other):
        return isinstance(other, Target) and other.text == self.text and other.where == self.where

    def __hash__(self):
        return self._hash


def parse_target(word, ctx):
    """TARGET as a config value (relative files from the config's folder)."""
    spec, sep, name = word.rpartition(":") if ":" in word else (word, "", "")
    factory = False
    if sep:
        called = _CALLABLE.match(name)
        if called is None:
            raise ConfigError(f"{word!r}: expected a callable's name after ':', got {name!r}")
        factory = called.group(2) is not None
        name = called.group(1)
    else:
        spec, name = word, None
    # A file when it names one (or looks like a path); a module otherwise
    # (djsite.wsgi:application is Django's module, not a file).
    where = os.path.abspath(_path(spec, ctx))
    if (
        "/" in spec
        or os.path.isfile(where)
        or (spec.endswith(_FILE_SUFFIXES) and not (sep and _MODULE.match(spec)))
    ):
        if not os.path.isfile(where):
            raise ConfigError(f"application file {where} does not exist")
        return Target("file", where, name, factory, word)
    if not sep:
        raise ConfigError(
            f"expected a file (app.wsgi, app.py) or package.module:callable, "
            f"got {word!r} (for a module, name its callable: {word}:app)"
        )
    if _MODULE.match(spec) is None:
        raise ConfigError(f"{spec!r} is not a Python module name")
    return Target("module", spec, name, factory, word)


parse_target.label = "TARGET"


def prepend_paths(dirs):
    """Put ``dirs`` first on sys.path, in their order (once each)."""
    with _path_lock:
        for d in reversed(dirs):
            if d not in sys.path:
                sys.path.insert(0, d)


def load(t, default_names=("application",)):
    """Import ``t`` and return its callable (raises on failure: ImportError,
    the module's own exception, LookupError, TypeError)."""
    if t.kind == "file":
        prepend_paths([os.path.dirname(t.where)])
        digest = hashlib.sha1(t.where.encode("utf-8")).hexdigest()[:12]
        modname = "_axkit_app_" + re.sub(r"\W", "_", os.path.basename(t.where)) + "_" + digest
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
    else:
        module = importlib.import_module(t.where)
    note_app_module(module)
    app = _find(module, t, default_names)
    if t.factory:
        app = app()
    if not callable(app):
        raise TypeError(f"{t.text}: {t.name or 'it'} is not callable")
    return app


def _find(module, t, default_names):
    if t.name is None:
        for name in default_names:
            app = getattr(module, name, None)
            if app is not None:
                return app
        names = " nor ".join(repr(n) for n in default_names)
        raise LookupError(
            f"{t.where} defines {'neither ' if len(default_names) > 1 else 'no '}{names} "
            f"(name the callable: {t.text}:NAME)"
        )
    app = module
    for part in t.name.split("."):
        try:
            app = getattr(app, part)
        except AttributeError:
            raise LookupError(
                f"{t.where} defines no {t.name!r} (name the callable: "
                f"{t.text.rpartition(':')[0]}:NAME)"
            ) from None
    return app
