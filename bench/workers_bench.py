#!/usr/bin/env python3
"""Workers: ``Workers 2`` against ``Workers 1`` on a CPU-bound path, and how
evenly the workers share the load with each way of sharing a listener.

    flock /tmp/axkit-bench.lock python bench/workers_bench.py
    flock /tmp/axkit-bench.lock python bench/workers_bench.py --duration 10 --rounds 2

The CPU-bound path: a 256 KB text file gzip'd on the fly at level 9 (the
compress plugin, a block at a time: nothing is cached), fetched by wrk
with keep-alive on loopback.  For each listener mode (``reuseport``: one
SO_REUSEPORT socket per worker; ``shared``: one socket every worker
accepts from; $AXKIT_WORKERS_SOCKETS) the servers run one after the other:
Workers 1, then Workers 2, in the same run.

Printed per run: requests/s, the server's CPU time per request (supervisor
and workers, from /proc: what a core's worth of requests costs, whatever
else the machine is doing), each worker's share of the requests (from the
access log's %P), and the ratios Workers 2 / Workers 1 -- of the rates and
of the CPU per request.  wrk runs unpinned: on a 2-core machine it takes
CPU from the workers, so the rate ratio is a lower bound of what two cores
of server give; the CPU per request says whether a worker costs more.

A second case, a small file at high rate (many short requests), shows the
balance of the two modes where accepting dominates.  ``--reload``: three
SIGHUPs while wrk runs, and what wrk counted as failed.
"""

import argparse
import collections
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

from benchlib import REPO, TWISTD, free_port

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / CLK_TCK


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def make_site(work, workers, port):
    root = os.path.join(work, "htdocs")
    os.makedirs(root, exist_ok=True)
    words = (
        "axkit serves static files and applications over HTTP with a supervisor "
        "and workers that share the listening sockets of the configuration "
    ).split()
    import random

    rng = random.Random(17)
    with open(os.path.join(root, "big.txt"), "w") as f:
        size = 0
        while size < 256 * 1024:
            line = " ".join(rng.choice(words) for _ in range(12)) + f" {size}\n"
            f.write(line)
            size += len(line)
    with open(os.path.join(root, "small.txt"), "w") as f:
        f.write("hello\n" * 20)
    conf = os.path.join(work, f"w{workers}.conf")
    with open(conf, "w") as f:
        f.write(f"""Listen tcp:{port}:interface=127.0.0.1
Workers {workers}
DocumentRoot htdocs
Plugin uri_to_file
Plugin mime_map
Plugin compress
Plugin serve_file
Plugin access_log
Gzip On
GzipCompLevel 9
AccessLog {work}/access-{workers}.log "%P"
""")
    return conf


def start(work, conf, mode):
    env = dict(os.environ, AXKIT_WORKERS_SOCKETS=mode)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [*TWISTD, "-n", "--pidfile=", "axkit", "--config", conf]
    out = open(os.path.join(work, "axkit.log"), "ab")  # the supervisor's (and workers') log
    return subprocess.Popen(cmd, cwd=work, env=env, stdout=out, stderr=out)


def wait_ready(port, proc, workers, timeout=30):
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            if workers == 1 or len(children(proc.pid)) >= workers:
                time.sleep(0.5)  # every worker accepting
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"nothing listening on {port}")


def wrk(url, duration, connections, gzip):
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", url]
    if gzip:
        cmd[1:1] = ["-H", "Accept-Encoding: gzip"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
    total = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": int(total.group(1)) if total else 0,
        "rps": float(rps.group(1)) if rps else 0.0,
        "errors": (errors.group(1) if errors else "")
        + (f" non2xx {non2xx.group(1)}" if non2xx else ""),
    }


def shares(log_path, skip):
    """Requests per pid in the access log past byte ``skip``."""
    with open(log_path) as f:
        f.seek(skip)
        counts = collections.Counter(line.strip() for line in f if line.strip())
    return counts


