"""Load a config: parse, load plugins, check every directive, build scopes.

Every error found is collected, so ``--check`` can print them all as
``file:line: message``; nothing listens until a config loads cleanly.
"""

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from axkit import discovery
from axkit.config.core import CORE_DIRECTIVES

from .directives import LIST_MERGES, SCOPE_OF_SECTION, Directive
from .errors import ConfigError, ConfigErrors, ConfigWarning
from .parser import SECTIONS, DirectiveNode, SectionNode, parse_file, parse_string
from .registry import Registry
from .scopes import Resolved, Scope, ServerConfig, freeze
from .types import Context

DEFAULT_LISTEN = "tcp:8080:interface=127.0.0.1"

# Which sections may hold which.
ALLOWED_PARENTS = {
    "server": {"global"},
    "location": {"global", "server"},
    "locationmatch": {"global", "server"},
    "files": {"global", "server", "location", "locationmatch"},
}

_SCOPE_LABEL = {
    "global": "the global scope (outside any section)",
    "server": "<Server>",
    "location": "<Location>/<LocationMatch>",
    "files": "<Files>",
}


class SiteConfig:
    """A loaded, validated configuration: servers, listeners, plugins."""

    def __init__(
        self,
        source: str,
        registry: Registry,
        plugins: dict[str, Any],
        global_scope: Scope,
        servers: list[ServerConfig],
        global_resolved: Resolved,
        warnings: Any = (),
    ) -> None:
        self.source: str = source
        self.warnings = list(warnings)  # ConfigWarning: loaded, but worth a look
        # the global scope alone (logging...)
        self.global_resolved: Resolved = global_resolved
        self.registry: Registry = registry
        self.plugins: dict[str, Any] = plugins  # name -> instance
        self.global_scope: Scope = global_scope
        self.servers: list[ServerConfig] = servers
        # endpoint -> [ServerConfig], first = default
        self.listeners: dict[str, list[ServerConfig]] = {}
        self.tls: dict[str, Any] = {}  # TLS endpoint -> axkit.tls.Certificates
        for server in servers:
            for ep in server.listens or (DEFAULT_LISTEN,):
                self.listeners.setdefault(ep, []).append(server)


def extra_core_directives() -> Sequence[Directive]:
    """Directives the core owns outside config/ (limits of the HTTP engine...)."""
    from axkit.http.limits import LIMIT_DIRECTIVES
    from axkit.tls import TLS_DIRECTIVES

    return list(LIMIT_DIRECTIVES) + TLS_DIRECTIVES


def load_file(path: str, known_plugins: Mapping[str, Any] | None = None) -> SiteConfig:
    """Load and check the config file at ``path`` (raises ConfigErrors).
    ``known_plugins`` (name -> plugin info) defaults to the discovered ones."""
    return load_tree(parse_file(path), path, known_plugins)


def load_string(
    text: str,
    name: str = "<string>",
    base_dir: str | None = None,
    known_plugins: Mapping[str, Any] | None = None,
) -> SiteConfig:
    """Load and check config ``text``; relative paths are taken from
    ``base_dir`` (default: the current folder).  Raises ConfigErrors."""
    return load_tree(parse_string(text, name, base_dir), name, known_plugins)


