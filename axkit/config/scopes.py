"""Scopes of a loaded config and the merged, immutable values a request sees.

The tree is global -> <Server> -> <Location>/<LocationMatch> -> <Files>.
Sections apply in this order, each merged over the one before (the model
is Apache's): the global scope, the request's <Server>, every matching
<Location> and <LocationMatch> in config-file order, then every matching
<Files> (on the mapped file's name) in config-file order.  A request's
merged values are computed once per distinct set of matching sections and
cached, so a request never re-walks the tree.
"""

import fnmatch
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from axkit.phases import hook_chains, plan

from .directives import APPEND, MAP, PREPEND, REPLACE_LIST

if TYPE_CHECKING:
    from .registry import Registry


class Scope:
    """One section of the config as written: its own values and plugins."""

    def __init__(self, kind: str, match: Any, file: str, line: int) -> None:
        self.kind: str = kind  # global, server, location, locationmatch, files
        self.match: Any = match  # prefix / compiled regex / glob / server label
        # directive key -> value (list of values for APPEND/MAP)
        self.values: dict[str, Any] = {}
        # directive key -> (file, line) of first occurrence
        self.sources: dict[str, tuple[str, int]] = {}
        self.plugins: list[Any] = []  # plugin instances loaded in this scope, in order
        self.sections: list[Scope] = []  # nested scopes
        self.file: str = file
        self.line: int = line

    def matches(self, path: str) -> bool:
        kind = self.kind
        if kind == "location":
            prefix = self.match
            if prefix.endswith("/"):
                return path.startswith(prefix)
            return path == prefix or path.startswith(prefix + "/")
        if kind == "locationmatch":
            return self.match.search(path) is not None
        if kind == "files":
            return fnmatch.fnmatchcase(path.rpartition("/")[2], self.match)
        return True

    def describe(self) -> str:
        if self.kind == "global":
            return "global scope"
        pattern = getattr(self.match, "pattern", self.match)
        label = {
            "server": "Server",
            "location": "Location",
            "locationmatch": "LocationMatch",
            "files": "Files",
        }[self.kind]
        head = f"<{label} {pattern}>" if pattern else f"<{label}>"
        return f"{head} at {self.file}:{self.line}"


class FrozenDict(dict):
    """A merged MAP value: a dict (JSON-serialisable, .get(), iteration) that
    refuses changes, so one request cannot alter what every request sees."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a config value is read-only; config is set in the config file")

    __setitem__ = __delitem__ = update = pop = popitem = setdefault = clear = _refuse
    __ior__ = _refuse

    def __hash__(self) -> int:  # type: ignore[override]  # (dict's is None)
        return hash(frozenset(self.items()))

    # copy, deepcopy and pickle rebuild it whole
    def __reduce__(self) -> tuple[type["FrozenDict"], tuple[dict[Any, Any]]]:
        return (FrozenDict, (dict(self),))


def freeze(value: Any) -> Any:
    return FrozenDict(value) if type(value) is dict else value


class Conf:
    """Merged directive values for one request scope; read-only attributes."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)

    if TYPE_CHECKING:
        # Its attributes are the directives' (conf.document_root...).
        def __getattr__(self, name: str) -> Any: ...

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a Conf is read-only; config is set in the config file")

    def __repr__(self) -> str:
        return f"Conf({sorted(k for k in self.__dict__ if not k.startswith('_'))})"


class Resolved:
    """A merged Conf plus, per hook, the chain of (plugin, method) to run,
    and the plan of the request steps to visit (axkit.phases)."""

    __slots__ = ("conf", "chains", "plugins", "scopes", "values", "plan")

    def __init__(
        self, values: dict[str, Any], plugins: Iterable[Any], scopes: Iterable[Scope]
    ) -> None:
        self.values: dict[str, Any] = values
        self.plugins: tuple[Any, ...] = order_plugins(plugins)
        self.scopes: tuple[Scope, ...] = tuple(scopes)
        values = dict(values)
        values["plugins"] = self.plugins
        self.conf: Conf = Conf(values)
        # Per hook, the plugins that run it here, and the steps of a request
        # in this scope (axkit.phases).
        self.chains: dict[str, tuple[tuple[Any, Any], ...]] = hook_chains(self.plugins, self.conf)
        self.plan: tuple[Any, ...] = plan(self.chains)


def order_plugins(plugins: Iterable[Any]) -> tuple[Any, ...]:
    """The scope's plugins in the order their hooks run: load order, except
    that a plugin declaring ``run_before = ("name", ...)`` is moved ahead of
    the first of those plugins loaded before it (cgi before the file
    handlers, whatever order the Plugin lines come in)."""
    ordered = list(plugins)
    for plugin in list(ordered):
        before = getattr(plugin, "run_before", ())
        if not before:
            continue
        here = ordered.index(plugin)
        ahead = [
            i for i, other in enumerate(ordered[:here]) if getattr(other, "name", None) in before
        ]
        if ahead:
            ordered.pop(here)
            ordered.insert(ahead[0], plugin)
    return tuple(ordered)


