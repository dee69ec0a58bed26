"""What server_status and metrics report: the process's figures, worked out
when asked (never per request).

Connections are classed as nginx's stub_status does: ``reading`` (a request
head or body coming in, or a fresh connection's first request),
``writing`` (a response being produced or sent), ``waiting`` (idle
keep-alive), plus ``closing``.  The Apache scoreboard letter of each:
R, W, K, C.
"""

import os

from axkit.auth.require import client_ip
from axkit.http.states import BODY, HEADERS, IDLE, RESPONDING


def may_see(request, conf):
    """Whether ``request`` may see a status or metrics page: its scope's
    ``Require`` lines (Plugin access, already applied) if it has any, else
    loopback clients only."""
    if getattr(conf, "require", None):
        return True
    ip = client_ip(request)
    return ip is not None and ip.is_loopback


def page_refusal(request, conf):
    """The status to answer instead of a status page (403 for a client that
    may not see it, 405 for a method other than GET/HEAD), or None -- then
    the page is sent, not to be cached."""
    if not may_see(request, conf):
        return 403
    if request.method not in ("GET", "HEAD"):
        request.response_headers.set("Allow", "GET, HEAD")
        return 405
    request.response_headers.set("Cache-Control", "no-store")
    return None


STATES = ("reading", "writing", "waiting", "closing")
LETTERS = {"reading": "R", "writing": "W", "waiting": "K", "closing": "C"}


def connection_state(connection):
    """One of STATES for a connection handed to the connect hook."""
    if getattr(connection, "closing", False):
        return "closing"
    state = getattr(connection, "state", None)
    if state == RESPONDING:
        return "writing"
    if state in (HEADERS, BODY):
        return "reading"
    if state == IDLE and getattr(connection, "requests", 0):
        return "waiting"
    return "reading"  # accepted, its first request not begun


def connections(open_connections):
    """``(counts by state, scoreboard string)`` of the open connections."""
    counts = dict.fromkeys(STATES, 0)
    board = []
    for connection in list(open_connections):
        state = connection_state(connection)
        counts[state] += 1
        if len(board) < 1024:
            board.append(LETTERS[state])
    return counts, "".join(board)


def pools():
    """CGI programs and WSGI threads, as their packages count them."""
    out = {"cgi_running": 0, "cgi_waiting": 0, "wsgi_busy": 0, "wsgi_threads": 0, "wsgi_queued": 0}
    try:
        from axkit.cgi.slots import SLOTS

        out["cgi_running"] = SLOTS.used
        out["cgi_waiting"] = len(SLOTS.waiting)
    except ImportError:  # pragma: no cover
        pass
    try:
        from axkit.wsgi.pool import current

        pool = current()
    except ImportError:  # pragma: no cover
        pool = None
    if pool is not None:
        out["wsgi_busy"] = pool.busy
        out["wsgi_threads"] = pool.size
        out["wsgi_queued"] = pool.depth
    return out


def figures(stats, conf, now):
    """Every figure of the status page, from the counters ``stats``
    (axkit.plugins.server_status.Counters) and the global ``conf``."""
    uptime = max(1, int(now - stats.started))
    counts, board = connections(stats.connections)
    open_ = sum(counts.values())
    busy = counts["reading"] + counts["writing"]
    maximum = getattr(conf, "max_connections", 0) or 0
    times = os.times()
    try:
        load = os.getloadavg()
    except OSError:  # pragma: no cover
        load = (0.0, 0.0, 0.0)
    accesses = stats.accesses
    return {
        "now": now,
        "started": stats.started,
        "generation": stats.generation,
        "uptime": uptime,
        "load": load,
        "accesses": accesses,
        "bytes": stats.bytes,
        "duration_ms": int(stats.duration * 1000),
        "cpu": (times.user, times.system, times.children_user, times.children_system),
        "busy": busy,
        "idle": max(0, maximum - open_) if maximum else 0,
        "conns_total": open_,
        "accepted": stats.conns_total,
        "states": counts,
        "scoreboard": board,
        "req_per_sec": accesses / uptime,
        "bytes_per_sec": stats.bytes / uptime,
        "bytes_per_req": stats.bytes / accesses if accesses else 0.0,
        "duration_per_req": stats.duration * 1000 / accesses if accesses else 0.0,
        **pools(),
    }


# The plugins a status page (server_status, metrics) answers ahead of,
# whatever the order of the Plugin lines: every handler that could claim
# its URL.
ANSWERS_BEFORE = (
    "proxy",
    "wsgi",
    "asgi",
    "cgi",
    "alias",
    "xslt",
    "uri_to_file",
    "mime_map",
    "serve_file",
    "serve_dir",
)


# -- Workers N: each worker's figures in the supervisor's folder --------------

WORKER = None  # (slot, folder) in a worker of Workers N


def become_worker(slot, folder, reactor):
    global WORKER
    WORKER = (slot, folder)


def retire_worker(folder, pid):
    pass
