"""What a `twisted/plugins/` dropin file uses to publish axkit plugins.

Importing this module is cheap (zope.interface only), as a dropin must be:
the plugin's own module is imported only when a config loads it::

    # yourpackage/twisted/plugins/yourpackage_axkit.py
    from axkit.dropin import AxKitPlugin
    hello = AxKitPlugin("hello", "yourpackage.hello.Hello", "Says hello.")
"""

import importlib

from twisted.plugin import IPlugin
from zope.interface import implementer

from axkit.interfaces import IAxKitPluginInfo


@implementer(IPlugin, IAxKitPluginInfo)
class AxKitPlugin:
    """A lazily imported axkit plugin, findable by ``name``."""

    def __init__(self, name, module, description=""):
        self.name = name
        self.module = module
        self.description = description

    def load(self):
        return import_dotted(self.module)

    def __repr__(self):
        return f"AxKitPlugin({self.name!r}, {self.module!r})"


def import_dotted(dotted):
    """Import 'package.module.Attr' and return Attr."""
    module_name, _, attr = dotted.rpartition(".")
    if not module_name:
        raise ImportError(f"{dotted!r} is not a dotted path package.module.Class")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ImportError(f"module {module_name!r} has no attribute {attr!r}")
