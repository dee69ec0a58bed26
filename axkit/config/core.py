"""The directives the core itself declares (plugins declare theirs the same way)."""

import os

from .directives import (
    ANY,
    APPEND,
    FILES,
    GLOBAL,
    LOCATION,
    NOT_FILES,
    SERVER,
    SERVER_ONLY,
    Directive,
    many,
)
from .errors import ConfigError
from .options import check_line, option_word
from .types import endpoint, flag, one_of, path, string


def handler_name(word, ctx):
    """A handler name for SetHandler; ``None`` or ``default-handler`` (the
    file handlers again, in an inner scope) is ''."""
    if word.lower() in ("none", "default-handler"):
        return ""
    if not word or any(c.isspace() or c in "\x00/" for c in word):
        raise ConfigError(f"expected a handler name like cgi-script, got {word!r}")
    return word


handler_name.label = "NAME"  # type: ignore[attr-defined]

MAX_WORKERS = 1024


def worker_count(word, ctx):
    """``Workers``: a number of processes, or ``auto`` for one per usable
    core (the CPUs this process may run on, os.sched_getaffinity)."""
    if word.lower() == "auto":
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover (not Linux)
            return max(1, os.cpu_count() or 1)
    try:
        n = int(word, 10)
    except ValueError:
        raise ConfigError(f"expected a number of worker processes or auto, got {word!r}")
    if not 1 <= n <= MAX_WORKERS:
        raise ConfigError(f"Workers must be from 1 to {MAX_WORKERS} (or auto), got {n}")
    return n


worker_count.label = "N|auto"  # type: ignore[attr-defined]

CORE_DIRECTIVES = [
    Directive(
        "Listen",
        endpoint,
        scopes=SERVER_ONLY,
        merge=APPEND,
        doc="Where to accept connections: a Twisted endpoint string "
        "(tcp:8080:interface=127.0.0.1, ssl:443:..., unix:/run/axkit.sock, "
        "systemd:domain=INET:index=0); a bare number means tcp:N. May repeat.",
    ),
    Directive(
        "ServerName",
        string,
        scopes={SERVER, GLOBAL},
        doc="The host name this server answers to (name-based virtual hosting).",
    ),
    Directive(
        "ServerAlias",
        many(string),
        scopes={SERVER},
        merge=APPEND,
        doc="More host names for this server; *.example.com wildcards allowed.",
    ),
    Directive(
        "DocumentRoot",
        path,
        scopes=NOT_FILES,
        default=".",
        doc="The folder URLs are mapped into; relative to the config file.",
    ),
    Directive(
        "Plugin",
        string,
        scopes=ANY,
        merge=APPEND,
        doc="Load a plugin into this scope: a name from --list-plugins, or "
        "a dotted path package.module.Class.",
    ),
    Directive(
        "Options",
        many(option_word),
        scopes=ANY,
        merge=APPEND,
        check=check_line,
        doc="Apache's per-scope switches (ExecCGI, Indexes, FollowSymLinks, ...; "
        "FollowSymLinks alone is on by default): "
        "'Options A B' sets them, 'Options +A -B' adjusts the outer scope's. "
        "Plugins read them with axkit.config.options.has_option(conf, name).",
    ),
    Directive(
        "SetHandler",
        handler_name,
        scopes={LOCATION, FILES},
        default=None,
        doc="The handler that answers every request of this <Location>/<Files> "
        "(Apache's): request.handler is set to NAME when the scope applies, so "
        "the file plugins (serve_file, serve_dir, compress, expires) leave the "
        "request to the plugin answering to NAME, whatever the order of the Plugin "
        "lines: cgi-script (cgi), or a plugin's own name. None: the file "
        "handlers again.",
    ),
    Directive(
        "LogLevel",
        one_of("debug", "info", "warn", "error", "crit"),
        scopes=ANY,
        default="info",
        doc="Least severe log level written for events of this scope: debug, info, "
        "warn, error or crit (read by the logger plugins, e.g. error_log).",
    ),
    Directive(
        "Workers",
        worker_count,
        scopes={GLOBAL},
        default=1,
        doc="How many processes serve the listeners: a number, or auto for one "
        "per usable core. 1 (the default) is a single process; more starts a "
        "supervisor that binds the listeners and runs that many workers, "
        "replacing one that dies, replacing them one by one on SIGHUP.",
    ),
    Directive(
        "TraceHooks",
        flag,
        scopes=ANY,
        default=False,
        doc="On: every request in this scope writes to the error log, for each "
        "hook, which plugin ran, what it returned and how long it took.",
    ),
]
