"""Per-request cost of the Python path, in memory (no sockets, no reactor).

A request for a 1 KiB file goes through the real engine, hooks and plugins
over an in-memory transport, again and again.  Three figures, each stable
enough to compare one change with the next on a busy machine:

* bytecodes and Python calls per request (``sys.settrace``, exact);
* instructions per request (``valgrind --tool=callgrind``, exact; skipped
  without valgrind): the difference of two runs, so start-up cancels out;
* microseconds per request (best of several loops; noisy).

    python bench/hotpath.py                 # the bench config (static_bench's)
    python bench/hotpath.py --config default --top 20
    python bench/hotpath.py --no-callgrind

``--config static``: uri_to_file, mime_map, serve_file, no access log (what
bench/static_bench.py runs); ``bench``: the same plus the access log to a file (http_bench.py's);
``default``: the built-in default config
(access log to a file, serve_dir, compress).  What the socket, the kernel
and Twisted's reactor add is not in these figures (about 20k instructions
and 20 us of system time per request on the machine these were tuned on).
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

from benchlib import REPO, BytecodeCounter, callgrind_per_request

REQUEST = b"GET /1k.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n\r\n"

CONFIGS = {
    "static": """
Include "{repo}/conf.d/mime.conf"
Plugin uri_to_file
Plugin mime_map
Plugin serve_file
""",
    # http_bench.py's: the static config plus the access log (to a file).
    "bench": """
Include "{repo}/conf.d/mime.conf"
Plugin uri_to_file
Plugin mime_map
Plugin serve_file
Plugin access_log
AccessLog "{work}/access.log"
""",
    "default": """
Include "{repo}/axkit/defaults/mime.conf"
Plugin error_log
Plugin access_log
Plugin uri_to_file
Plugin mime_map
Plugin serve_dir
Plugin serve_file
Plugin compress
DirectoryIndex index.html index.htm
DirectoryListing On
AddDefaultCharset utf-8
Gzip On
Precompressed On
AccessLog "{work}/access.log"
""",
}


def connection(config, work):
    from axkit.testing import MemorySite

    with open(os.path.join(work, "1k.txt"), "wb") as f:
        f.write(b"x" * 1024)
    text = (
        f'Listen tcp:8080:interface=127.0.0.1\nDocumentRoot "{work}"\n'
        "KeepAliveTimeout 120\nMaxKeepAliveRequests 0\n"
        + CONFIGS[config].format(repo=REPO, work=work)
    )
    site = MemorySite(text, route_logs=False)
    conn = site.connect()
    conn.transport.write = lambda data: None
    return conn.protocol.dataReceived


def count_bytecodes(feed, n, top):
    counter = BytecodeCounter()
    sys.settrace(counter)
    for _ in range(n):
        feed(REQUEST)
    sys.settrace(None)
    counter.report(n, top)


def callgrind_instructions(config):
    per_request = callgrind_per_request(
        [sys.executable, os.path.abspath(__file__), "--config", config], 300, 1300
    )
    if per_request is None:
        print("instructions: valgrind not installed, skipped")
    else:
        print(f"{per_request:.0f} instructions per request (callgrind)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", choices=sorted(CONFIGS), default="static")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--loop", type=int, help=argparse.SUPPRESS)  # callgrind's runs
    args = ap.parse_args()
    work = tempfile.mkdtemp()
    try:
        feed = connection(args.config, work)
        if args.loop is not None:
            for _ in range(args.loop):
                feed(REQUEST)
            return
        for _ in range(2000):
            feed(REQUEST)
        print(f"config: {args.config}")
        count_bytecodes(feed, 200, args.top)
        n, best = 20000, float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(n):
                feed(REQUEST)
            best = min(best, (time.perf_counter() - started) / n)
        print(f"{best * 1e6:.1f} us per request (best of 5 loops of {n}; noisy)")
        if not args.no_callgrind:
            callgrind_instructions(args.config)
    finally:
        from axkit.log import flush_all

        flush_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
