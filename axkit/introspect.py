"""What --list-plugins and --dump-config print.

Both return text, so tests (and other tools) can call them directly.
"""

import inspect
import re

from axkit.config.directives import FILES, GLOBAL, LOCATION, SERVER
from axkit.config.options import effective_options
from axkit.hooks import HOOKS

_SCOPE_NAMES = (
    (GLOBAL, "global"),
    (SERVER, "<Server>"),
    (LOCATION, "<Location>"),
    (FILES, "<Files>"),
)


def plugin_hooks(cls):
    """The hook names a plugin class implements, in lifecycle order."""
    return [h for h in HOOKS if callable(getattr(cls, "hook_" + h, None))]


def first_line(text):
    text = inspect.cleandoc(text or "")
    return text.splitlines()[0] if text else ""


def describe_directive(d, indent="    "):
    scopes = ", ".join(label for scope, label in _SCOPE_NAMES if scope in d.scopes)
    facts = [f"scopes: {scopes}", f"merge: {d.merge}"]
    if d.repeat:
        facts.append("repeatable")
    default = format_value(d.default)
    if default != "-":
        facts.append(f"default: {default}")
    lines = [f"{indent}{d.usage}", f"{indent}    ({'; '.join(facts)})"]
    if d.doc:
        lines.append(f"{indent}    {d.doc}")
    return lines


def list_plugins_text(known=None):
    """Every discovered plugin: name, distribution, description, hooks,
    directives with their docs; then the dropins that failed to import."""
    from axkit import discovery

    if known is None:
        known = discovery.discover()
    from axkit.config.core import CORE_DIRECTIVES
    from axkit.config.loader import extra_core_directives

    out = ["core (built into axkit; always available)", "    directives:"]
    for d in CORE_DIRECTIVES + list(extra_core_directives()):
        out.extend(describe_directive(d, "      "))
    out.append("")
    for key in sorted(known):
        info = known[key]
        out.append(f"{info.name}")
        module = info.module.rpartition(".")[0]
        try:
            cls = info.load()
        except Exception as e:
            out.append(f"    BROKEN: {info.module} failed to import: {type(e).__name__}: {e}")
            out.append("")
            continue
        description = info.description or first_line(getattr(cls, "__doc__", ""))
        if description:
            out.append(f"    {description}")
        dist = discovery.distribution_of(module)
        if dist is None:
            import importlib

            try:
                where = importlib.import_module(module).__file__
            except Exception:
                where = module
            dist = f"not from an installed distribution ({where})"
        out.append(f"    distribution: {dist}")
        out.append(f"    class: {info.module}")
        hooks = plugin_hooks(cls)
        out.append(f"    hooks: {', '.join(hooks) if hooks else 'none'}")
        directives = list(getattr(cls, "directives", ()) or ())
        if directives:
            out.append("    directives:")
            for d in directives:
                out.extend(describe_directive(d, "      "))
        else:
            out.append("    directives: none")
        out.append("")
    broken = discovery.broken_dropins()
    if broken:
        out.append("Broken dropins (failed to import; their plugins are missing above):")
        for b in broken:
            out.append(f"  {b.module} ({b.file})")
            out.append(f"    BROKEN: {b.error}")
        out.append("")
    return "\n".join(out)


def _spelled(value):
    """Whether ``value`` spells itself (a class with its own ``__str__``:
    one config line's value, such as a Header operation or an Alias rule)."""
    cls = type(value)
    if value is None or cls in (str, int, float, bool) or isinstance(value, (dict, list)):
        return False
    return cls.__str__ is not object.__str__ and not isinstance(value, re.Pattern)


def format_value(value, limit=8):
    """A merged value written back the way a config file says it."""
    if value is None:
        return "-"
    if value is True:
        return "On"
    if value is False:
        return "Off"
    if isinstance(value, re.Pattern):
        return value.pattern
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        if not value:
            return "-"
        items = [f"{k}={format_value(v)}" for k, v in list(value.items())[:limit]]
        more = f", ... ({len(value)} entries)" if len(value) > limit else ""
        return "{" + ", ".join(items) + more + "}"
    if isinstance(value, tuple) and _spelled(value):
        return str(value)
    if isinstance(value, (tuple, list)):
        if not value:
            return "-"
        if any(_spelled(v) for v in value):
            # One config line each: "set A 1; always set B 2".
            return "; ".join(format_value(v) for v in value)
        return " ".join(_word(format_value(v)) for v in value)
    return str(value)


def _word(text):
    return f'"{text}"' if (" " in text and not text.startswith("{")) or not text else text


def dump_config_text(config, host=None, path="/"):
    """The effective values and plugin chains for a request to ``host`` and ``path``."""
    from axkit.http.request import BadTarget, normalize_path
    from axkit.vhosts import VirtualHosts, normalise_host

    raw = path or "/"
    try:
        norm = normalize_path(raw.split("?", 1)[0])
    except BadTarget as e:
        return f"--path {raw!r}: {e}\n"
    vhosts = VirtualHosts(config.servers)
    if host:
        wanted = normalise_host(host)
        server = vhosts.exact.get(wanted)
        if server is None:
            for suffix, candidate in vhosts.wildcards:
                if wanted.endswith(suffix):
                    server = candidate
                    break
        chosen_by = "matches" if server is not None else "unknown host: default server"
        server = server or vhosts.default
    else:
        server, chosen_by = vhosts.default, "no --host: default server"
    resolved = server.resolve(norm)
    filename = norm.rpartition("/")[2]
    resolved = server.resolve_file(resolved, filename)
    listens = [ep for ep, servers in config.listeners.items() if server in servers]
    where = f"at {server.scope.file}:{server.scope.line}" if server.scope.kind == "server" else ""
    out = [
        f"# axkit --dump-config for {config.source}",
        f"request: {host or '(any host)'} {norm}",
        f"server: {server.label()!r} ({chosen_by}) {where}".rstrip(),
        f"listeners: {', '.join(listens) or '-'}",
        "sections applied, in order:",
    ]
    for scope in resolved.scopes:
        out.append(f"  {scope.describe()}")
    if filename and any(s.kind == "files" for s in resolved.scopes):
        out.append(f"  (<Files> matched on the file name {filename!r})")
    out.append(
        "plugins (innermost scope first): "
        + (", ".join(p.name for p in resolved.plugins) or "none")
    )
    out.append("hook chains:")
    for hook in HOOKS:
        chain = resolved.chains[hook]
        if chain:
            out.append(f"  {hook}: {' -> '.join(p.name for p, _ in chain)}")
    out.append("values:")
    directives = sorted(config.registry, key=lambda d: d.name.lower())
    width = max(len(d.name) for d in directives)
    for d in directives:
        if d.key == "plugin":
            continue
        value = resolved.values.get(d.attr, d.default)
        if d.key == "options":
            # The options in force (FollowSymLinks by default), not the lines.
            value = " ".join(sorted(effective_options(tuple(value or ())))) or "None"
        sources = [
            f"{s.sources[d.key][0]}:{s.sources[d.key][1]}"
            for s in resolved.scopes
            if d.key in s.values
        ]
        if d.merge == "replace":
            sources = sources[-1:]  # the innermost one is the one in effect
        origin = ", ".join(sources) if sources else "default"
        out.append(f"  {d.name:<{width}}  {format_value(value)}   # {origin} [{d.owner}]")
    return "\n".join(out) + "\n"
