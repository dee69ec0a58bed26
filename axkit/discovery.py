"""Find axkit plugins: by name through Twisted's plugin system, or by dotted path.

Twisted's getPlugins swallows a dropin that fails to import (it only logs
the traceback); ``broken_dropins`` finds those again, with their exception,
so --list-plugins and config errors can name them.  Twisted would log the
traceback again at each scan (twistd's own, then each of ours): axkit's
scans are quiet (axkit._compat.quiet_dropin_failures), so under twistd it
is printed once, then axkit's own message where it matters (a config
naming the plugin, --list-plugins).
"""

import difflib
import importlib
import importlib.util
import inspect
import os

from twisted.plugin import getPlugins
from zope.interface import alsoProvides
from zope.interface.interface import Method

from axkit._compat import quiet_dropin_failures
from axkit.config.directives import Directive
from axkit.dropin import import_dotted
from axkit.interfaces import IAxKitPlugin, IAxKitPluginInfo


class PluginNotFound(Exception):
    pass


def discover():
    """name -> IAxKitPluginInfo for every plugin published by a dropin."""
    import twisted.plugins

    found = {}
    for info in _own_dropin():
        found.setdefault(info.name.lower(), info)
    with quiet_dropin_failures():
        for info in getPlugins(IAxKitPluginInfo, twisted.plugins):
            found.setdefault(info.name.lower(), info)
    return found


_own = []


def _own_dropin():
    """The bundled plugins, from the dropin file that ships next to *this*
    axkit package.  twisted.plugins is one namespace over every sys.path
    entry, so another installed copy of axkit_bundled.py (an older version
    in site-packages) would otherwise shadow ours."""
    if _own:
        return _own[0]
    import axkit

    here = os.path.dirname(os.path.dirname(os.path.abspath(axkit.__file__)))
    dropin = os.path.join(here, "twisted", "plugins", "axkit_bundled.py")
    infos = []
    if os.path.exists(dropin):
        spec = importlib.util.spec_from_file_location("axkit._bundled_dropin", dropin)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception:
            module = None
        if module is not None:
            infos = [v for v in vars(module).values() if IAxKitPluginInfo.providedBy(v)]
    _own.append(infos)
    return infos


class BrokenDropin:
    """A file in a twisted/plugins folder that failed to import."""

    def __init__(self, module, file, error):
        self.module = module  # twisted.plugins.name
        self.file = file
        self.error = error  # "ExceptionType: message"

    def __repr__(self):
        return f"BrokenDropin({self.module!r}, {self.error!r})"


def broken_dropins():
    """Every dropin module under twisted.plugins that does not import."""
    from twisted.plugin import getCache
    from twisted.python.modules import getModule

    import twisted.plugins

    with quiet_dropin_failures():
        loaded = getCache(twisted.plugins)
    broken = []
    for module in getModule(twisted.plugins.__name__).iterModules():
        key = module.name.rpartition(".")[2]
        if key in loaded:
            continue
        try:
            importlib.import_module(module.name)
        except BaseException as e:  # a dropin may raise anything, even SystemExit
            broken.append(
                BrokenDropin(module.name, module.filePath.path, f"{type(e).__name__}: {e}")
            )
    return broken


def distribution_of(module_name):
    """'Name version' of the installed distribution holding ``module_name``'s
    file (found through importlib.metadata), or None when it is not installed
    (run from a checkout or from PYTHONPATH)."""
    from importlib import metadata

    try:
        module = importlib.import_module(module_name)
        file = os.path.realpath(module.__file__)
    except Exception:
        return None
    top = module_name.partition(".")[0]
    candidates = metadata.packages_distributions().get(top, [])
    if top == "twisted":  # twisted.plugins is shared: every distribution may add to it
        candidates = [d.metadata["Name"] for d in metadata.distributions()]
    for dist_name in dict.fromkeys(candidates):
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            continue
        for f in dist.files or ():
            if f.name == os.path.basename(file) and os.path.realpath(dist.locate_file(f)) == file:
                return f"{dist.metadata['Name']} {dist.version}"
    return None


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
            raise PluginNotFound(
                f"plugin {name!r} ({info.module}) failed to import: {type(e).__name__}: {e}"
            )
    if "." in name:
        try:
            return import_dotted(name)
        except ImportError as e:
            raise PluginNotFound(f"cannot import plugin {name!r}: {e}")
        except Exception as e:
            raise PluginNotFound(f"plugin {name!r} failed to import: {type(e).__name__}: {e}")
    names = ", ".join(sorted(known)) or "none"
    message = f"unknown plugin {name!r} (discovered: {names})"
    broken = broken_dropins()
    if broken:
        message += "; dropins that failed to import: " + "; ".join(
            f"{b.file}: {b.error}" for b in broken
        )
    raise PluginNotFound(message)


