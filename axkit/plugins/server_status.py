"""server_status: Apache mod_status's page, and its ``?auto`` form, for axkit.

::

    Plugin server_status                 # at the top: counts every response
    <Location /server-status>
        ServerStatus On                  # this URL answers with the page
    </Location>

``/server-status?auto`` is the machine-readable form with Apache's keys
(``Total Accesses``, ``Total kBytes``, ``Uptime``, ``ReqPerSec``,
``BytesPerSec``, ``BusyWorkers``, ``IdleWorkers``, ``ConnsTotal``,
``Scoreboard``, ...), so collectd, Telegraf, Datadog or a Zabbix template
that reads Apache's status reads axkit's unchanged; axkit adds its own keys
after them (connections by state, CGI programs, WSGI threads).

The page is refused (403) to every client but loopback, unless the scope
has ``Require`` lines (Plugin access), which then decide alone.

Counting is axkit.status's, shared with Plugin metrics (a response is
counted once, whichever of the two sees it): a few additions per response
and a set insertion per connection; everything else is worked out when the
page is asked for.  Counters live in the process, not in a config, so a
SIGHUP reload keeps them.  With ``Workers N`` the figures are the sum over
every worker (``Processes: N``) and the page lists each worker's own.
"""

import html as _html
import time

from axkit import SERVER_SOFTWARE
from axkit.config import NOT_FILES, Directive, flag
from axkit.hooks import DECLINED, DONE
from axkit.status import ANSWERS_BEFORE, CountingPlugin, figures, page_refusal


class ServerStatus(CountingPlugin):
    """Counts responses and connections; answers ServerStatus On URLs."""

    name = "server_status"
    # Its page answers ahead of the handlers, whatever the Plugin lines' order.
    run_before = ANSWERS_BEFORE
    directives = [
        Directive(
            "ServerStatus",
            flag,
            scopes=NOT_FILES,
            default=False,
            doc="On: URLs of this scope answer with the server's status page "
            "(?auto: Apache's machine-readable form). Loopback clients only, "
            "unless Require lines (Plugin access) in the scope say who.",
        ),
    ]

    # -- the page -----------------------------------------------------------

    def hook_response(self, request, conf):
        if not conf.server_status:
            return DECLINED
        refused = page_refusal(request, conf)
        if refused is not None:
            return refused
        found = figures(conf, time.time(), self.counters)
        host = request.host or getattr(request.server, "name", None) or "localhost"
        if request.query is not None and "auto" in request.query.split("&"):
            body, kind = auto_text(host, found), "text/plain; charset=ISO-8859-1"
        else:
            body, kind = html_page(host, found), "text/html; charset=utf-8"
        request.send(200, body, kind)
        return DONE


# -- rendering ----------------------------------------------------------------


def _when(seconds):
    return time.strftime("%A, %d-%b-%Y %H:%M:%S UTC", time.gmtime(seconds))


def _span(seconds):
    """Apache's "1 day 2 hours 3 minutes 4 seconds"."""
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        n, seconds = divmod(seconds, size)
        if n or (unit == "second" and not parts):
            parts.append(f"{n} {unit}{'s' if n != 1 else ''}")
    return " ".join(parts)


def _num(x):
    """3000, 12.5, 0.0213: as a person reads it (no exponents)."""
    return f"{x:.0f}" if x >= 100 else f"{x:.3g}"


def auto_lines(host, f):
    """``?auto``: Apache 2.4's keys in Apache's order, then axkit's own."""
    user, system, child_user, child_system = f["cpu"]
    states = f["states"]
    return [
        host,
        f"ServerVersion: {SERVER_SOFTWARE}",
        "ServerMPM: event",
        f"CurrentTime: {_when(f['now'])}",
        f"RestartTime: {_when(f['started'])}",
        f"ParentServerConfigGeneration: {f['generation']}",
        "ParentServerMPMGeneration: 0",
        f"ServerUptimeSeconds: {f['uptime']}",
        f"ServerUptime: {_span(f['uptime'])}",
        f"Load1: {f['load'][0]:.2f}",
        f"Load5: {f['load'][1]:.2f}",
        f"Load15: {f['load'][2]:.2f}",
        f"Total Accesses: {f['accesses']}",
        f"Total kBytes: {f['bytes_total'] // 1024}",
        f"Total Duration: {f['duration_ms']}",
        f"CPUUser: {user:g}",
        f"CPUSystem: {system:g}",
        f"CPUChildrenUser: {child_user:g}",
        f"CPUChildrenSystem: {child_system:g}",
        f"CPULoad: {100 * sum(f['cpu']) / f['uptime']:g}",
        f"Uptime: {f['uptime']}",
        f"ReqPerSec: {f['req_per_sec']:g}",
        f"BytesPerSec: {f['bytes_per_sec']:g}",
        f"BytesPerReq: {f['bytes_per_req']:g}",
        f"DurationPerReq: {f['duration_per_req']:g}",
        f"BusyWorkers: {f['busy']}",
        "GracefulWorkers: 0",
        f"IdleWorkers: {f['idle']}",
        f"Processes: {f['processes']}",
        "Stopping: 0",
        f"ConnsTotal: {f['conns_total']}",
        f"ConnsAsyncWriting: {states['writing']}",
        f"ConnsAsyncKeepAlive: {states['waiting']}",
        f"ConnsAsyncClosing: {states['closing']}",
        f"Scoreboard: {f['scoreboard'] or '_'}",
        f"ConnsReading: {states['reading']}",
        f"ConnsAccepted: {f['accepted']}",
        f"CGIRunning: {f['cgi_running']}",
        f"CGIWaiting: {f['cgi_waiting']}",
        f"WSGIThreadsBusy: {f['wsgi_busy']}",
        f"WSGIThreads: {f['wsgi_threads']}",
        f"WSGIQueued: {f['wsgi_queued']}",
    ]


