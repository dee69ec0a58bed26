"""The contracts between the core and plugins (zope.interface)."""

from zope.interface import Attribute, Interface


class IAxKitPlugin(Interface):
    """A request-phase plugin.

    A plugin is a class (or instance) with a ``name``, an optional list of
    ``directives`` it adds to the config language, and any number of
    ``hook_<phase>(request, conf, ...)`` methods.  One instance is created
    per loaded configuration and shared by every scope that loads it.
    """

    name = Attribute("The name used on a `Plugin` line.")
    directives = Attribute("A sequence of axkit.config.Directive.")


class IAxKitPluginInfo(Interface):
    """What a `twisted/plugins/` dropin publishes for one axkit plugin.

    It must be cheap to import: ``load()`` imports the real class lazily.
    """

    name = Attribute("The name used on a `Plugin` line.")
    description = Attribute("One line saying what the plugin does.")
    module = Attribute("Dotted path 'package.module.Class' of the plugin.")

    def load():
        """Import and return the plugin class."""
