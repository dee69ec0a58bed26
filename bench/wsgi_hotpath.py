"""Per-request cost of a hello-world WSGI request, in memory.

bench/wsgi_bench.py's application, mounted with ``WSGIScriptAlias /``, is
asked ``GET /`` again and again through the real engine, hooks and the
wsgi plugin over an in-memory transport, on a fake clock (so the
application runs inline: the thread hand-off is not in these figures;
bench/wsgi_bench.py's CPU per request has it).  Figures:

* bytecodes and Python calls per request (``sys.settrace``, exact), and
  the functions that run most;
* instructions per request (``valgrind --tool=callgrind``, the difference
  of two runs, with the clock frozen so the once-a-second paths never run);
* microseconds per request (best of several loops; noisy);
* with ``--served``: instructions per request of a real ``twistd axkit``
  under callgrind, application threads and hand-offs included
  (bench/served_instructions.py).

    python bench/wsgi_hotpath.py
    python bench/wsgi_hotpath.py --top 25 --no-callgrind
    python bench/wsgi_hotpath.py --served          # only the real server's figure
    python bench/wsgi_hotpath.py --floor [--served]  # a hook answering: the engine's floor
    python bench/wsgi_hotpath.py --served --peer gunicorn   # (or twisted: WSGIResource)
"""

import argparse
import itertools
import os
import shutil
import sys
import tempfile
import time

from benchlib import REPO, callgrind_per_request, measure_in_memory

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n\r\n"

APP = """
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", "13")])
    return [b"Hello, world!"]
"""


# The engine's floor, for comparison: a hook answering "hello /" itself.
FLOOR = "Plugin tests.hookplugins.Hello\n"
WSGI = "Plugin wsgi\nWSGIThreads 4\nWSGIScriptAlias / {work}/helloapp.py\n"


def prepare(work):
    with open(os.path.join(work, "helloapp.py"), "w") as f:
        f.write(APP)


def connection(work, floor=False):
    from axkit.testing import MemorySite

    prepare(work)
    text = "Listen tcp:8080:interface=127.0.0.1\nKeepAliveTimeout 120\nMaxKeepAliveRequests 0\n" + (
        FLOOR if floor else WSGI.format(work=work)
    )
    site = MemorySite(text, route_logs=False)
    conn = site.connect()
    sent = []
    conn.transport.write = sent.append
    feed = conn.protocol.dataReceived
    feed(REQUEST)
    if not sent or (b"hello /" if floor else b"Hello, world!") not in b"".join(sent):
        raise RuntimeError(f"no hello answer: {sent!r}")
    conn.transport.write = lambda data: None
    return feed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--served", action="store_true", help="the real server's figure only")
    ap.add_argument("--floor", action="store_true", help="a hook answering, not WSGI")
    ap.add_argument(
        "--peer", choices=("gunicorn", "twisted"), help="with --served: a peer's figure"
    )
    ap.add_argument("--loop", type=int, help=argparse.SUPPRESS)  # callgrind's runs
    args = ap.parse_args()
    if args.served:
        served(args.floor, args.peer)
        return
    work = tempfile.mkdtemp()
    try:
        if args.loop is not None:
            time.time = itertools.repeat(1_800_000_000.0).__next__
            time.monotonic = itertools.repeat(1000.0).__next__
            feed = connection(work, args.floor)
            for _ in range(args.loop):
                feed(REQUEST)
            return
        feed = connection(work, args.floor)
        measure_in_memory(lambda: feed(REQUEST), args.top)
        if not args.no_callgrind:
            command = [sys.executable, os.path.abspath(__file__)] + (
                ["--floor"] if args.floor else []
            )
            per = callgrind_per_request(command, 300, 1300)
            if per is None:
                print("instructions: valgrind not installed, skipped")
            else:
                print(f"{per:.0f} instructions per request (callgrind, clock frozen)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def peer_command(name):
    """The command serving helloapp.py on ``port`` for peer ``name``
    (bench/wsgi_bench.py's gunicorn and WSGIResource, unpinned)."""
    import wsgi_bench

    def command(port, work):
        if name == "gunicorn":
            return [
                sys.executable,
                "-m",
                "gunicorn",
                "--worker-class",
                "gthread",
                "--workers",
                "1",
                "--threads",
                "4",
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                "--chdir",
                work,
                "helloapp:application",
            ]
        script = os.path.join(work, "twisted_web.py")
        with open(script, "w") as f:
            f.write(wsgi_bench.TWISTED_WEB)
        return [sys.executable, script, str(port), work, "quiet"]

    return command


def served(floor=False, peer=None):
    from served_instructions import per_request

    conf = "MaxKeepAliveRequests 0\n" + (FLOOR if floor else WSGI)
    answer = b"hello /" if floor else b"Hello, world!"
    command = peer_command(peer) if peer else None
    per = per_request(conf, REQUEST, answer, prepare, command=command)
    if per is None:
        print("valgrind not installed")
    else:
        what = peer or ("axkit, a hook answering" if floor else "axkit, WSGIThreads 4")
        print(f"{per:.0f} instructions per request ({what}; a real server under callgrind)")


if __name__ == "__main__":
    sys.path.insert(0, REPO)
    main()