def auto_text(host, f):
    return "\n".join(auto_lines(host, f)) + "\n"


def html_page(host, f):
    """The human page: mod_status's summary, then the same figures as a table."""
    h = _html.escape
    states = f["states"]
    rows = "".join(
        f"<tr><th>{h(line.split(': ', 1)[0])}</th><td>{h(line.split(': ', 1)[1])}</td></tr>\n"
        for line in auto_lines(host, f)[1:]
    )
    return (
        "<!DOCTYPE html>\n<html><head><title>Server Status</title></head><body>\n"
        f"<h1>Server Status for {h(host)}</h1>\n<dl>"
        f"<dt>Server Version: {h(SERVER_SOFTWARE)}</dt>\n"
        f"<dt>Current Time: {_when(f['now'])}</dt>\n"
        f"<dt>Restart Time: {_when(f['started'])}</dt>\n"
        f"<dt>Server uptime: {_span(f['uptime'])}</dt>\n"
        f"<dt>Total accesses: {f['accesses']} - Total Traffic: {f['bytes_total'] // 1024} kB</dt>\n"
        f"<dt>{_num(f['req_per_sec'])} requests/sec - {_num(f['bytes_per_sec'])} B/second - "
        f"{_num(f['bytes_per_req'])} B/request</dt>\n"
        f"<dt>{f['busy']} requests currently being processed, {f['idle']} idle workers</dt>\n"
        f"<dt>Connections: {f['conns_total']} open ({states['reading']} reading, "
        f"{states['writing']} writing, {states['waiting']} keep-alive, "
        f"{states['closing']} closing)</dt>\n"
        f"<dt>CGI programs running: {f['cgi_running']} ({f['cgi_waiting']} waiting)</dt>\n"
        f"<dt>WSGI threads busy: {f['wsgi_busy']} of {f['wsgi_threads']} "
        f"({f['wsgi_queued']} queued)</dt>\n</dl>\n"
        f"<pre>{h(f['scoreboard'])}</pre>\n"
        '<p>Scoreboard Key: "<b><code>R</code></b>" Reading Request, '
        '"<b><code>W</code></b>" Sending Reply, "<b><code>K</code></b>" Keepalive (read), '
        '"<b><code>C</code></b>" Closing connection</p>\n'
        f"{worker_table(f)}"
        f"<table>\n{rows}</table>\n</body></html>\n"
    )


def worker_table(f):
    """Apache's per-worker rows: one per process (with Workers N)."""
    if f["processes"] < 2:
        return ""
    rows = []
    for w in f["workers"]:
        states = w["states"]
        accesses = sum(n for *_, n in w["requests"])
        rows.append(
            f"<tr><td>{w['slot']}</td><td>{w['pid']}</td><td>{accesses}</td>"
            f"<td>{sum(w['bytes'].values()) // 1024}</td><td>{sum(states.values())}</td>"
            f"<td>{states['reading']}</td><td>{states['writing']}</td>"
            f"<td>{states['waiting']}</td><td>{states['closing']}</td>"
            f"<td>{w['cgi_running']}</td><td>{w['wsgi_busy']}</td><td>{w['wsgi_queued']}</td>"
            f"<td>{max(0.0, f['now'] - w['time']):.1f}</td></tr>\n"
        )
    return (
        "<h2>Workers</h2>\n<table>\n<tr><th>Slot</th><th>PID</th><th>Acc</th><th>kB</th>"
        "<th>Conns</th><th>R</th><th>W</th><th>K</th><th>C</th><th>CGI</th>"
        "<th>Threads busy</th><th>Queued</th><th>Figures age (s)</th></tr>\n"
        + "".join(rows)
        + "</table>\n"
    )
