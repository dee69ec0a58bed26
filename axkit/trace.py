"""Request traces (TraceHooks On): which plugin answered each hook, how, how fast.

The chain runner (axkit.hooks.run_chain) calls ``record`` for every plugin
it ran; each record becomes one error-log line::

    trace GET /docs/ [hook_uri_translation] uri_to_file -> OK (0.052 ms)

Trace events carry ``axkit_trace=True`` so the error log writes them
whatever the scope's LogLevel is: asking for a trace is asking to see it.
"""

import time

from twisted.logger import Logger

log = Logger(namespace="axkit.trace")


class HookTracer:
    """The tracer of one request (or one connection's hooks)."""

    __slots__ = ("request", "label", "clock", "records")

    def __init__(self, request, label, clock=time.perf_counter):
        self.request = request
        self.label = label
        self.clock = clock
        self.records = []  # (hook, plugin name, result, seconds)

    def record(self, plugin, hook, result, seconds):
        name = getattr(plugin, "name", type(plugin).__name__)
        self.records.append((hook, name, result, seconds))
        log.info(
            "trace {label} [hook_{hook}] {trace_plugin} -> {result!r} ({ms:.3f} ms)",
            label=self.label,
            hook=hook,
            trace_plugin=name,
            result=result,
            ms=seconds * 1000.0,
            seconds=seconds,
            request=self.request,
            axkit_trace=True,
        )

    def note(self, hook, message):
        """A trace line that is not a plugin's answer (``hook`` is a label)."""
        log.info(
            "trace {label} [{hook}] {note}",
            label=self.label,
            hook=hook,
            note=message,
            request=self.request,
            axkit_trace=True,
        )

    def scope(self, server, resolved):
        """Say which <Server> and sections the request's config came from."""
        parts = [f"server {server.label()!r}"]
        parts += [
            scope.describe()
            for scope in resolved.scopes
            if scope.kind != "global" and scope is not server.scope
        ]
        plugins = ", ".join(p.name for p in resolved.plugins) or "none"
        self.note("scope", f"{'; '.join(parts)}; plugins: {plugins}")
