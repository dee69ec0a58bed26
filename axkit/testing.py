"""Helpers for testing axkit and axkit plugins with trial.

In memory (no socket, a fake clock)::

    site = MemorySite('''
        Plugin hello
        Hello "Hi there"
    ''')
    self.addCleanup(site.close)
    response = site.get("/")             # waits on the fake clock if a hook
    self.assertEqual(response.status, 200)   # returned a Deferred on request.reactor
    site.messages(plugin="hello")        # log events' text; site.events: the dicts
    site.traces()                        # with TraceHooks On: (hook, plugin, result, s)

Over a real socket (an ephemeral port on 127.0.0.1)::

    server = yield start_server(config_text)     # in a trial TestCase
    self.addCleanup(server.stop)
    body = yield treq.text_content((yield treq.get(server.url("/"),
                                                   pool=http_pool(self))))
    yield server.reload(other_config_text)       # as SIGHUP would

A whole ``twistd -n axkit`` process (signals, daemon behaviour):
``TwistdProcess(config_path)``.  docs/plugins.md walks through all of it.
"""

import os
import socket
import sys
import textwrap
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import ILogObserver, formatEvent, globalLogPublisher

from axkit.config.loader import SiteConfig, load_string
from axkit.http.factory import HTTPFactory
from axkit.log import LogRouter, flush_all
from axkit.pipeline import Pipeline
from axkit.server import AxKitService, ConfigHolder

if TYPE_CHECKING:
    from twisted.web.client import HTTPConnectionPool

TEST_LISTEN = "tcp:0:interface=127.0.0.1"


def load_config(text: str, base_dir: str | None = None, name: str = "<test config>") -> SiteConfig:
    """Load config ``text`` (dedented); relative paths from ``base_dir``."""
    return load_string(textwrap.dedent(text), name, base_dir=base_dir)


class Response:
    """One parsed HTTP response."""

    def __init__(
        self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes, raw_head: str
    ) -> None:
        self.status: int = status
        self.reason: str = reason
        self.headers: list[tuple[str, str]] = headers  # list of (name, value)
        self.body: bytes = body
        self.raw_head: str = raw_head

    def header(self, name: str, default: str | None = None) -> str | None:
        """The value of header ``name`` (several joined with ", "), or ``default``."""
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else default

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.headers!r} {self.body[:60]!r}>"


def parse_responses(data: bytes, methods: Iterable[str] = ()) -> list[Response]:
    """Split raw response bytes into Response objects.

    ``methods`` lists the request methods in order, so bodies of responses
    to HEAD are known to be absent.  An incomplete last response is left out.
    """
    responses: list[Response] = []
    pending = list(methods)
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        head = data[:end].decode("latin-1")
        lines = head.split("\r\n")
        version, status_text, *rest = lines[0].split(" ", 2)
        if not version.startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1.x status line: {lines[0]!r}")
        status = int(status_text)
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or name != name.strip():
                raise ValueError(f"malformed header line {line!r}")
            headers.append((name, value.strip()))
        data = data[end + 4 :]
        method = pending.pop(0) if pending else "GET"
        names = {k.lower(): v for k, v in headers}
        if status < 200:
            responses.append(Response(status, rest[0] if rest else "", headers, b"", head))
            if pending or method:
                pending.insert(0, method)
            continue
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif "chunked" in names.get("transfer-encoding", ""):
            body, data, complete = _dechunk(data)
            if not complete:
                break
        elif "content-length" in names:
            length = int(names["content-length"])
            if len(data) < length:
                break
            body, data = data[:length], data[length:]
        else:
            body, data = data, b""
        responses.append(Response(status, rest[0] if rest else "", headers, body, head))
    return responses


def _dechunk(data: bytes) -> tuple[bytes, bytes, bool]:
    body: list[bytes] = []
    while True:
        line_end = data.find(b"\r\n")
        if line_end < 0:
            return b"".join(body), data, False
        size = int(data[:line_end].split(b";")[0], 16)
        data = data[line_end + 2 :]
        if size == 0:
            trailer_end = data.find(b"\r\n")
            while trailer_end > 0:  # skip trailer fields
                data = data[trailer_end + 2 :]
                trailer_end = data.find(b"\r\n")
            if trailer_end < 0:
                return b"".join(body), data, False
            return b"".join(body), data[2:], True
        if len(data) < size + 2:
            return b"".join(body), data, False
        body.append(data[:size])
        data = data[size + 2 :]


