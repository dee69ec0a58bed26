"""Find axkit plugins: by name through Twisted's plugin system, or by dotted path."""

import sys

from twisted.plugin import getPlugins
from zope.interface.verify import verifyObject

from axkit.dropin import import_dotted
from axkit.interfaces import IAxKitPlugin, IAxKitPluginInfo


class PluginNotFound(Exception):
    pass


def discover():
    """name -> IAxKitPluginInfo for every plugin published by a dropin."""
    import twisted.plugins
    found = {}
    for info in getPlugins(IAxKitPluginInfo, twisted.plugins):
        found.setdefault(info.name.lower(), info)
    return found


def find_plugin(name, known=None):
    """The plugin class for a `Plugin` line's ``name``.

    A name that is a dropin's plugin name wins; otherwise a dotted
    ``package.module.Class`` is imported.  Raises PluginNotFound with a
    message fit for a config error.
    """
    if known is None:
        known = discover()
    info = known.get(name.lower())
    if info is not None:
        try:
            return info.load()
        except Exception as e:
            raise PluginNotFound(f"plugin {name!r} ({info.module}) failed to import: "
                                 f"{type(e).__name__}: {e}")
    if "." in name:
        try:
            return import_dotted(name)
        except ImportError as e:
            raise PluginNotFound(f"cannot import plugin {name!r}: {e}")
        except Exception as e:
            raise PluginNotFound(f"plugin {name!r} failed to import: "
                                 f"{type(e).__name__}: {e}")
    names = ", ".join(sorted(known)) or "none"
    raise PluginNotFound(f"unknown plugin {name!r} (discovered: {names})")


def instantiate(cls):
    """One plugin instance, checked against IAxKitPlugin."""
    plugin = cls() if isinstance(cls, type) else cls
    if not getattr(plugin, "name", None):
        plugin.name = type(plugin).__name__.lower()
    if not hasattr(plugin, "directives"):
        plugin.directives = ()
    if not IAxKitPlugin.providedBy(plugin):
        # Plain classes are welcome: declare the interface on their behalf.
        from zope.interface import alsoProvides
        alsoProvides(plugin, IAxKitPlugin)
    verifyObject(IAxKitPlugin, plugin)
    return plugin
