#!/usr/bin/env python3
"""Static-file throughput: axkit against twisted.web (and nginx, one worker).

Each server serves the same 1 KB and 100 KB files and writes an access log
to a file, as a user would run it; it is pinned to one core (taskset -c 0)
and wrk runs on the other (taskset -c 1).  The servers run one after the
other, each measured for keep-alive and for ``Connection: close``.

    python bench/http_bench.py                 # 10 s per run
    python bench/http_bench.py --duration 5 --connections 50 --skip-nginx

Prints req/s per server and case, the server's CPU time per request (read
from /proc, so other load on the machine matters less) and what one core
would serve at that cost, then the ratios axkit / twisted.web and axkit /
nginx for both.  Needs wrk and taskset (util-linux); nginx is optional.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from benchlib import TWISTD, free_port

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER_CORE = "0"
CLIENT_CORE = "1"


def need_tools(*tools):
    """Stop with a clear line when a command the bench runs is missing."""
    for tool in tools:
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed (apt-get install wrk util-linux)")


def twistd_axkit(work, conf, args=(), env=None, pin=True, log=None, repo=REPO):
    """``twistd -n axkit --config conf`` (this checkout's axkit, or ``repo``'s),
    pinned to SERVER_CORE unless ``pin`` is false, its log in ``work``."""
    cmd = [*TWISTD, "-n", "--pidfile=", *args, "--logfile",
           log or os.path.join(work, "axkit.log"), "axkit", "--config", conf]  # fmt: skip
    if pin:
        cmd = ["taskset", "-c", SERVER_CORE, *cmd]
    base = dict(os.environ, PYTHONPATH=repo + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(cmd, cwd=work, env=dict(base, **(env or {})),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def wait_listening(port, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listening on {port}")


def make_docroot(root):
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "1k.txt"), "wb") as f:
        f.write((b"0123456789abcdef" * 64)[:1024])
    with open(os.path.join(root, "100k.txt"), "wb") as f:
        f.write((b"0123456789abcdef" * 6400)[:102400])


def start_axkit(work, docroot, port, repo=REPO):
    conf = os.path.join(work, "axkit.conf")
    with open(conf, "w") as f:
        f.write(f"""Listen tcp:{port}:interface=127.0.0.1