def load_tree(
    root: SectionNode, source: str, known_plugins: Mapping[str, Any] | None = None
) -> SiteConfig:
    errors: list[ConfigError] = []
    registry = Registry()
    registry.add_all(CORE_DIRECTIVES + list(extra_core_directives()), "core")
    known = known_plugins if known_plugins is not None else discovery.discover()
    plugins = _load_plugins(root, registry, known, errors)
    global_scope = Scope("global", None, source, 0)
    _fill_scope(global_scope, root, registry, plugins, known, errors)
    warnings = sorted((e for e in errors if isinstance(e, ConfigWarning)), key=_error_order)
    errors = [e for e in errors if not isinstance(e, ConfigWarning)]
    if errors:
        raise ConfigErrors(sorted(errors, key=_error_order))
    defaults = {d.attr: freeze(d.default) for d in registry}
    server_scopes = [s for s in global_scope.sections if s.kind == "server"]
    servers = [ServerConfig(s, global_scope, registry, defaults) for s in server_scopes] or [
        ServerConfig(global_scope, global_scope, registry, defaults)
    ]
    for plugin in plugins.values():  # checks across lines (IAxKitPlugin.check_config)
        check = getattr(plugin, "check_config", None)
        if check is None:
            continue
        for server in servers:
            try:
                check(server.base.conf)
            except ConfigError as e:
                errors.append(e)
    if errors:
        raise ConfigErrors(sorted(errors, key=_error_order))
    global_only = (
        servers[0]
        if servers[0].scope is global_scope
        else ServerConfig(global_scope, global_scope, registry, defaults)
    )
    site = SiteConfig(source, registry, plugins, global_scope, servers, global_only.base, warnings)
    from axkit.tls import check_certificates, expiry_warnings

    # TLS listeners' certificates, read now: a bad one is a file:line error
    # before anything listens (and a reload re-reads renewed ones); one
    # that ends within two weeks is a warning.
    site.tls = check_certificates(site)
    site.warnings += expiry_warnings(site, site.tls)
    return site


def _error_order(e: ConfigError) -> tuple[str, int]:
    return (str(e.file), e.line or 0)


def _walk_directives(node):
    for child in node.children:
        if isinstance(child, DirectiveNode):
            yield child
        else:
            yield from _walk_directives(child)


def _load_plugins(root, registry, known, errors):
    """Load every plugin named anywhere, registering its directives."""
    plugins = {}
    for node in _walk_directives(root):
        if node.name.lower() != "plugin":
            continue
        if len(node.args) != 1:
            continue  # reported with the other argument errors
        name = node.args[0]
        if name.lower() in plugins:
            continue
        try:
            plugin = discovery.instantiate(discovery.find_plugin(name, known))
        except discovery.PluginNotFound as e:
            errors.append(ConfigError(str(e), node.file, node.line))
            continue
        except Exception as e:
            errors.append(
                ConfigError(
                    f"plugin {name!r} could not be created: {type(e).__name__}: {e}",
                    node.file,
                    node.line,
                )
            )
            continue
        try:
            registry.add_all(plugin.directives, plugin.name)
        except ConfigError as e:
            errors.append(e.located(node.file, node.line))
            continue
        plugins[name.lower()] = plugin
    return plugins


def _section_scope(node, errors):
    kind, args = node.kind, node.args
    where = (node.file, node.line)
    name = SECTIONS.get(kind, kind)
    if kind == "server":
        if len(args) > 1:
            errors.append(ConfigError("<Server> takes at most one label", *where))
        return Scope(kind, args[0] if args else None, *where)
    if len(args) != 1:
        errors.append(ConfigError(f"<{name}> takes exactly one argument", *where))
        return Scope(kind, "/", *where)
    if kind == "location":
        if not args[0].startswith("/"):
            errors.append(
                ConfigError(f"<Location> path must start with '/', got {args[0]!r}", *where)
            )
        return Scope(kind, args[0], *where)
    if kind == "locationmatch":
        try:
            return Scope(kind, re.compile(args[0]), *where)
        except re.error as e:
            errors.append(ConfigError(f"<LocationMatch> bad regular expression: {e}", *where))
            return Scope(kind, re.compile("(?!)"), *where)
    return Scope(kind, args[0], *where)