class MemoryConnection:
    """One client connection to a MemorySite, over an in-memory transport."""

    def __init__(self, site: "MemorySite", peer: tuple[str, int] = ("127.0.0.1", 40000)) -> None:
        self.peer: tuple[str, int] = peer
        self.site: MemorySite = site
        self.protocol: Any = site.factory.buildProtocol(None)
        self.transport: StringTransport = StringTransport(
            peerAddress=IPv4Address("TCP", *peer), hostAddress=IPv4Address("TCP", "127.0.0.1", 8080)
        )
        self.protocol.makeConnection(self.transport)
        self.methods: list[str] = []  # of the requests sent, in order

    def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.protocol.dataReceived(data)

    def request(
        self,
        method: str = "GET",
        path: str = "/",
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        version: str = "1.1",
    ) -> None:
        """Send one request (Host added if missing) and return nothing."""
        lines = [f"{method} {path} HTTP/{version}"]
        names = {k.lower() for k, _ in headers}
        if "host" not in names and version == "1.1":
            lines.append("Host: localhost")
        for k, v in headers:
            lines.append(f"{k}: {v}")
        if body and "content-length" not in names and "transfer-encoding" not in names:
            lines.append(f"Content-Length: {len(body)}")
        self.methods.append(method)
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def responses(self) -> list[Response]:
        """The complete responses received so far on this connection."""
        return parse_responses(self.transport.value(), self.methods)

    @property
    def closed(self) -> bool:
        return self.transport.disconnecting

    def half_close(self) -> None:
        """The client closes its sending side (a FIN), still reading."""
        self.protocol.readConnectionLost()

    def lose(self) -> None:
        from twisted.internet.error import ConnectionLost
        from twisted.python.failure import Failure

        self.protocol.connectionLost(Failure(ConnectionLost()))


class MemorySite:
    """A config loaded and served in memory, with a fake clock.

    Requests go through the real HTTP engine and the full hook chain over
    an in-memory transport; ``clock`` (a MemoryReactorClock) is the reactor
    the engine, the plugins (``request.reactor``) and the
    trace timer see.  ``events`` collects every log event emitted while the
    site is open, and each is also passed through the site's `logging`
    hooks, as the real server does.  Call ``close()`` when done (or use
    ``addCleanup(site.close)``).
    """

    def __init__(
        self, config_text: str, base_dir: str | None = None, route_logs: bool = True
    ) -> None:
        self.config: SiteConfig = load_config(config_text, base_dir)
        self.holder: ConfigHolder = ConfigHolder(self.config)
        self.clock: MemoryReactorClock = MemoryReactorClock()
        endpoint = next(iter(self.config.listeners))
        self.pipeline: Pipeline = Pipeline(self.holder, endpoint)
        self.pipeline.clock = self.clock.seconds
        self.factory: HTTPFactory = HTTPFactory(self.pipeline, self.clock)
        self.events: list[dict[str, Any]] = []
        self.router: LogRouter | None = (
            LogRouter(self.holder, fallback_level=None) if route_logs else None
        )
        globalLogPublisher.addObserver(cast(ILogObserver, self._observe))

    def _observe(self, event: dict[str, Any]) -> None:
        request = event.get("request")
        if request is not None:
            try:
                if request.reactor is not self.clock:
                    return  # another site's request
            except AttributeError:
                return
        self.events.append(event)
        if self.router is not None:
            self.router(event)

    def close(self) -> None:
        globalLogPublisher.removeObserver(cast(ILogObserver, self._observe))
        flush_all()

    def connect(self, peer: tuple[str, int] = ("127.0.0.1", 40000)) -> MemoryConnection:
        """A new client connection (send requests on it, read its responses)."""
        return MemoryConnection(self, peer)

    def request(
        self,
        method: str = "GET",
        path: str = "/",
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        version: str = "1.1",
        max_wait: float = 60.0,
    ) -> Response | None:
        """Send one request on a fresh connection and return its Response.

        If the answer is not complete at once (a plugin returned a Deferred
        waiting on the clock), the fake clock is advanced through its
        pending calls, up to ``max_wait`` seconds; None if still no answer.
        """
        conn = self.connect()
        conn.request(method, path, headers, body, version)
        return self.wait_for(conn, 1, max_wait)[0]

    def wait_for(
        self, conn: MemoryConnection, count: int = 1, max_wait: float = 60.0
    ) -> list[Response | None]:
        """Advance the clock until ``conn`` has ``count`` complete responses."""
        waited = 0.0
        while True:
            responses = conn.responses()
            if len(responses) >= count:
                return list(responses)  # (as a list of Response | None)
            pending = [
                c.getTime()  # type: ignore[misc]  # (zope Interface method, no self)
                for c in self.clock.getDelayedCalls()
            ]
            if not pending:
                break
            step = max(0.0, min(pending) - self.clock.seconds())
            if waited + step > max_wait:
                break
            self.clock.advance(step)
            waited += step
        return responses + [None] * (count - len(responses))

    def get(self, path: str, headers: Sequence[tuple[str, str]] = ()) -> Response | None:
        return self.request("GET", path, headers)

    def advance(self, seconds: float) -> None:
        """Move the fake clock on (timers fire, Deferreds waiting on it run)."""
        self.clock.advance(seconds)

    # -- log events ------------------------------------------------------------

    def messages(
        self, namespace: str | None = None, plugin: str | None = None, level: Any = None
    ) -> list[str]:
        """The formatted text of the collected log events, filtered."""
        out = []
        for e in self.events:
            if namespace is not None and e.get("log_namespace") != namespace:
                continue
            if plugin is not None and e.get("plugin") != plugin:
                continue
            if level is not None and e.get("log_level") != level:
                continue
            out.append(formatEvent(e))
        return out

    def traces(self) -> list[tuple[str, str, Any, float]]:
        """The (hook, plugin, result, seconds) records of TraceHooks, in order."""
        return [
            (e["hook"], e["trace_plugin"], e["result"], e["seconds"])
            for e in self.events
            if e.get("axkit_trace") and "trace_plugin" in e
        ]