DocumentRoot "{docroot}"
Include "{REPO}/conf.d/mime.conf"
Plugin uri_to_file
Plugin mime_map
Plugin serve_file
Plugin access_log
AccessLog "{work}/axkit-access.log"
MaxKeepAliveRequests 0
""")
    return twistd_axkit(work, conf, repo=repo)


def start_twisted_web(work, docroot, port):
    return subprocess.Popen(
        [
            "taskset",
            "-c",
            SERVER_CORE,
            *TWISTD,
            "-n",
            "--pidfile=",
            "--logfile",
            os.path.join(work, "tw.log"),
            "web",
            "--listen",
            f"tcp:{port}:interface=127.0.0.1",
            "--path",
            docroot,
            "--logfile",
            os.path.join(work, "tw-access.log"),
        ],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_nginx(work, docroot, port):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        return None
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1;
daemon off;
master_process off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
    access_log {work}/nginx-access.log;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    fastcgi_temp_path {work}/nginx-fastcgi;
    uwsgi_temp_path {work}/nginx-uwsgi;
    scgi_temp_path {work}/nginx-scgi;
    keepalive_requests 1000000;
    sendfile on;
    server {{
        listen 127.0.0.1:{port};
        root {docroot};
    }}
}}
""")
    return subprocess.Popen(
        ["taskset", "-c", SERVER_CORE, nginx, "-c", conf, "-p", work],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def cpu_seconds(pid):
    """User + system CPU time of a process (and its reaped children)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = sum(int(x) for x in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def wrk(url, duration, connections, close, pid=None):
    cmd = [
        "taskset",
        "-c",
        CLIENT_CORE,
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        url,
    ]
    if close:
        cmd[5:5] = ["-H", "Connection: close"]
    before = cpu_seconds(pid) if pid else None
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
    cpu = cpu_seconds(pid) - before if pid else None
    total = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    latency = None
    if p99:
        latency = float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    requests = int(total.group(1)) if total else 0
    cpu_us = cpu / requests * 1e6 if cpu and requests else None
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p99_ms": latency,
        "cpu_us": cpu_us,
        # What one core would serve, busy with this server alone.
        "core_rps": 1e6 / cpu_us if cpu_us else 0.0,
        "non2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--skip-nginx", action="store_true")
    parser.add_argument("--only", choices=["axkit", "twisted.web", "nginx"], action="append")
    parser.add_argument(
        "--rounds", type=int, default=1, help="servers take turns N times; medians are compared"
    )
    parser.add_argument(
        "--base", metavar="CHECKOUT", help="also run another checkout's axkit (as axkit-base)"
    )
    args = parser.parse_args()
    need_tools("wrk", "taskset")

    work = tempfile.mkdtemp(prefix="axkit-bench-")
    docroot = os.path.join(work, "htdocs")
    make_docroot(docroot)
    servers = [("axkit", start_axkit), ("twisted.web", start_twisted_web)]
    if args.base:
        base = os.path.abspath(args.base)
        servers.insert(1, ("axkit-base", lambda w, d, p: start_axkit(w, d, p, repo=base)))
    if not args.skip_nginx:
        servers.append(("nginx", start_nginx))
    if args.only:
        servers = [s for s in servers if s[0] in args.only or s[0] == "axkit-base"]
    cases = [("1k", False), ("1k", True), ("100k", False), ("100k", True)]
    results = {}  # (server, size, close) -> [a wrk result per round]
    try:
        for round_ in range(args.rounds):
            # Taking turns, each round starting one server later: a machine
            # that drifts during the run favours none of them.
            turn = servers[round_ % len(servers) :] + servers[: round_ % len(servers)]
            for name, start in turn:
                run_server(name, start, work, docroot, cases, args, results, round_)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print()
    for size, close in cases:
        label = "close" if close else "keep-alive"
        for name, peer in [("axkit", "twisted.web"), ("axkit", "nginx"), ("axkit", "axkit-base"),
                           ("axkit-base", "nginx")]:  # fmt: skip
            ours, theirs = results.get((name, size, close)), results.get((peer, size, close))
            if not ours or not theirs:
                continue
            pairs = list(zip(ours, theirs, strict=False))
            rate = _median([a["rps"] / b["rps"] for a, b in pairs if b["rps"]])
            per_core = _median([a["core_rps"] / b["core_rps"] for a, b in pairs if b["core_rps"]])
            print(
                f"{name} / {peer:11} {size:>5} {label:11} wrk req/s {rate:6.2f}x   "
                f"per core (CPU time) {per_core:6.2f}x"
                + (" (medians of the rounds' ratios)" if args.rounds > 1 else "")
            )


def _median(values):
    values = sorted(values)
    if not values:
        return float("nan")
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def run_server(name, start, work, docroot, cases, args, results, round_):
    port = free_port()
    proc = start(work, docroot, port)
    if proc is None:
        print(f"{name}: not installed, skipped")
        return
    try:
        wait_listening(port, proc)
        # Warm up (imports, caches), then measure.
        wrk(f"http://127.0.0.1:{port}/1k.txt", 2, args.connections, False)
        for size, close in cases:
            r = wrk(
                f"http://127.0.0.1:{port}/{size}.txt",
                args.duration,
                args.connections,
                close,
                proc.pid,
            )
            results.setdefault((name, size, close), []).append(r)
            label = "close" if close else "keep-alive"
            extra = ""
            if r["non2xx"] or r["socket_errors"]:
                extra = f"  (non-2xx {r['non2xx']}; socket errors {r['socket_errors']})"
            print(
                f"{round_ + 1}: {name:12} {size:>5} {label:11} {r['rps']:8.0f} req/s  "
                f"{r['cpu_us'] or 0:7.1f} us CPU/req = {r['core_rps']:8.0f} "
                f"req/s per core   p99 {r['p99_ms']} ms{extra}",
                flush=True,
            )
    finally:
        stop(proc)


if __name__ == "__main__":
    main()
