"""ASGIAlias targets: ``package.module:attribute`` or a Python file that
defines ``app`` or ``application`` (as uvicorn's ``module:app``)."""

import hashlib
import importlib
import importlib.util
import os
import re
import sys

from axkit.reload import note_app_module


class LoadError(Exception):
    """The target cannot be loaded: the message says why."""


NAMES = ("app", "application")


def load_app(target, base_dir=None):
    """The ASGI callable named by ``target``."""
    if target.endswith(".py") or os.sep in target:
        return _load_file(target if base_dir is None else os.path.join(base_dir, target))
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise LoadError(f"cannot import {module_name}: {e.__class__.__name__}: {e}") from e
    return _pick(module, attribute, target)


def _load_file(filename):
    if not os.path.isfile(filename):
        raise LoadError(f"{filename}: no such file")
    # One module per file: the name carries a digest of the full path, so
    # two apps called app.py never share a module (nor --reload's watch).
    where = os.path.abspath(filename)
    digest = hashlib.sha1(where.encode("utf-8")).hexdigest()[:12]
    name = "axkit_asgi_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(where))[0])
    name += "_" + digest
    spec = importlib.util.spec_from_file_location(name, filename)
    module = importlib.util.module_from_spec(spec)
    # Its own folder first on the path, so it imports its siblings.
    folder = os.path.dirname(os.path.abspath(filename))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        raise LoadError(f"{filename}: {e.__class__.__name__}: {e}") from e
    return _pick(module, "", filename)


def _pick(module, attribute, target):
    note_app_module(module)
    if attribute:
        obj = module
        for part in attribute.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise LoadError(f"{target}: {module.__name__} has no {attribute!r}") from None
    else:
        for name in NAMES:
            obj = getattr(module, name, None)
            if obj is not None:
                break
        else:
            raise LoadError(f"{target}: defines neither 'app' nor 'application'")
    if not callable(obj):
        raise LoadError(f"{target}: {obj!r} is not callable")
    return obj
