#!/usr/bin/env python3
"""Per-request cost of the real proxy: instructions (callgrind), system
calls (strace) or a cProfile of ``twistd -n axkit`` proxying 1 KiB GETs.

server_hotpath.py's method with proxy_bench.py's setup: a keep-alive
backend (nginx serving a 1 KiB file, else axkit), axkit with ``Plugin
proxy`` and ``ProxyPass / http://127.0.0.1:PORT/ max=64`` under valgrind
with instrumentation off; one client in another process sends N requests
on one keep-alive connection while collection is on.  Only axkit's
process is counted (the backend and the client are not).  Deterministic
enough to compare two trees on a busy machine.

    python bench/proxy_server_hotpath.py            # callgrind, 300 requests
    python bench/proxy_server_hotpath.py --strace
    python bench/proxy_server_hotpath.py --profile --top 30
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import server_hotpath as sh
from benchlib import REPO, free_port
from proxy_bench import start_backend


def _config(backend):
    # (server_hotpath formats its configs with repo= and work=: no braces here.)
    return f"Plugin proxy\nProxyPass / http://127.0.0.1:{backend}/ max=64\n"


def _start(work, root, backend, wrapper, profile=None):
    sh.CONFIGS["proxy"] = _config(backend)
    return sh.start(work, root, free_port_for(work), "proxy", wrapper, profile)


def free_port_for(work):
    port = free_port()
    with open(os.path.join(work, "port"), "w") as f:
        f.write(str(port))
    return port


def _port(work):
    with open(os.path.join(work, "port")) as f:
        return int(f.read())


def _client(work, n):
    sh.run_client(_port(work), "1k-keep", n)


def callgrind(work, root, backend, n):
    out = os.path.join(work, "callgrind.out")
    wrapper = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    proc = _start(work, root, backend, wrapper)

    def control(*args):
        subprocess.run(["callgrind_control", *args, str(proc.pid)], capture_output=True)

    try:
        _client(work, 30)  # warm up (imports, caches, the backend connection)
        control("-i", "on")
        _client(work, n)
        control("-i", "off")
        control("--dump=proxy")
        return sh.dump_total(f"{out}.1") / n
    finally:
        sh.stop(proc)


def strace(work, root, backend, n):
    proc = _start(work, root, backend, [])
    try:
        _client(work, 30)
        out = os.path.join(work, "strace.out")
        tracer = subprocess.Popen(
            ["strace", "-c", "-f", "-o", out, "-p", str(proc.pid)], stderr=subprocess.DEVNULL
        )
        time.sleep(1)
        _client(work, n)
        time.sleep(0.3)
        tracer.send_signal(2)
        tracer.wait(timeout=30)
    finally:
        sh.stop(proc)
    calls = {}
    with open(out) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and parts[3].isdigit() and parts[-1] != "total":
                calls[parts[-1]] = int(parts[3]) / n
    return calls


def profile(work, root, backend, n, top):
    import pstats

    out = os.path.join(work, "profile.out")
    proc = _start(work, root, backend, [], profile=out)
    try:
        _client(work, 30)
        _client(work, n)
    finally:
        sh.stop(proc)
    print(f"cProfile, {n} proxied requests (per request)")
    stats = pstats.Stats(out)
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])
    for (path, line, name), (_, calls, own, total, _) in rows[:top]:
        where = os.path.relpath(path, REPO) if path.startswith(REPO) else os.path.basename(path)
        print(f"  {own / n * 1e6:7.2f} us own {total / n * 1e6:8.2f} us total "
              f"{calls / n:6.2f} calls  {where}:{line}({name})")  # fmt: skip


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=300, help="requests")
    ap.add_argument("--strace", action="store_true", help="count system calls instead")
    ap.add_argument("--profile", action="store_true", help="cProfile the server instead")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--annotate", action="store_true", help="callgrind_annotate's top functions")
    args = ap.parse_args()
    tools = ("strace",) if args.strace else () if args.profile else ("valgrind",)
    for tool in tools:
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed")
    work = tempfile.mkdtemp()
    backend = free_port()
    proc = start_backend(work, backend)
    try:
        root = os.path.join(work, "root")  # (start_backend made it)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", backend), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        if args.profile:
            profile(work, root, backend, args.n, args.top)
        elif args.strace:
            calls = strace(work, root, backend, args.n)
            shown = ", ".join(
                f"{name} {count:.2f}"
                for name, count in sorted(calls.items(), key=lambda kv: -kv[1])
                if count >= 0.05
            )
            print(f"proxy 1k-keep {sum(calls.values()):5.1f} calls/request: {shown}")
        else:
            per = callgrind(work, root, backend, args.n)
            print(f"proxy 1k-keep {per:9.0f} instructions per request")
            if args.annotate:
                out = os.path.join(work, "callgrind.out.1")
                subprocess.run(["callgrind_annotate", "--inclusive=no", out], check=False)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