class DoesNotProvide(PluginNotFound):
    """A plugin that does not provide IAxKitPlugin: no ``name``, a ``hook_``
    method that is no hook, an element of the wrong shape.  (A
    PluginNotFound, so that the config loader reports it like a plugin it
    cannot find: ``file:line: message``, before anything listens.)"""


def _where(plugin):
    cls = plugin if isinstance(plugin, type) else type(plugin)
    return f"{cls.__module__}.{cls.__qualname__}"


def _callable_as(method, arguments):
    """Whether ``method`` accepts ``arguments`` positional arguments (True
    when its signature cannot be read: a builtin, a C extension)."""
    try:
        signature = inspect.signature(method)
    except (TypeError, ValueError):
        return True
    try:
        signature.bind(*range(arguments))
    except TypeError:
        return False
    return True


def _element_problem(plugin, name, description):
    """What is wrong with ``plugin``'s optional element ``name`` (present),
    or None."""
    value = getattr(plugin, name)
    if isinstance(description, Method):
        arguments = description.positional
        call = f"{name}({', '.join(arguments)})"
        if not callable(value):
            return f"{name} is not a method ({type(value).__name__}); want {call}"
        if not _callable_as(value, len(arguments)):
            return f"{name}{inspect.signature(value)} cannot be called as {call}"
        return None
    if name == "directives":
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            return f"directives must be a list of Directive, not {type(value).__name__}"
        wrong = [d for d in value if not isinstance(d, Directive)]
        if wrong:
            return f"directives holds {wrong[0]!r}, not a Directive"
    elif name == "run_before":
        if (
            isinstance(value, (str, bytes))
            or not isinstance(value, (list, tuple, set, frozenset))
            or not all(isinstance(n, str) for n in value)
        ):
            return f"run_before must be a tuple of plugin names, not {value!r}"
    return None


def check_plugin(plugin):
    """The problems that keep ``plugin`` (an instance) from
    providing IAxKitPlugin, as phrases (empty: none).  A plain class need
    not declare the interface; declaring it excuses nothing."""
    problems = []
    name = getattr(plugin, "name", None)
    if name is None:
        problems.append("missing name (the name a Plugin line loads it by)")
    elif not isinstance(name, str) or not name.strip():
        problems.append(f"name must be a non-empty str, not {name!r}")
    for element in IAxKitPlugin.names():
        if element != "name" and hasattr(plugin, element):
            problem = _element_problem(plugin, element, IAxKitPlugin[element])
            if problem is not None:
                problems.append(problem)
    hooks = [n[5:] for n in IAxKitPlugin.names() if n.startswith("hook_")]
    for attr in dir(plugin):
        if attr.startswith("hook_") and attr not in IAxKitPlugin:
            near = difflib.get_close_matches(attr[5:], hooks, 1)
            problems.append(
                f"{attr} is not a hook"
                + (f" (did you mean hook_{near[0]}?)" if near else " (see docs/hooks.md)")
            )
    return problems


def instantiate(cls):
    """One plugin instance (``cls()``, or ``cls`` itself if it is not a
    class), checked against IAxKitPlugin: raises DoesNotProvide, naming the
    plugin and what it lacks, instead."""
    plugin = cls() if isinstance(cls, type) else cls
    problems = check_plugin(plugin)
    if problems:
        raise DoesNotProvide(
            f"plugin {_where(cls)} does not provide IAxKitPlugin: " + "; ".join(problems)
        )
    if not hasattr(plugin, "directives"):
        plugin.directives = ()  # optional: none
    if not IAxKitPlugin.providedBy(plugin):
        # Plain classes are welcome: it has been checked, declare it.
        alsoProvides(plugin, IAxKitPlugin)
    return plugin
