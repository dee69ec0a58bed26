"""Request traces (TraceHooks On): which plugin answered each hook, how, how fast.

The chain runner (axkit.hooks.run_chain) calls ``start`` as it calls a
plugin's hook and ``record`` when the hook has answered (or raised); each
record becomes one error-log line::

    trace GET /docs/ [hook_uri_translation] uri_to_file -> OK (0.052 ms)

A line is written when its hook has answered, so a hook run while another
is still running would come first: ``response_sent``, run as a response
plugin's ``send`` completes the response, inside its ``hook_response``.
Its line is held until the hooks running around it have answered, so a
trace reads in the order of the request's steps.

Trace events carry ``axkit_trace=True`` so the error log writes them
whatever the scope's LogLevel is: asking for a trace is asking to see it.
"""

import time

from twisted.logger import Logger

log = Logger(namespace="axkit.trace")


class _Raised:
    """The result traced for a hook that raised (``-> raised``)."""

    __slots__ = ()

    def __repr__(self):
        return "raised"

    __str__ = __repr__


RAISED = _Raised()


class HookTracer:
    """The tracer of one request (or one connection's hooks)."""

    __slots__ = ("request", "label", "clock", "records", "running", "held")

    def __init__(self, request, label, clock=time.perf_counter):
        self.request = request
        self.label = label
        self.clock = clock
        self.records = []  # (hook, plugin name, result, seconds)
        self.running = 0  # hooks started and not yet recorded
        self.held = []  # response_sent records waiting for those

    def start(self):
        """A plugin's hook is called now: the clock, to time it from."""
        self.running += 1
        return self.clock()

    def record(self, plugin, hook, result, seconds):
        if self.running:
            self.running -= 1
        if hook == "response_sent" and self.running:
            # Inside the hook that sent the response: after its line.
            self.held.append((plugin, hook, result, seconds))
            return
        self._write(plugin, hook, result, seconds)
        if self.held and not self.running:
            held, self.held = self.held, []
            for args in held:
                self._write(*args)

    def _write(self, plugin, hook, result, seconds):
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