class RunningServer:
    """A real axkit service listening on an ephemeral port."""

    def __init__(self, service: AxKitService) -> None:
        self.service: AxKitService = service

    @property
    def port(self) -> int:
        return next(iter(self.service.port_numbers().values()))

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> Deferred[Any]:
        """Stop listening and cut every open connection (a test's cleanup)."""
        d = defer.maybeDeferred(self.service.stopService)
        for factory in self.service.factories.values():
            for connection in list(factory.connections):
                connection.transport.abortConnection()
        return d

    def reload(self, config_text: str, base_dir: str | None = None) -> Deferred[bool]:
        """Swap in a new config as SIGHUP would; Deferred firing True/False."""
        from axkit.config.errors import ConfigErrors

        try:
            config = load_string(_with_listen(config_text), "<test config>", base_dir=base_dir)
        except ConfigErrors:
            return defer.succeed(False)
        return self.service.reload(config)


def http_pool(test_case: Any) -> "HTTPConnectionPool":
    """A treq connection pool without keep-alive, closed when the test ends:
    pass it as ``pool=`` so no client connection outlives the test."""
    from twisted.internet import reactor
    from twisted.web.client import HTTPConnectionPool

    pool = HTTPConnectionPool(reactor, persistent=False)
    test_case.addCleanup(pool.closeCachedConnections)
    return pool


def _with_listen(config_text: str) -> str:
    text = textwrap.dedent(config_text)
    if not any(line.strip().lower().startswith("listen") for line in text.splitlines()):
        text = f"Listen {TEST_LISTEN}\n" + text
    return text


def start_server(config_text: str, base_dir: str | None = None) -> Deferred[RunningServer]:
    """Start a real server for ``config_text`` (Listen defaults to an
    ephemeral port on 127.0.0.1).  Returns a Deferred RunningServer."""
    config = load_string(_with_listen(config_text), "<test config>", base_dir=base_dir)
    service = AxKitService(config, handle_signals=False)
    service.startService()
    return defer.succeed(RunningServer(service))


# `twistd` run by the interpreter running the tests.
TWISTD_COMMAND: list[str] = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for a child
    process's Listen line; in-process servers should Listen on port 0)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def twistd_env(extra_path: Iterable[str] = ()) -> dict[str, str]:
    """The environment for a twistd child: this axkit (and ``extra_path``)
    first on PYTHONPATH, so its dropins are the ones found."""
    env = dict(os.environ)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(
        [here, *extra_path] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    return env


class TwistdProcess:
    """``twistd -n axkit --config FILE`` in a child process (blocking helpers,
    for tests that need signals or a whole process: reload, logrotate).

    The config should Listen on port 0; ``port`` is read from the server's
    "listening on" log line.  ``args`` go to axkit, ``twistd_args`` to twistd
    (before ``axkit``).  Always ``stop()`` it (addCleanup).
    """

    def __init__(
        self,
        config_path: str,
        extra_path: Iterable[str] = (),
        args: Iterable[str] = (),
        timeout: float = 20.0,
        watch: str | None = None,
        twistd_args: Iterable[str] = (),
    ) -> None:
        import subprocess
        import time

        env = twistd_env(extra_path)
        self.config_path: str = config_path
        self.output_path: str = config_path + ".out"
        self._out = open(self.output_path, "wb")
        self.process: subprocess.Popen[bytes] = subprocess.Popen(
            TWISTD_COMMAND
            + ["-n", "--pidfile=", *twistd_args, "axkit", "--config", config_path, *args],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=os.path.dirname(config_path),
        )
        self.port: int | None = None  # (set once started)
        self.watch: str | None = watch  # a log file holding the "listening on" line, if not stdout
        deadline = time.monotonic() + timeout
        import re

        while time.monotonic() < deadline:
            text = self.output() + self.watched()
            m = re.search(r"listening on \S+ \(https?://[^:]+:(\d+)/\)", text)
            if m:
                self.port = int(m.group(1))
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"twistd did not start:\n{self.output()}{self.watched()}")

    def watched(self) -> str:
        if self.watch is None:
            return ""
        try:
            with open(self.watch, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def output(self) -> str:
        with open(self.output_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait_for_output(self, text: str, timeout: float = 10.0, after: int = 0) -> bool:
        """Block until ``text`` appears in the output past offset ``after``."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output()[after:]:
                return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except Exception:
                self.process.kill()
                self.process.wait(5)
        self._out.close()
