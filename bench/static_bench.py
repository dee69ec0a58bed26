#!/usr/bin/env python3
"""Static-file benchmark: axkit against twisted.web and nginx, in one run.

    python bench/static_bench.py                 # everything (about 2 minutes)
    python bench/static_bench.py --only small    # small | big | slow
    python bench/static_bench.py --duration 5 --slow-clients 1000

Each server is pinned to CPU 0 (taskset -c 0) and wrk to CPU 1, one server
at a time; ratios are computed between figures of the same run, since the
machine is shared and absolute numbers drift.

* small: a 1 KiB file, keep-alive, 50 connections (wrk -c50);
* big: a 10 MiB file, 4 connections;
* slow: N clients (default 1000) each reading a 100 MiB file at about
  10 KB/s; reported: the server's RSS before, at its peak, and growth.

axkit runs with uri_to_file, mime_map, serve_file (no access log; nginx runs
with access_log off, twisted.web has no access log by default).
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from benchlib import rss_kib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORTS = {
    "axkit": 28101,
    "twisted.web": 28102,
    "nginx": 28103,
    "axkit-nocache": 28104,
    "axkit-tls": 28105,
}

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir};
    uwsgi_temp_path {dir}; scgi_temp_path {dir};
    server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
"""

AXKIT_CONF = """
Listen tcp:{port}:interface=127.0.0.1
DocumentRoot "{root}"
Include "{repo}/conf.d/mime.conf"
Plugin uri_to_file
Plugin mime_map
Plugin serve_file
MaxConnections 20000
KeepAliveTimeout 120
MaxKeepAliveRequests 0
"""


def wait_port(port, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def start(name, root, work):
    port = PORTS[name]
    env = dict(os.environ)
    if name.startswith("axkit"):
        conf = os.path.join(work, f"{name}.conf")
        with open(conf, "w") as f:
            text = AXKIT_CONF.format(port=port, root=root, repo=REPO)
            if name == "axkit-tls":
                key, cert = os.path.join(work, "key.pem"), os.path.join(work, "cert.pem")
                subprocess.run(
                    [
                        "openssl",
                        "req",
                        "-x509",
                        "-newkey",
                        "rsa:2048",
                        "-nodes",
                        "-keyout",
                        key,
                        "-out",
                        cert,
                        "-days",
                        "2",
                        "-subj",
                        "/CN=localhost",
                    ],
                    check=True,
                    capture_output=True,
                )
                text = text.replace(
                    f"Listen tcp:{port}:interface=127.0.0.1",
                    f'Listen "ssl:{port}:interface=127.0.0.1:privateKey={key}:certKey={cert}"',
                )
            f.write(text)
            if name == "axkit-nocache":
                f.write("FileCache Off\n")
        env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
        cmd = ["twistd", "-n", "--pidfile=", "axkit", "--config", conf]
    elif name == "twisted.web":
        cmd = [
            "twistd",
            "-n",
            "--pidfile=",
            "web",
            "--path",
            root,
            "--listen",
            f"tcp:{port}:interface=127.0.0.1",
        ]
    else:
        ndir = os.path.join(work, "nginx")
        os.makedirs(ndir, exist_ok=True)
        conf = os.path.join(ndir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=ndir, port=port, root=root))
        cmd = ["nginx", "-c", conf, "-p", ndir]
    proc = subprocess.Popen(
        ["taskset", "-c", "0"] + cmd,
        env=env,
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port)
    return proc


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid):
    """User + system CPU time of pid and its children (nginx's worker)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[1] is the parent pid; fields[11], fields[12] utime, stime.
        if int(entry) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def wrk(url, connections, duration, pid=None):
    """(requests per second, server CPU microseconds per request)."""
    cpu_before = cpu_seconds(pid) if pid else 0
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{duration}s", url],
        capture_output=True,
        text=True,
        timeout=duration + 30,
    ).stdout
    cpu = cpu_seconds(pid) - cpu_before if pid else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    if errors:
        print(f"    wrk reported: {errors.group(0)}")
    rps = float(m.group(1)) if m else 0.0
    per_request = cpu / int(n.group(1)) * 1e6 if n and int(n.group(1)) else 0.0
    return rps, per_request


def make_files(root):
    with open(os.path.join(root, "1k.txt"), "wb") as f:
        f.write((b"0123456789abcdef" * 64)[:1024])
    with open(os.path.join(root, "10m.bin"), "wb") as f:
        f.write(os.urandom(10 * 1024 * 1024))
    with open(os.path.join(root, "100m.bin"), "wb") as f:
        block = os.urandom(1024 * 1024)
        for _ in range(100):
            f.write(block)


SLOW_CLIENT = r"""
import selectors, socket, sys, time