def merge_scope(
    values: dict[str, Any], plugins: list[Any], scope: Scope, registry: "Registry"
) -> tuple[dict[str, Any], list[Any]]:
    """``values``/``plugins`` with ``scope`` merged over them (new objects)."""
    values = dict(values)
    for key, own in scope.values.items():
        directive = registry.by_key[key]
        if directive.merge == APPEND:
            values[directive.attr] = tuple(values.get(directive.attr, ())) + tuple(own)
        elif directive.merge == PREPEND:
            values[directive.attr] = tuple(own) + tuple(values.get(directive.attr, ()))
        elif directive.merge == REPLACE_LIST:
            values[directive.attr] = tuple(own)
        elif directive.merge == MAP:
            merged: dict[Any, Any] = dict(values.get(directive.attr, {}))
            for occurrence in own:
                for k, v in directive.items(occurrence):
                    merged[k] = v
            values[directive.attr] = FrozenDict(merged)
        else:
            values[directive.attr] = own
    if scope.plugins:
        # Innermost scope first, as AxKit ran them; a plugin named again
        # in an inner scope moves to its inner position.
        inner = list(scope.plugins)
        plugins = inner + [p for p in plugins if p not in inner]
    return values, plugins


class ServerConfig:
    """One <Server> (or the implicit one): names, listeners, and its sections."""

    def __init__(
        self, scope: Scope, global_scope: Scope, registry: "Registry", defaults: dict[str, Any]
    ) -> None:
        self.scope: Scope = scope
        self.registry: Registry = registry
        values, plugins = merge_scope(defaults, [], global_scope, registry)
        if scope is not global_scope:
            values, plugins = merge_scope(values, plugins, scope, registry)
        self.base: Resolved = Resolved(
            values, plugins, [global_scope] if scope is global_scope else [global_scope, scope]
        )
        self.name: str | None = values.get("server_name")
        # ServerAlias may repeat, each line a list of names: flatten them.
        self.aliases: tuple[str, ...] = tuple(
            name
            for names in values.get("server_alias", ())
            for name in (names if isinstance(names, tuple) else (names,))
        )
        own_listens = scope.values.get("listen")
        self.listens: tuple[str, ...] = tuple(own_listens or global_scope.values.get("listen", ()))
        outer = [s for s in global_scope.sections if s.kind in ("location", "locationmatch")]
        inner = (
            [s for s in scope.sections if s.kind in ("location", "locationmatch")]
            if scope is not global_scope
            else []
        )
        self.locations: tuple[Scope, ...] = tuple(outer + inner)
        files = [s for s in global_scope.sections if s.kind == "files"]
        if scope is not global_scope:
            files += [s for s in scope.sections if s.kind == "files"]
        for loc in self.locations:
            files += [s for s in loc.sections if s.kind == "files"]
        self.files: tuple[Scope, ...] = tuple(files)
        self._cache: dict[tuple[Scope, ...], Resolved] = {}
        # Resolve every section on its own now, at load time: most requests
        # match one section, and then their lookup is a dict hit.
        for loc in self.locations:
            self._resolved((loc,))
        for f in self.files:
            if self._files_applies(f, self.base):
                self._resolved((f,))

    def label(self) -> str:
        return self.name or self.scope.match or "default"

    def resolve(self, path: str) -> Resolved:
        """The Resolved values for a decoded, normalised URL path."""
        if not self.locations:
            return self.base
        matched = tuple(loc for loc in self.locations if loc.matches(path))
        if not matched:
            return self.base
        return self._resolved(matched)

    def resolve_file(self, resolved: Resolved, filename: str | None) -> Resolved:
        """``resolved`` with the <Files> sections matching ``filename`` merged in."""
        if not self.files or not filename:
            return resolved
        matched = tuple(
            f for f in self.files if f.matches(filename) and self._files_applies(f, resolved)
        )
        if not matched:
            return resolved
        return self._resolved(resolved.scopes[len(self.base.scopes) :] + matched)

    def _files_applies(self, files_scope: Scope, resolved: Resolved) -> bool:
        # A <Files> nested in a <Location> applies only when that Location matched.
        for loc in self.locations:
            if files_scope in loc.sections:
                return loc in resolved.scopes
        return True

    def _resolved(self, matched: tuple[Scope, ...]) -> Resolved:
        cached = self._cache.get(matched)
        if cached is None:
            values, plugins = self.base.values, list(self.base.plugins)
            for scope in matched:
                values, plugins = merge_scope(values, plugins, scope, self.registry)
            cached = Resolved(values, plugins, self.base.scopes + matched)
            if len(self._cache) < 4096:
                self._cache[matched] = cached
        return cached
