"""metrics: Prometheus metrics of the server, in the text exposition format.

::

    Plugin metrics                       # at the top: counts every response
    <Location /metrics>
        Metrics On                       # this URL answers with the metrics
    </Location>

Counting is axkit.status's, shared with Plugin server_status (a response
is counted once, whichever sees it): a few additions and a bisect per
response, no lock, no prometheus_client object per request; a collector
turns the counts into metric families when Prometheus scrapes, with
``prometheus_client`` writing the exposition format (and its process
metrics -- CPU, memory, open files -- of the answering process).  Labels a
client could inflate are bounded: ``method`` is one of the standard
methods or ``_other``, and ``server`` one of the config's <Server> names
(``_default`` for the unnamed one, ``_other`` for anything else) -- never
the Host header.  With ``Workers N`` every figure is the sum over the
workers (``axkit_workers`` says how many); see axkit.workers.figures for
why not prometheus_client's multiprocess mode.

The page is refused (403) to every client but loopback, unless the scope
has ``Require`` lines (Plugin access).  Counters are process-wide, so a
SIGHUP reload keeps them; ``axkit_config_reloads_total`` counts reloads.
"""

import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.process_collector import ProcessCollector

from axkit.config import NOT_FILES, Directive, flag
from axkit.hooks import DECLINED, DONE
from axkit.status import (
    ANSWERS_BEFORE,
    BUCKETS,
    STATES,
    CountingPlugin,
    figures,
    page_refusal,
)

# The text format every Prometheus reads (prometheus_client's newest default,
# 1.0.0, is refused by some scrapers); our names are plain ASCII either way.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Collector:
    """Turns axkit.status's figures into Prometheus metric families at
    scrape time."""

    def __init__(self, counters, conf=None):
        self.counters = counters
        self.conf = conf

    def collect(self):
        f = figures(self.conf, time.time(), self.counters)
        requests = CounterMetricFamily(
            "axkit_http_requests", "Responses sent.", labels=["code", "method", "server"]
        )
        for code, method, server, n in sorted(f["requests"]):
            requests.add_metric([str(code), method, server], n)
        yield requests
        sent = CounterMetricFamily(
            "axkit_http_response_bytes", "Response body bytes sent.", labels=["server"]
        )
        for server, n in sorted(f["bytes"].items()):
            sent.add_metric([server], n)
        yield sent
        durations = HistogramMetricFamily(
            "axkit_http_request_duration_seconds",
            "From the request's head to its response's end.",
            labels=["server"],
        )
        for server, counts in sorted(f["durations"].items()):
            cumulative, buckets = 0, []
            for bound, n in zip(BUCKETS + (float("inf"),), counts[:-1], strict=True):
                cumulative += n
                buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
            durations.add_metric([server], buckets, sum_value=counts[-1])
        yield durations
        counts = f["states"]
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
            "axkit_connections_accepted", "Connections accepted.", value=f["accepted"]
        )
        yield CounterMetricFamily(
            "axkit_config_reloads",
            "Configs loaded after the first.",
            value=max(0, f["generation"] - 1),
        )
        yield GaugeMetricFamily(
            "axkit_workers", "Processes serving (Workers; 1 without).", value=f["processes"]
        )
        for name, doc in (
            ("cgi_running", "CGI programs running."),
            ("cgi_waiting", "Requests waiting for a CGIMaxProcesses slot."),
            ("wsgi_busy", "Application threads running a request."),
            ("wsgi_threads", "Application threads (WSGIThreads)."),
            ("wsgi_queued", "Requests waiting for an application thread."),
        ):
            yield GaugeMetricFamily(f"axkit_{name}", doc, value=f[name])


class Metrics(CountingPlugin):
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

    def __init__(self, counters=None):
        super().__init__(counters)
        self._registry = None

    def registry(self):
        """The CollectorRegistry that renders the figures (made once)."""
        if self._registry is None:
            registry = CollectorRegistry(auto_describe=False)
            registry.register(Collector(self.counters))
            ProcessCollector(registry=registry)
            self._registry = registry
        return self._registry

    def hook_response(self, request, conf):
        if not conf.metrics:
            return DECLINED
        refused = page_refusal(request, conf)
        if refused is not None:
            return refused
        request.send(200, generate_latest(self.registry()), CONTENT_TYPE)
        return DONE