port, n, seconds, rate = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
tls = len(sys.argv) > 5 and sys.argv[5] == "tls"
if tls:
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
socks = []
for i in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.connect(("127.0.0.1", port))
    if tls:
        s = ctx.wrap_socket(s)
    s.sendall(b"GET /100m.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    s.setblocking(False)
    socks.append(s)
got = [0] * n
closed = 0
ssl_want = ssl.SSLWantReadError if tls else BlockingIOError
tick = 0.1
per_tick = max(1, int(rate * tick))
end = time.monotonic() + seconds
while time.monotonic() < end:
    t0 = time.monotonic()
    for i, s in enumerate(socks):
        if s is None:
            continue
        try:
            data = s.recv(per_tick)
        except (BlockingIOError, ssl_want if tls else BlockingIOError):
            continue
        except OSError:
            data = b""
        if not data:
            socks[i] = None
            closed += 1
            continue
        got[i] += len(data)
    time.sleep(max(0, tick - (time.monotonic() - t0)))
total = sum(got)
print(f"{n - closed} {total}")
"""


def slow_readers(root, work, clients, seconds, tls=False):
    proc = start("axkit-tls" if tls else "axkit", root, work)
    try:
        time.sleep(1)
        before = rss_kib(proc.pid)
        port = PORTS["axkit-tls" if tls else "axkit"]
        client = subprocess.Popen(
            [
                "taskset",
                "-c",
                "1",
                sys.executable,
                "-c",
                SLOW_CLIENT,
                str(port),
                str(clients),
                str(seconds),
                "10240",
            ]
            + (["tls"] if tls else []),
            stdout=subprocess.PIPE,
            text=True,
        )
        peak = before
        while client.poll() is None:
            peak = max(peak, rss_kib(proc.pid))
            time.sleep(0.5)
        alive, total = client.stdout.read().split()
        after = rss_kib(proc.pid)
        peak = max(peak, after)
        rate = int(total) / seconds / clients
        print(
            f"  slow readers{' over TLS' if tls else ''}: {clients} clients x {seconds}s, "
            f"{alive} still connected, "
            f"about {rate / 1024:.1f} KiB/s each"
        )
        print(
            f"  axkit RSS: before {before / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB, "
            f"growth {(peak - before) / 1024:.1f} MiB "
            f"({(peak - before) / clients:.1f} KiB per slow client)"
        )
        return peak - before
    finally:
        stop(proc)


def raise_fd_limit():
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main():
    raise_fd_limit()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("small", "big", "slow", "slow-tls"))
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run each server this many times, keep its best figure",
    )
    parser.add_argument("--slow-clients", type=int, default=1000)
    parser.add_argument("--slow-seconds", type=int, default=30)
    parser.add_argument(
        "--servers",
        default="axkit,twisted.web,nginx",
        help="comma-separated; axkit-nocache = axkit with FileCache Off",
    )
    args = parser.parse_args()
    for tool in ("wrk", "taskset", "twistd"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is required")
    servers = [s for s in args.servers.split(",") if s != "nginx" or shutil.which("nginx")]
    work = tempfile.mkdtemp(prefix="axkit-bench-")
    os.chmod(work, 0o755)  # nginx workers run as nobody
    root = os.path.join(work, "htdocs")
    os.makedirs(root)
    try:
        make_files(root)
        results = {}
        cpus = {}
        for test, path, conns in (("small", "/1k.txt", 50), ("big", "/10m.bin", 4)):
            if args.only and args.only != test:
                continue
            print(f"{test}: GET {path}, {conns} connections, {args.duration}s")
            for round_ in range(args.rounds):
                # Servers take turns, round after round; each keeps its best
                # figure (the machine is shared: the best is the least disturbed).
                for name in servers:
                    proc = start(name, root, work)
                    try:
                        wrk(f"http://127.0.0.1:{PORTS[name]}{path}", conns, 2)  # warm up
                        rps, cpu = wrk(
                            f"http://127.0.0.1:{PORTS[name]}{path}", conns, args.duration, proc.pid
                        )
                    finally:
                        stop(proc)
                    results[(test, name)] = max(rps, results.get((test, name), 0))
                    if cpu:
                        cpus[(test, name)] = min(cpu, cpus.get((test, name), cpu))
                    print(
                        f"  {name:14s} {rps:10.0f} req/s  {cpu:8.1f} us CPU/request"
                        f"  (round {round_ + 1})"
                    )
            for name in servers:
                print(
                    f"  best {name:14s} {results[(test, name)]:10.0f} req/s"
                    f"  {cpus.get((test, name), 0):8.1f} us CPU/request"
                )
            ax = results.get((test, "axkit"))
            for peer in ("twisted.web", "nginx", "axkit-nocache"):
                if ax and results.get((test, peer)):
                    line = f"  axkit / {peer}: {ax / results[(test, peer)]:.2f}x req/s"
                    if cpus.get((test, "axkit")) and cpus.get((test, peer)):
                        line += (
                            f", {cpus[(test, peer)] / cpus[(test, 'axkit')]:.2f}x "
                            f"by CPU per request"
                        )
                    print(line)
        if not args.only or args.only == "slow":
            slow_readers(root, work, args.slow_clients, args.slow_seconds)
        if args.only == "slow-tls":
            slow_readers(root, work, args.slow_clients, args.slow_seconds, tls=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