def run(work, workers, mode, case, duration, connections):
    port = free_port()
    conf = make_site(work, workers, port)
    log_path = os.path.join(work, f"access-{workers}.log")
    if os.path.exists(log_path):
        os.remove(log_path)
    proc = start(work, conf, mode)
    try:
        wait_ready(port, proc, workers)
        pids = [proc.pid, *children(proc.pid)]
        # A short warm-up, then the measured run.
        wrk(f"http://127.0.0.1:{port}/{case}.txt", 1, connections, True)
        time.sleep(1.2)  # the access log is flushed every second
        skip = os.path.getsize(log_path) if os.path.exists(log_path) else 0
        before, started = cpu_seconds(pids), time.monotonic()
        result = wrk(f"http://127.0.0.1:{port}/{case}.txt", duration, connections, True)
        used = cpu_seconds(pids) - before
        result["cpu_us"] = used / max(1, result["requests"]) * 1e6
        result["cores"] = used / (time.monotonic() - started)  # server CPU s per second
        time.sleep(1.5)
        result["shares"] = sorted(shares(log_path, skip).values(), reverse=True)
        return result
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def reload_under_load(work, duration, connections, reloads=3):
    """wrk on the small file with keep-alive while the supervisor gets
    ``reloads`` SIGHUPs: what wrk counts as failed (socket errors, non-2xx)."""
    port = free_port()
    conf = make_site(work, 2, port)
    proc = start(work, conf, "reuseport")
    try:
        wait_ready(port, proc, 2)
        import threading

        def hup():
            for _ in range(reloads):
                time.sleep(duration / (reloads + 1))
                proc.send_signal(signal.SIGHUP)

        sender = threading.Thread(target=hup)
        sender.start()
        result = wrk(f"http://127.0.0.1:{port}/small.txt", duration, connections, False)
        sender.join()
        with open(os.path.join(work, "axkit.log")) as f:
            result["reloaded"] = f.read().count("reloaded: 2 workers")
        return result
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def describe(r):
    s = r["shares"]
    balance = f"max/min share {s[0] / s[-1]:.2f}" if len(s) > 1 and s[-1] else ""
    return (
        f"{r['rps']:8.1f} req/s  {r['cpu_us']:8.0f} us CPU/req  {r['cores']:.2f} cores busy  "
        f"shares {s} {balance}"
        f"{'  errors: ' + r['errors'] if r['errors'] else ''}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--modes", default="reuseport,shared")
    parser.add_argument("--cases", default="big,small")
    parser.add_argument("--reload", action="store_true", help="SIGHUPs under load instead")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="axkit-workers-bench-")
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores, shared)")
    print("(cores busy: the server's CPU seconds per second of the run; what it")
    print(" could get of the machine, beside wrk and everything else running)")
    if args.reload:
        r = reload_under_load(work, args.duration, args.connections)
        print(
            f"SIGHUP x3 under wrk -c{args.connections} keep-alive, Workers 2: "
            f"{r['requests']} requests, {r['rps']:.0f} req/s, reloads done {r['reloaded']}, "
            f"failed: {r['errors'] or 'none'}"
        )
        return
    for case in args.cases.split(","):
        for mode in args.modes.split(","):
            best = {1: 0.0, 2: 0.0}
            for round_ in range(args.rounds):
                one = run(work, 1, mode, case, args.duration, args.connections)
                two = run(work, 2, mode, case, args.duration, args.connections)
                best[1], best[2] = max(best[1], one["rps"]), max(best[2], two["rps"])
                print(f"{case} {mode} round {round_ + 1}")
                print(f"  Workers 1: {describe(one)}")
                print(f"  Workers 2: {describe(two)}")
                print(
                    f"  rate ratio W2/W1 {two['rps'] / max(one['rps'], 1e-9):.2f}, "
                    f"CPU per request W2/W1 {two['cpu_us'] / max(one['cpu_us'], 1e-9):.2f}"
                )
                sys.stdout.flush()
            if args.rounds > 1:
                # Each server's best round: the one least disturbed by the
                # rest of the machine.
                print(
                    f"{case} {mode} best of {args.rounds}: Workers 1 {best[1]:.1f} req/s, "
                    f"Workers 2 {best[2]:.1f} req/s, ratio {best[2] / max(best[1], 1e-9):.2f}"
                )


if __name__ == "__main__":
    main()
