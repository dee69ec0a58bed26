"""Which application a WSGIScriptAlias names (axkit.apploader's grammar,
default name ``application`` as mod_wsgi's), or ``off``.

The config only checks the form (and that a file exists); the import
happens on an application thread at the first request, so a slow import
never holds the reactor, and a failing one is answered 500 and tried
again at the next request (mod_wsgi's behaviour).
"""

from axkit.apploader import Target, parse_target, prepend_paths
from axkit.apploader import load as _load

__all__ = ["OFF", "Target", "load", "prepend_paths", "target"]

OFF = "off"
NAMES = ("application",)


def target(word, ctx):
    """The TARGET argument of WSGIScriptAlias (a config type)."""
    if word.lower() == OFF:
        return OFF
    return parse_target(word, ctx)


target.label = "TARGET"


def load(t):
    """Import ``t`` and return its WSGI callable (raises on failure)."""
    return _load(t, NAMES)
