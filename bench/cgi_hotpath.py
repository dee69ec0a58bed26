"""Per-request cost of a hello-world CGI request inside the server process.

A real server (real reactor, sockets, pipes and child processes) runs in
this process; ``ab -k`` (a separate process) sends it N keep-alive requests
for a tiny shell CGI program.  Figures, each about the server process only:

* Python calls and bytecodes per request on the reactor thread
  (``sys.settrace``, exact up to timing-dependent paths);
* instructions per request (``valgrind --tool=callgrind``: the difference
  of two runs, so start-up cancels out; every thread of the server, not
  the children, which valgrind does not follow);
* CPU microseconds per request (getrusage of this process, all threads;
  noisy).

    python bench/cgi_hotpath.py
    python bench/cgi_hotpath.py --no-callgrind --top 30
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import BytecodeCounter, callgrind_per_request

HERE = os.path.dirname(os.path.abspath(__file__))

PROGRAM = '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\nHello, world!\\n"\n'


def serve(work, n, concurrency, trace=None):
    """Run ab against an in-process server for ``n`` requests; CPU seconds."""
    # The reactor `twistd axkit` runs on (axkit.reactor), as a real server.
    from axkit.reactor import install_default

    install_default()
    from twisted.internet import reactor, task

    from axkit.testing import start_server

    cgi_bin = os.path.join(work, "cgi-bin")
    os.makedirs(cgi_bin, exist_ok=True)
    path = os.path.join(cgi_bin, "hello.cgi")
    with open(path, "w") as f:
        f.write(PROGRAM)
    os.chmod(path, 0o755)
    config = (
        f"DocumentRoot {work}\nPlugin axkit.plugins.cgi.CGI\n"
        f"ScriptAlias /cgi-bin/ {cgi_bin}/\nMaxKeepAliveRequests 0\n"
    )
    result = {}

    def started(server):
        # Warm up (imports, caches) before measuring.
        client = [
            sys.executable,
            os.path.join(HERE, "cgi_hotpath.py"),
            "--client",
            str(server.port),
        ]
        ab = subprocess.Popen(client + ["50", "2"], stdout=subprocess.PIPE)
        while ab.poll() is None:
            reactor.iterate(0.01)
        ab = subprocess.Popen(
            client + [str(n), str(concurrency)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        result["r0"] = resource.getrusage(resource.RUSAGE_SELF)
        if trace is not None:
            sys.settrace(trace)

        def check():
            if ab.poll() is not None:
                sys.settrace(None)
                result["r1"] = resource.getrusage(resource.RUSAGE_SELF)
                result["out"] = ab.stdout.read().decode()
                loop.stop()
                reactor.stop()

        loop = task.LoopingCall(check)
        loop.start(0.05, now=False)

    reactor.callWhenRunning(lambda: start_server(config).addCallback(started))
    reactor.run()
    out = result["out"]
    if not out.startswith(f"{n} requests"):
        print(out)
    r0, r1 = result["r0"], result["r1"]
    return (
        (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
        r1.ru_utime - r0.ru_utime,
        r1.ru_stime - r0.ru_stime,
    )


def client(port, path, n, c):
    """``n`` HTTP/1.1 keep-alive GETs over ``c`` connections (run as a
    separate process, so that none of its work is counted)."""
    import selectors
    import socket

    req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    state = {"left": n, "done": 0, "chunked": 0}
    buffers = {}

    def send(s):
        if state["left"] <= 0:
            sel.unregister(s)
            s.close()
            return False
        state["left"] -= 1
        s.sendall(req)
        return True

    for _ in range(c):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sel.register(s, selectors.EVENT_READ)
        buffers[s] = b""
        send(s)
    started = time.perf_counter()
    while sel.get_map():
        for key, _ in sel.select():
            s = key.fileobj
            data = s.recv(65536)
            if not data:
                raise SystemExit("the server closed a connection")
            buf = buffers[s] + data
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = buf[:end].lower()
                if b"transfer-encoding: chunked" in head:
                    last = buf.find(b"\r\n0\r\n\r\n", end)  # (a tiny body)
                    if last < 0:
                        break
                    buf = buf[last + 7 :]
                    state["chunked"] += 1
                else:
                    i = head.index(b"content-length:") + 15
                    length = int(head[i:].split(b"\r\n", 1)[0])
                    if len(buf) < end + 4 + length:
                        break
                    buf = buf[end + 4 + length :]
                state["done"] += 1
                if not send(s):
                    break
            buffers[s] = buf
    took = time.perf_counter() - started
    print(
        f"{state['done']} requests in {took:.2f}s = {state['done'] / took:.0f} req/s; "
        f"chunked {state['chunked']}"
    )


def count_bytecodes(work, n, top, concurrency):
    counter = BytecodeCounter()
    serve(work, n, concurrency, trace=counter)
    # The LoopingCall's own calls are a few per 50 ms: negligible.
    counter.report(n, top, " (reactor thread)")


def callgrind_instructions():
    per_request = callgrind_per_request([sys.executable, os.path.abspath(__file__)], 200, 700)
    if per_request is None:
        print("instructions: valgrind not installed, skipped")
    else:
        # The server's own summary comes last in each run's output.
        print(f"{per_request:.0f} instructions per request (callgrind, server process)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--loop", type=int, help=argparse.SUPPRESS)  # callgrind's runs
    ap.add_argument("--client", nargs=3, type=int, help=argparse.SUPPRESS)
    ap.add_argument("--concurrency", type=int, default=1)
    args = ap.parse_args()
    if args.client:
        port, n, c = args.client
        client(port, "/cgi-bin/hello.cgi", n, c)
        return
    work = tempfile.mkdtemp(prefix="axkit-cgi-hot-")
    try:
        if args.loop is not None:
            serve(work, args.loop, 1)
            return
        if args.trace:
            count_bytecodes(work, 300, args.top, args.concurrency)
            return
        cpu, user, system = serve(work, args.requests, args.concurrency)
        n = args.requests
        print(
            f"CPU per request, {args.concurrency} client(s): {cpu / n * 1e6:.0f} us "
            f"(user {user / n * 1e6:.0f}, system {system / n * 1e6:.0f}; noisy)",
            flush=True,
        )
        # (A reactor runs once per process.)
        subprocess.run(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--trace",
                "--top",
                str(args.top),
                "--concurrency",
                str(args.concurrency),
            ]
        )
        if not args.no_callgrind:
            callgrind_instructions()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
