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
bench/static_bench.py runs); ``default``: the built-in default config
(access log to a file, serve_dir, compress).  What the socket, the kernel
and Twisted's reactor add is not in these figures (about 20k instructions
and 20 us of system time per request on the machine these were tuned on).
"""

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

REQUEST = b"GET /1k.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n\r\n"

CONFIGS = {
    "static": """
Include "{repo}/conf.d/mime.conf"
Plugin uri_to_file
Plugin mime_map
Plugin serve_file
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
    text = (f'Listen tcp:8080:interface=127.0.0.1\nDocumentRoot "{work}"\n'
            "KeepAliveTimeout 120\nMaxKeepAliveRequests 0\n"
            + CONFIGS[config].format(repo=REPO, work=work))
    site = MemorySite(text, route_logs=False)
    conn = site.connect()
    conn.transport.write = lambda data: None
    return conn.protocol.dataReceived


def count_bytecodes(feed, n, top):
    counts, calls = collections.Counter(), collections.Counter()

    def tracer(frame, event, arg):
        key = (os.path.relpath(frame.f_code.co_filename, REPO), frame.f_code.co_name)
        if event == "call":
            frame.f_trace_opcodes = True
            frame.f_trace_lines = False
            calls[key] += 1
        elif event == "opcode":
            counts[key] += 1
        return tracer
    sys.settrace(tracer)
    for _ in range(n):
        feed(REQUEST)
    sys.settrace(None)
    print(f"{sum(counts.values()) / n:.0f} bytecodes and {sum(calls.values()) / n:.0f} "
          f"Python calls per request")
    for (path, name), v in counts.most_common(top):
        print(f"  {v / n:6.0f} bytecodes  {calls[(path, name)] / n:4.1f} calls  {path}:{name}")


def callgrind_instructions(config):
    if shutil.which("valgrind") is None:
        print("instructions: valgrind not installed, skipped")
        return

    def total(n):
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
             sys.executable, os.path.abspath(__file__), "--config", config,
             "--loop", str(n)], capture_output=True, text=True,
            # A fixed hash seed: dict probing, and so the count, repeats exactly.
            env=dict(os.environ, PYTHONHASHSEED="0")).stderr
        for line in out.splitlines():
            if "refs:" in line:
                return int(line.rsplit(":", 1)[1].replace(",", ""))
        raise RuntimeError(out[-2000:])
    a, b = total(300), total(1300)
    print(f"{(b - a) / 1000:.0f} instructions per request (callgrind)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", choices=sorted(CONFIGS), default="static")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--loop", type=int, help=argparse.SUPPRESS)   # callgrind's runs
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