def _fill_scope(scope, node, registry, plugins, known, errors):
    scope_kind = SCOPE_OF_SECTION[scope.kind]
    for child in node.children:
        if not isinstance(child, DirectiveNode) and child.kind not in SECTIONS:
            directive = registry.get(child.kind)
            if directive is None or directive.section is None:
                owner = _owner_among_discovered(child.kind, known) if directive is None else None
                errors.append(
                    ConfigError(
                        f"section <{child.kind}> belongs to plugin {owner!r}, which is not "
                        f"loaded (add: Plugin {owner})"
                        if owner is not None
                        else f"unknown section <{child.kind}> (known: "
                        + ", ".join(f"<{n}>" for n in SECTIONS.values())
                        + ", and those "
                        "of the plugins loaded)",
                        child.file,
                        child.line,
                    )
                )
                _fill_scope(
                    Scope("files", "", child.file, child.line),
                    child,
                    registry,
                    plugins,
                    known,
                    errors,
                )
                continue
            _add_occurrence(scope, scope_kind, directive, child, registry, plugins, errors)
            continue
        if not isinstance(child, DirectiveNode):
            if scope.kind not in ALLOWED_PARENTS[child.kind]:
                inside = (
                    "<" + SECTIONS[scope.kind] + ">"
                    if scope.kind in SECTIONS
                    else "the global scope"
                )
                errors.append(
                    ConfigError(
                        f"<{SECTIONS[child.kind]}> is not allowed inside {inside}",
                        child.file,
                        child.line,
                    )
                )
            sub = _section_scope(child, errors)
            scope.sections.append(sub)
            _fill_scope(sub, child, registry, plugins, known, errors)
            continue
        directive = registry.get(child.name)
        if directive is None:
            errors.append(
                ConfigError(_unknown_message(child.name, registry, known), child.file, child.line)
            )
            continue
        if directive.section is not None:
            errors.append(
                ConfigError(
                    f"{directive.name} is a section: write "
                    f"<{directive.name} ...> ... </{directive.name}>",
                    child.file,
                    child.line,
                )
            )
            continue
        _add_occurrence(scope, scope_kind, directive, child, registry, plugins, errors)


def _add_occurrence(scope, scope_kind, directive, child, registry, plugins, errors):
    """Check one directive line (or section directive) and store its value."""
    if scope_kind not in directive.scopes:
        allowed = ", ".join(
            _SCOPE_LABEL[s]
            for s in ("global", "server", "location", "files")
            if s in directive.scopes
        )
        errors.append(
            ConfigError(
                f"{directive.name} is not allowed in {_SCOPE_LABEL[scope_kind]} "
                f"(allowed in: {allowed})",
                child.file,
                child.line,
            )
        )
        return
    ctx = Context(child.file, child.line, _base_dir(child.file))
    try:
        if directive.section is not None:
            value = directive.parse_section(child.args, child.children, ctx)
        else:
            value = directive.parse(child.args, ctx)
    except ConfigError as e:
        errors.append(e.located(child.file, child.line))
        return
    if directive.into is not None:
        # Stored in another directive's list (Require and <RequireAll>).
        directive = registry.by_key[directive.into]
    key = directive.key
    if key in scope.values and not directive.repeat:
        first = scope.sources[key]
        if first[0] == child.file:
            # Twice in one file: a slip, not an override.
            errors.append(
                ConfigError(
                    f"{directive.name} is given twice in this scope (first at "
                    f"{first[0]}:{first[1]})",
                    child.file,
                    child.line,
                )
            )
            return
        # One of them from an Include (AccessLog off after Include
        # conf.d/*.conf): as Apache, the later line wins; --check says so.
        errors.append(
            ConfigWarning(
                f"{directive.name} is given again in this scope (first at "
                f"{first[0]}:{first[1]}): this line wins",
                child.file,
                child.line,
            )
        )
        scope.values.pop(key)
        scope.sources.pop(key)
    if directive.merge in LIST_MERGES:
        scope.values.setdefault(key, []).append(value)
        scope.sources.setdefault(key, (child.file, child.line))
    else:
        scope.values[key] = value  # a repeatable REPLACE: the last one wins
        scope.sources[key] = (child.file, child.line)
    if key == "plugin":
        plugin = plugins.get(value.lower())
        if plugin is not None:
            scope.plugins.append(plugin)


def _base_dir(file):
    if file.startswith("<"):
        return os.getcwd()
    return os.path.dirname(os.path.abspath(file))


def _unknown_message(name, registry, known):
    owner = _owner_among_discovered(name, known)
    if owner is not None:
        return (
            f"directive {name!r} belongs to plugin {owner!r}, which is not loaded "
            f"(add: Plugin {owner})"
        )
    message = f'unknown directive "{name}"'
    suggestion = registry.suggest(name)
    if suggestion is not None:
        message += f' (did you mean "{suggestion}"?)'
    return message


def _owner_among_discovered(name, known):
    key = name.lower()
    for _plugin_name, info in sorted(known.items()):
        try:
            cls = info.load()
        except Exception:
            continue
        for d in getattr(cls, "directives", ()):
            if d.key == key:
                return info.name
    return None
