"""What server_status and metrics report, counted once for both.

``COUNTERS`` is counted per connection and per response (by whichever of
the two plugins sees the event first: the other finds it counted); every
other figure is worked out when a page is asked for.  With ``Workers N``
each worker also writes its figures to the supervisor's folder once a
second (axkit.workers.figures) and a page adds up every worker's: the
answering worker's live, the others' as last written, the exited ones'
as they left.

Connections are classed as nginx's stub_status does: ``reading`` (a request
head or body coming in, or a fresh connection's first request),
``writing`` (a response being produced or sent), ``waiting`` (idle
keep-alive), plus ``closing``.  The Apache scoreboard letter of each:
R, W, K, C.
"""

import bisect
import os
import time

from axkit.auth.require import client_ip
from axkit.hooks import DECLINED
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
    """One of STATES for a connection handed to the connect hook.  A
    connection switched to another protocol (a WebSocket tunnel) is
    ``writing``: its response is in progress until the tunnel closes, as
    Apache's scoreboard shows a mod_proxy_wstunnel worker (W)."""
    if getattr(connection, "_switched", None) is not None:
        return "writing"
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


# Request-duration histogram bounds, seconds (Prometheus's default spread).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"))
COUNTED = "status.counted"  # request.notes: this response is counted


class Counters:
    """The process's counts (module-level: they outlive a config, so a
    reload keeps them, as Apache's scoreboard survives a graceful restart)."""

    def __init__(self):
        self.started = time.time()
        self.generation = 0  # configs started (1 + reloads)
        self.connections = set()  # open connections (seen by the connect hook)
        self.accepted = 0  # connections accepted since start
        self.requests = {}  # (code, method, server) -> responses
        self.bytes = {}  # server -> body bytes sent
        self.durations = {}  # server -> [responses per bucket..., +Inf, seconds]
        self.servers = frozenset()  # the config's <Server> names (metric labels)
        self._configs = set()  # ids of the configs counted in generation

    def config_started(self, config):
        """A plugin's startup: count each config once, whoever asks."""
        if id(config) not in self._configs:
            self._configs.add(id(config))
            self.generation += 1
        self.servers = frozenset(s.name for s in config.servers if s.name)

    def connect(self, connection):
        connections = self.connections
        if connection not in connections:
            connections.add(connection)
            self.accepted += 1

    def disconnect(self, connection):
        self.connections.discard(connection)

    def response_sent(self, request):
        """Count a response (a few additions and a bisect), once."""
        notes = request.notes
        if COUNTED in notes:
            return
        notes[COUNTED] = True
        server = request.server
        name = server.name if server is not None else None
        if name is None:
            name = "_default"
        elif name not in self.servers:
            name = "_other"
        method = request.method
        key = (request.status, method if method in METHODS else "_other", name)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        self.bytes[name] = self.bytes.get(name, 0) + request.bytes_sent
        took = request.reactor.seconds() - request.started
        counts = self.durations.get(name)
        if counts is None:
            counts = self.durations[name] = [0] * (len(BUCKETS) + 1) + [0.0]
        counts[bisect.bisect_left(BUCKETS, took)] += 1
        counts[-1] += took


COUNTERS = Counters()


def snapshot(counters=None):
    """The process's figures as plain data (what a worker writes for the
    others, and what a page adds up)."""
    c = COUNTERS if counters is None else counters
    states, board = connections(c.connections)
    times = os.times()
    return {
        "pid": os.getpid(),
        "slot": WORKER[0] if WORKER else 0,
        "time": time.time(),
        "started": c.started,
        "generation": c.generation,
        "accepted": c.accepted,
        "requests": [[code, method, server, n] for (code, method, server), n in c.requests.items()],
        "bytes": dict(c.bytes),
        "durations": {server: list(counts) for server, counts in c.durations.items()},
        "cpu": [times.user, times.system, times.children_user, times.children_system],
        "states": states,
        "scoreboard": board,
        **pools(),
    }


