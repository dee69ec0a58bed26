"""ASGIAlias targets: axkit.apploader's grammar (``package.module:app``,
``module:create_app()``, or a Python file), default names ``app`` then
``application`` (as uvicorn's ``module:app``)."""

from axkit.apploader import Target, parse_target
from axkit.apploader import load as _load

__all__ = ["NAMES", "LoadError", "Target", "load_app", "parse_target"]

NAMES = ("app", "application")


class LoadError(Exception):
    """The target cannot be loaded: the message says why."""


def load_app(target):
    """The ASGI callable named by ``target`` (a Target); LoadError says why not."""
    try:
        return _load(target, NAMES)
    except Exception as e:
        raise LoadError(f"{e.__class__.__name__}: {e}") from e
