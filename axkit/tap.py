"""`twistd axkit`: command-line options and the service they build."""

import os
import sys

from twisted.python import usage

import axkit
import axkit.systemd  # noqa: F401 -- keeps socket activation's variables (see there)
from axkit.config.errors import ConfigErrors


def default_config_text(cwd=None):
    """The built-in config: serve ``cwd`` on 127.0.0.1:8080."""
    defaults = os.path.dirname(os.path.abspath(__import__("axkit.defaults").defaults.__file__))
    with open(os.path.join(defaults, "default.conf"), encoding="utf-8") as f:
        text = f.read()
    return text.replace("{cwd}", cwd or os.getcwd()).replace("{defaults}", defaults)


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = (
        "Run the axkit HTTP server.  With no --config it serves the current "
        "directory on http://127.0.0.1:8080/ (built-in config)."
    )
    optParameters = [
        ["config", "c", None, "The config file (default: the built-in config)."],
        ["host", None, None, "With --dump-config: the Host of the request to show."],
        ["path", None, "/", "With --dump-config: the URL path of the request to show."],
    ]
    optFlags = [
        [
            "check",
            None,
            "Load and check the config, print any errors as "
            "file:line: message, and exit (0 if it loads).",
        ],
        [
            "list-plugins",
            None,
            "List every discovered plugin (distribution, hooks, "
            "directives with their docs; broken dropins) and exit.",
        ],
        [
            "dump-config",
            None,
            "Print the effective merged values and plugin chains for "
            "one request (--host, --path) and exit.",
        ],
        [
            "reload",
            None,
            "Development: restart when a Python file of a mounted app "
            "changes, keeping the listening sockets.",
        ],
    ]

    def opt_version(self):
        print(f"axkit {axkit.__version__}")
        sys.exit(0)


def load_config(options):
    from axkit.config.loader import load_file, load_string

    path = options["config"]
    if path is None:
        return load_string(default_config_text(), "<built-in config>"), None
    return load_file(path), os.path.abspath(path)


def makeService(options):
    # Before anything imports twisted.internet.reactor (see axkit/reactor.py).
    from axkit.reactor import install_default

    install_default()
    if options["list-plugins"]:
        from axkit.introspect import list_plugins_text

        sys.stdout.write(list_plugins_text())
        sys.stdout.flush()
        sys.exit(0)
    try:
        config, path = load_config(options)
    except ConfigErrors as e:
        for error in e.errors:
            sys.stderr.write(f"{error}\n")
        sys.stderr.write(
            f"axkit: config has {len(e.errors)} error"
            f"{'s' if len(e.errors) != 1 else ''}; not starting\n"
        )
        sys.exit(1)
    for warning in config.warnings:
        sys.stderr.write(f"{warning}\n")
    if options["check"]:
        sys.stdout.write(f"{config.source}: config OK\n")
        sys.exit(0)
    if options["dump-config"]:
        from axkit.introspect import dump_config_text

        sys.stdout.write(dump_config_text(config, options["host"], options["path"]))
        sys.stdout.flush()
        sys.exit(0)
    daemon_log = daemon_log_path(options)
    if daemon_log is not None:
        send_std_streams_to(daemon_log)
    service = make_server(config, path, options)
    service.drop_to_uid = warn_if_serving_as_root(options)
    take_drop = getattr(service, "take_privilege_drop", None)
    if take_drop is not None:  # Workers N: each worker drops, not twistd
        take_drop(options)
    from axkit.systemd import StatusReporter, Watchdog, notifying_reload

    # Under systemd: RELOADING=1/READY=1 around SIGHUP, WATCHDOG=1 pings,
    # STATUS= with live figures.
    service.reload = notifying_reload(service.reload)
    Watchdog().setServiceParent(service)
    figures = getattr(service, "serving_figures", None)
    if figures is not None:
        StatusReporter(figures).setServiceParent(service)
    return service


def warn_if_serving_as_root(options, euid=None):
    """The uid twistd will drop to (``-u``), or None; started as root
    without one, a warning line says the server will serve as root."""
    parent = getattr(options, "parent", None)
    try:
        uid = parent["uid"] if parent is not None else None
    except (KeyError, TypeError):
        uid = None
    euid = os.geteuid() if euid is None else euid
    if euid == 0 and uid is None:
        sys.stderr.write(
            "axkit: warning: serving as root (no twistd -u/-g): a flaw in a plugin, "
            "CGI program or application would have root's rights; start it as "
            "`twistd -u www-data -g www-data axkit ...`, or with User= in the "
            "systemd unit (or `-u root` to say you mean it)\n"
        )
    return uid


def make_server(config, path, options):
    """The service: one process (AxKitService), or with ``Workers N`` (N > 1)
    a supervisor of N worker processes (axkit.workers)."""
    if config.global_resolved.conf.workers > 1 and not options["reload"]:
        from axkit.workers.supervisor import Supervisor

        return Supervisor(config, path)
    from axkit.server import AxKitService

    service = AxKitService(config, path)
    service.dev_reload = bool(options["reload"])
    return service


def daemon_log_path(options):
    """Where a daemonised twistd (no ``-n``) should write what goes to
    stdout and stderr: its ``--logfile`` (default ``twistd.log`` in
    ``--rundir``, the current folder).  None in the foreground, or with
    ``--logfile -`` or ``--syslog``."""
    parent = getattr(options, "parent", None)
    if parent is None:
        return None
    try:
        if parent["nodaemon"] or parent.get("syslog"):
            return None
        logfile = parent["logfile"] or "twistd.log"
        rundir = parent.get("rundir") or "."
    except (KeyError, TypeError):
        return None
    if logfile == "-":
        return None
    return os.path.join(os.path.abspath(rundir), logfile)


def send_std_streams_to(path):
    """A daemon's stdout and stderr become /dev/null: make the log
    destinations "stdout" and "stderr" (the defaults of AccessLog and
    ErrorLog, and where events go with no logger loaded) this file instead.
    Opened now, before twistd drops privileges."""
    from axkit import log

    stream = open(path, "a", encoding="utf-8", errors="backslashreplace")
    sys.__stdout__ = sys.__stderr__ = stream
    for where in ("stdout", "stderr"):
        f = log._files.get(where)
        if f is not None:
            f.stream = stream