def figures(conf, now, counters=None):
    """Every figure of the status page and the metrics: this process's, or
    with Workers N the sum over every worker (``workers`` lists each one)."""
    own = snapshot(counters)
    parts, retired = [own], None
    if WORKER is not None:
        from axkit.workers.figures import read_others

        others, retired = read_others(WORKER[1], own["pid"])
        parts += others
    total = add_up(parts, retired)
    uptime = max(1, int(now - total["started"]))
    states = total["states"]
    open_ = sum(states.values())
    maximum = (getattr(conf, "max_connections", 0) or 0) * len(parts)
    accesses = sum(n for *_, n in total["requests"])
    sent = sum(total["bytes"].values())
    duration = sum(counts[-1] for counts in total["durations"].values())
    try:
        load = os.getloadavg()
    except OSError:  # pragma: no cover
        load = (0.0, 0.0, 0.0)
    return {
        **total,
        "now": now,
        "uptime": uptime,
        "load": load,
        "accesses": accesses,
        "bytes_total": sent,
        "duration_ms": int(duration * 1000),
        "busy": states["reading"] + states["writing"],
        "idle": max(0, maximum - open_) if maximum else 0,
        "conns_total": open_,
        "req_per_sec": accesses / uptime,
        "bytes_per_sec": sent / uptime,
        "bytes_per_req": sent / accesses if accesses else 0.0,
        "duration_per_req": duration * 1000 / accesses if accesses else 0.0,
        "processes": len(parts),
        "workers": sorted(parts, key=lambda p: (p["slot"], p["pid"])),
    }


POOLS = ("cgi_running", "cgi_waiting", "wsgi_busy", "wsgi_threads", "wsgi_queued")


def add_up(parts, retired=None):
    """One snapshot-shaped total of ``parts`` (live processes) and
    ``retired`` (what exited workers had counted: cumulative figures only)."""
    total = {
        "started": min(p["started"] for p in parts),
        "generation": max(p["generation"] for p in parts),
        "accepted": 0,
        "cpu": [0.0, 0.0, 0.0, 0.0],
        "states": dict.fromkeys(STATES, 0),
        "scoreboard": "",
        **dict.fromkeys(POOLS, 0),
    }
    requests, sent, durations = {}, {}, {}
    cumulative = list(parts) + ([retired] if retired else [])
    for part in cumulative:
        total["accepted"] += part["accepted"]
        total["cpu"] = [a + b for a, b in zip(total["cpu"], part["cpu"], strict=True)]
        for code, method, server, n in part["requests"]:
            key = (code, method, server)
            requests[key] = requests.get(key, 0) + n
        for server, n in part["bytes"].items():
            sent[server] = sent.get(server, 0) + n
        for server, counts in part["durations"].items():
            have = durations.get(server)
            durations[server] = (
                list(counts) if have is None else [a + b for a, b in zip(have, counts, strict=True)]
            )
    if retired:
        total["started"] = min(total["started"], retired["started"])
        total["generation"] = max(total["generation"], retired.get("generation", 0))
    for part in parts:
        for state, n in part["states"].items():
            total["states"][state] += n
        if len(total["scoreboard"]) < 1024:
            total["scoreboard"] += part["scoreboard"][: 1024 - len(total["scoreboard"])]
        for name in POOLS:
            total[name] += part[name]
    total["requests"] = [[*key, n] for key, n in requests.items()]
    total["bytes"] = sent
    total["durations"] = durations
    return total


# -- Workers N ------------------------------------------------------------------

WORKER = None  # (slot, folder) in a worker of Workers N (axkit.workers.figures)


# The plugins a status page (server_status, metrics) answers ahead of,
# whatever the order of the Plugin lines: every handler that could claim
# its URL.
class CountingPlugin:
    """What server_status and metrics share: they count into one Counters
    (each connection and response once, whichever plugins are loaded) and
    a few additions per response are all the counting costs."""

    def __init__(self, counters=None):
        self.counters = counters if counters is not None else COUNTERS

    def startup(self, config, reactor):
        self.counters.config_started(config)

    def hook_connect(self, connection, conf):
        self.counters.connect(connection)
        return DECLINED

    def hook_disconnect(self, connection, conf):
        self.counters.disconnect(connection)
        return DECLINED

    def hook_response_sent(self, request, conf):
        self.counters.response_sent(request)
        return DECLINED


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
