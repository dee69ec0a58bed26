#!/usr/bin/env python3
"""Idle keep-alive connections: server memory per connection and latency.

Starts a server pinned to core 0 (axkit by default, or twisted.web with
``--server twisted.web``), then from core 1:

1. wrk's p99 with no idle connections (baseline);
2. opens N keep-alive connections from several 127.0.0.x source addresses,
   sends one request on each and reads the answer, and holds them open;
3. reports the server's RSS growth per connection, the latency of fresh
   requests (a new connection each) while they are held, and wrk's p99
   while they are held.

    python bench/idle_connections.py                  # 19,000 connections
    python bench/idle_connections.py -n 5000 --server twisted.web

The hard open-file limit here is 20,000 per process, so 19,000 is the most
one server process can hold (and this client holds the other ends).
"""

import argparse
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from benchlib import TWISTD, free_port, rss_kib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUEST = b"GET /1k.txt HTTP/1.1\r\nHost: localhost\r\n\r\n"


def start_server(kind, work, docroot, port, n):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env["AXKIT_GC_STATS"] = os.path.join(work, "gc-stats.txt")
    if kind == "axkit":
        conf = os.path.join(work, "axkit.conf")
        with open(conf, "w") as f:
            f.write(f"""Listen tcp:{port}:interface=127.0.0.1
DocumentRoot "{docroot}"
Plugin uri_to_file
Plugin mime_map
Plugin serve_file
Plugin access_log
AccessLog "{work}/access.log"
KeepAliveTimeout 600
MaxConnections {n + 500}
""")
        cmd = [
            *TWISTD,
            "-n",
            "--pidfile=",
            "--logfile",
            os.path.join(work, "axkit.log"),
            "axkit",
            "--config",
            conf,
        ]
    else:
        cmd = [
            *TWISTD,
            "-n",
            "--pidfile=",
            "--logfile",
            os.path.join(work, "tw.log"),
            "web",
            "--listen",
            f"tcp:{port}:interface=127.0.0.1:backlog=1024",
            "--path",
            docroot,
            "--logfile",
            os.path.join(work, "tw-access.log"),
        ]
    proc = subprocess.Popen(
        ["taskset", "-c", "0", *cmd],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


def wrk_p99(port, duration):
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t1",
            "-c50",
            f"-d{duration}s",
            "--latency",
            f"http://127.0.0.1:{port}/1k.txt",
        ],
        capture_output=True,
        text=True,
        timeout=duration + 60,
    ).stdout
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)] if m else None
    return p99, float(rps.group(1)) if rps else 0.0


def open_idle(port, n, sources, batch=500):
    """Open n connections (non-blocking, in batches), one request each."""
    sel = selectors.DefaultSelector()
    conns = []
    pending = {}
    i = 0
    while i < n or pending:
        while i < n and len(pending) < batch:
            s = socket.socket()
            s.setblocking(False)
            s.bind((sources[i % len(sources)], 0))
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            pending[s] = b""
            sel.register(s, selectors.EVENT_WRITE)
            i += 1
        for key, events in sel.select(timeout=10):
            s = key.fileobj
            if events & selectors.EVENT_WRITE:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise SystemExit(
                        f"connect failed: {os.strerror(err)} after {len(conns)} connections"
                    )
                s.send(REQUEST)
                sel.modify(s, selectors.EVENT_READ)
            else:
                data = s.recv(65536)
                if not data:
                    raise SystemExit(f"server closed a connection after {len(conns)}")
                pending[s] += data
                if b"\r\n\r\n" in pending[s] and len(pending[s]) >= 1024:
                    sel.unregister(s)
                    del pending[s]
                    conns.append(s)
    sel.close()
    return conns


def fresh_latencies(port, count):
    out = []
    for _ in range(count):
        started = time.perf_counter()
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /1k.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        while s.recv(65536):
            pass
        s.close()
        out.append((time.perf_counter() - started) * 1000)
        time.sleep(0.005)
    out.sort()
    return out


def pct(values, p):
    return values[min(len(values) - 1, int(len(values) * p))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=19000)
    parser.add_argument("--server", choices=["axkit", "twisted.web"], default="axkit")
    parser.add_argument(
        "--sources", type=int, default=8, help="source addresses 127.0.0.2 .. 127.0.0.(1+N)"
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--fresh", type=int, default=300)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="wrk runs with and without the idle connections (medians "
        "are reported: the machine may be shared)",
    )
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.n + 200 > hard:
        raise SystemExit(f"-n {args.n} needs more open files than the limit ({hard})")

    work = tempfile.mkdtemp(prefix="axkit-idle-")
    docroot = os.path.join(work, "htdocs")
    os.makedirs(docroot)
    with open(os.path.join(docroot, "1k.txt"), "wb") as f:
        f.write(b"x" * 1024)
    port = free_port()
    proc = start_server(args.server, work, docroot, port, args.n)
    try:
        base = sorted(wrk_p99(port, args.duration) for _ in range(args.rounds))
        base_p99, base_rps = base[len(base) // 2]
        time.sleep(1)
        before = rss_kib(proc.pid)
        started = time.monotonic()
        sources = [f"127.0.0.{2 + i}" for i in range(args.sources)]
        conns = open_idle(port, args.n, sources)
        opened = time.monotonic() - started
        time.sleep(2)
        after = rss_kib(proc.pid)
        fresh = fresh_latencies(port, args.fresh)
        held = sorted(wrk_p99(port, args.duration) for _ in range(args.rounds))
        held_p99, held_rps = held[len(held) // 2]
        still = rss_kib(proc.pid)
        print(
            f"server: {args.server}, {len(conns)} idle keep-alive connections from "
            f"{len(sources)} source addresses (opened in {opened:.1f} s)"
        )
        print(
            f"RSS: {before} KiB before, {after} KiB with them held "
            f"-> {(after - before) * 1024 / len(conns):.0f} bytes per connection "
            f"({still} KiB after the wrk run)"
        )
        print(
            f"fresh requests while held: p50 {pct(fresh, 0.5):.2f} ms, "
            f"p99 {pct(fresh, 0.99):.2f} ms, max {fresh[-1]:.2f} ms ({len(fresh)} requests)"
        )
        print(
            f"wrk -c50 p99 (median of {args.rounds}): {base_p99} ms without idle "
            f"connections ({base_rps:.0f} req/s), {held_p99} ms with them "
            f"({held_rps:.0f} req/s) -> {(held_p99 or 0) / (base_p99 or 1):.2f}x"
        )
        print(f"  all runs without: {[p for p, _ in base]}; with: {[p for p, _ in held]}")
        for s in conns:
            s.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        stats = os.path.join(work, "gc-stats.txt")
        if os.path.exists(stats):
            with open(stats) as f:
                print("server GC:", f.read().strip())
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
