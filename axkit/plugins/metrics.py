"""metrics: Prometheus metrics of the server, in the text exposition format.

::

    Plugin metrics                       # at the top: counts every response
    <Location /metrics>
        Metrics On                       # this URL answers with the metrics
    </Location>

Per response, ``response_sent`` adds to plain dicts (a few additions and a
bisect: no lock, no prometheus_client object per request); a collector
turns them into metric families when Prometheus scrapes, with
``prometheus_client`` writing the exposition format (and its process
metrics: CPU, memory, open files).  Labels a client could inflate are
bounded: ``method`` is one of the standard methods or ``_other``, and
``server`` one of the config's <Server> names (``_default`` for the
unnamed one, ``_other`` for anything else) -- never the Host header.

The page is refused (403) to every client but loopback, unless the scope
has ``Require`` lines (Plugin access).  Counters are process-wide, so a
SIGHUP reload keeps them; ``axkit_config_reloads_total`` counts reloads.
"""

import bisect

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.process_collector import ProcessCollector

from axkit.config import NOT_FILES, Directive, flag
from axkit.hooks import DECLINED, DONE
from axkit.status import ANSWERS_BEFORE, STATES, connections, page_refusal, pools

METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"))
# The text format every Prometheus reads (prometheus_client's newest default,
# 1.0.0, is refused by some scrapers); our names are plain ASCII either way.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Figures:
    """What is counted per response and per connection (process-wide)."""

    def __init__(self):
        self.requests = {}  # (code, method, server) -> count
        self.bytes = {}  # server -> body bytes sent
        self.durations = {}  # server -> [count per bucket..., +Inf count, sum]
        self.connections = set()
        self.accepted = 0
        self.generations = 0
        self.servers = frozenset()
        self._registry = None

    def registry(self):
        """The CollectorRegistry that renders these figures (made once)."""
        if self._registry is None:
            registry = CollectorRegistry(auto_describe=False)
            registry.register(Collector(self))
            ProcessCollector(registry=registry)
            self._registry = registry
        return self._registry


class Collector:
    """Turns Figures into Prometheus metric families at scrape time."""

    def __init__(self, figures):
        self.figures = figures

    def collect(self):
        f = self.figures
        requests = CounterMetricFamily(
            "axkit_http_requests", "Responses sent.", labels=["code", "method", "server"]
        )
        for (code, method, server), n in sorted(f.requests.items()):
            requests.add_metric([str(code), method, server], n)
        yield requests
        sent = CounterMetricFamily(
            "axkit_http_response_bytes", "Response body bytes sent.", labels=["server"]
        )
        for server, n in sorted(f.bytes.items()):
            sent.add_metric([server], n)
        yield sent
        durations = HistogramMetricFamily(
            "axkit_http_request_duration_seconds",
            "From the request's head to its response's end.",
            labels=["server"],
        )
        for server, counts in sorted(f.durations.items()):
            cumulative, buckets = 0, []
            for bound, n in zip(BUCKETS + (float("inf"),), counts[:-1], strict=True):
                cumulative += n
                buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
            durations.add_metric([server], buckets, sum_value=counts[-1])
        yield durations
        counts, _ = connections(f.connections)
        yield GaugeMetricFamily(
            "axkit_http_requests_in_flight", "Requests being answered.", value=counts["writing"]
        )
        yield GaugeMetricFamily(
            "axkit_connections_active", "Open client connections.", value=sum(counts.values())
        )
        for state in STATES:
            yield GaugeMetricFamily(
                f"axkit_connections_{state}", f"Open connections {state}.", value=counts[state]
            )
        yield CounterMetricFamily(
            "axkit_connections_accepted", "Connections accepted.", value=f.accepted
        )
        yield CounterMetricFamily(
            "axkit_config_reloads",
            "Configs loaded after the first.",
            value=max(0, f.generations - 1),
        )
        found = pools()
        for name, doc in (
            ("cgi_running", "CGI programs running."),
            ("cgi_waiting", "Requests waiting for a CGIMaxProcesses slot."),
            ("wsgi_busy", "Application threads running a request."),
            ("wsgi_threads", "Application threads (WSGIThreads)."),
            ("wsgi_queued", "Requests waiting for an application thread."),
        ):
            yield GaugeMetricFamily(f"axkit_{name}", doc, value=found[name])


FIGURES = Figures()


class Metrics:
    """Counts responses and connections; answers Metrics On URLs."""

    name = "metrics"
    # Its page answers ahead of the handlers, whatever the Plugin lines' order.
    run_before = ANSWERS_BEFORE
    directives = [
        Directive(
            "Metrics",
            flag,
            scopes=NOT_FILES,
            default=False,
            doc="On: URLs of this scope answer with Prometheus metrics (text "
            "format). Loopback clients only, unless Require lines (Plugin "
            "access) in the scope say who.",
        ),
    ]

    def __init__(self):
        self.figures = FIGURES

    def startup(self, config, reactor):
        f = self.figures
        f.generations += 1
        f.servers = frozenset(s.name for s in config.servers if s.name)

    def hook_connect(self, connection, conf):
        f = self.figures
        f.connections.add(connection)
        f.accepted += 1
        return DECLINED

    def hook_disconnect(self, connection, conf):
        self.figures.connections.discard(connection)
        return DECLINED

    def hook_response_sent(self, request, conf):
        f = self.figures
        server = request.server
        name = server.name if server is not None else None
        if name is None:
            name = "_default"
        elif name not in f.servers:
            name = "_other"
        method = request.method
        key = (request.status, method if method in METHODS else "_other", name)
        requests = f.requests
        requests[key] = requests.get(key, 0) + 1
        f.bytes[name] = f.bytes.get(name, 0) + request.bytes_sent
        took = request.reactor.seconds() - request.started
        counts = f.durations.get(name)
        if counts is None:
            counts = f.durations[name] = [0] * (len(BUCKETS) + 1) + [0.0]
        counts[bisect.bisect_left(BUCKETS, took)] += 1
        counts[-1] += took
        return DECLINED

    def hook_response(self, request, conf):
        if not conf.metrics:
            return DECLINED
        refused = page_refusal(request, conf)
        if refused is not None:
            return refused
        request.send(200, generate_latest(self.figures.registry()), CONTENT_TYPE)
        return DONE
