"""Per-request cost of a hello-world ASGI request (bench/asgi_bench.py's
app, tests.asgiapps.hello:app, at ``ASGIAlias /``).

In memory: ``GET /`` through the real engine, hooks and the asgi plugin
over an in-memory transport, the asyncio loop stepped after each request
by the SteppedBridge's poll hook, as axkit's reactor runs it before it
polls.
Figures: bytecodes and Python calls per request (exact), the functions
that run most, instructions per request (callgrind, the clock frozen),
microseconds (noisy).

``--served``: instructions per request of a real ``twistd axkit`` under
callgrind (bench/served_instructions.py), and ``--served --uvicorn`` the
same for uvicorn (httptools, one worker) under the same client: a ratio
that does not move with a busy machine; ``--served --uvicorn --uvloop``
for uvicorn on uvloop (``--loop uvloop``, as uvicorn[standard] runs).

    python bench/asgi_hotpath.py
    python bench/asgi_hotpath.py --served
    python bench/asgi_hotpath.py --served --uvicorn [--uvloop]
"""

import argparse
import itertools
import os
import sys
import tempfile
import time

from benchlib import REPO, callgrind_per_request, measure_in_memory

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n\r\n"
ANSWER = b"Hello, world!\n"
APP = "tests.asgiapps.hello:app"
CONFIG = f"Plugin asgi\nASGIAlias / {APP}\nASGILifespan off\nMaxKeepAliveRequests 0\n"


class _Reactor:
    """What SteppedBridge asks of axkit's reactor, in memory: it keeps the
    poll hook, which ``feed`` runs as the reactor would before polling."""

    def __init__(self):
        self.hooks = []

    def add_poll_hook(self, hook):
        self.hooks.append(hook)

    def add_raw_reader(self, fd, reader):
        pass

    def seconds(self):
        return time.monotonic()

    def callLater(self, delay, fn):
        raise RuntimeError("no timers in this bench")


def connection():
    import axkit.asgi.bridge as bridges
    from axkit.testing import MemorySite

    reactor = _Reactor()
    bridges._BRIDGE = bridges.SteppedBridge(reactor)
    site = MemorySite(
        "Listen tcp:8080:interface=127.0.0.1\nKeepAliveTimeout 120\n" + CONFIG, route_logs=False
    )
    site.config.plugins["asgi"].startup(site.config, site.clock)
    conn = site.connect()
    sent = []
    conn.transport.write = sent.append
    data_received = conn.protocol.dataReceived
    [hook] = reactor.hooks

    def step():
        # The reactor's turn: its poll hooks until they have nothing to do.
        while hook():
            pass

    def feed(data):
        data_received(data)
        step()

    feed(REQUEST)
    if ANSWER not in b"".join(sent):
        raise RuntimeError(f"no hello answer: {sent!r}")
    conn.transport.write = lambda data: None
    return feed


def uvicorn_command(port, work, loop="asyncio"):
    return [
        sys.executable,
        "-m",
        "uvicorn",
        APP,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--http",
        "httptools",
        "--loop",
        loop,
        "--workers",
        "1",
        "--no-access-log",
        "--lifespan",
        "off",
        "--log-level",
        "warning",
    ]


def served(uvicorn, loop="asyncio"):
    from served_instructions import per_request

    # (uvicorn sends the app's answer chunked: it ends with the last chunk.)
    end = b"\r\n0\r\n\r\n" if uvicorn else ANSWER
    command = None
    if uvicorn:

        def command(port, work):
            return uvicorn_command(port, work, loop)

    per = per_request(CONFIG, REQUEST, end, command=command)
    if per is None:
        print("valgrind not installed")
    else:
        who = f"uvicorn (httptools, {loop} loop)" if uvicorn else "axkit"
        print(f"{per:.0f} instructions per request ({who}, a real server under callgrind)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--served", action="store_true")
    ap.add_argument("--uvicorn", action="store_true")
    ap.add_argument("--uvloop", action="store_true", help="uvicorn --loop uvloop")
    ap.add_argument("--loop", type=int, help=argparse.SUPPRESS)  # callgrind's runs
    args = ap.parse_args()
    if args.served:
        served(args.uvicorn, "uvloop" if args.uvloop else "asyncio")
        return
    if args.loop is not None:
        time.time = itertools.repeat(1_800_000_000.0).__next__
        time.monotonic = itertools.repeat(1000.0).__next__
        feed = connection()
        for _ in range(args.loop):
            feed(REQUEST)
        return
    feed = connection()
    measure_in_memory(lambda: feed(REQUEST), args.top)
    if not args.no_callgrind:
        per = callgrind_per_request([sys.executable, os.path.abspath(__file__)], 300, 1300)
        if per is not None:
            print(f"{per:.0f} instructions per request (callgrind, clock frozen)")


if __name__ == "__main__":
    sys.path.insert(0, REPO)
    os.chdir(tempfile.gettempdir())
    main()
