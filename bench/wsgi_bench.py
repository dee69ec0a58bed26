#!/usr/bin/env python3
"""Hello-world WSGI requests per second: axkit beside gunicorn and Twisted.

The same application (a 13-byte text answer with its Content-Length) is
served by

* axkit: ``twistd -n axkit`` with ``WSGIScriptAlias /`` and WSGIThreads 4;
* gunicorn: ``--worker-class gthread --workers 1 --threads 4``;
* Twisted's ``WSGIResource`` (twisted.web, its default thread pool; its
  access log off unless --twisted-access-log, as the others write none);

each server pinned to core 0 (``taskset``), wrk pinned to core 1
(``wrk -t1 -c32``), keep-alive.  Each is warmed up (2 s, not counted),
then loaded for a few rounds in turn; the report gives every round, the
medians, the CPU time each server used per request, and the ratios.
Targets (issue 14): axkit >= 2x gunicorn gthread, >= 3x WSGIResource.

    python bench/wsgi_bench.py                       # 3 rounds of 5 s
    python bench/wsgi_bench.py --duration 10 --rounds 2

A last check serves 1 GiB from a generator to a client reading slowly
and reports how much the server's RSS grew (target: < 64 MiB); skip it
with --no-rss.  Nothing here runs in CI.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchlib import REPO, TWISTD, free_port, rss_kib

APP = '''
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", "13")])
    return [b"Hello, world!"]


def big(environ, start_response):
    """1 GiB in 64 KiB pieces (the RSS check)."""
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(1 << 30))])
    piece = b"x" * 65536
    for _ in range((1 << 30) // 65536):
        yield piece
'''

TWISTED_WEB = """
import sys
from twisted.internet import reactor
from twisted.web.server import Site
from twisted.web.wsgi import WSGIResource
sys.path.insert(0, sys.argv[2])
from helloapp import application
resource = WSGIResource(reactor, reactor.getThreadPool(), application)
site = Site(resource)
site.displayTracebacks = False
if sys.argv[3] == "quiet":
    site.log = lambda request: None      # no access log (as the others)
reactor.listenTCP(int(sys.argv[1]), site, interface="127.0.0.1")
reactor.run()
"""


ACCESS_LOG = False  # --twisted-access-log: Site's default access log on


def wait_ready(url, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.read() == b"Hello, world!":
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not answer within {timeout}s")


def start(name, work, port, core):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, work]))
    pin = ["taskset", "-c", str(core)] if shutil.which("taskset") else []
    if name == "axkit":
        conf = os.path.join(work, "axkit.conf")
        with open(conf, "w") as f:
            f.write(
                f"Listen tcp:{port}:interface=127.0.0.1\n"
                "Plugin axkit.plugins.wsgi.WSGI\n"
                "WSGIThreads 4\n"
                "WSGIScriptAlias /big helloapp:big\n"
                f"WSGIScriptAlias / {work}/helloapp.py\n"
            )
        cmd = TWISTD + ["-n", "--pidfile=", "axkit", "--config", conf]
    elif name == "gunicorn":
        cmd = [
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
    else:
        script = os.path.join(work, "twisted_web.py")
        with open(script, "w") as f:
            f.write(TWISTED_WEB)
        cmd = [sys.executable, script, str(port), work, "logged" if ACCESS_LOG else "quiet"]
    log = open(os.path.join(work, f"{name}.log"), "wb")
    proc = subprocess.Popen(pin + cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
    wait_ready(f"http://127.0.0.1:{port}/")
    return proc


def server_pids(proc):
    """The server process and its children (gunicorn's worker)."""
    pids = [proc.pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == proc.pid:
                pids.append(int(entry))
    return pids


def cpu_seconds(pids):
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


def wrk(port, duration, core, connections=32):
    pin = ["taskset", "-c", str(core)] if shutil.which("taskset") else []
    out = subprocess.run(
        pin + ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    total = int(re.search(r"(\d+) requests in", out)[1])
    return (
        rate,
        total,
        (errors[1] if errors else "0"),
        (socket_errors[1] if socket_errors else "none"),
    )


def rss_check(port, proc):
    """Read 1 GiB slowly (small receive buffer, ~100 MB/s at most)."""
    before = rss_kib(proc.pid)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    got = 0
    peak = before
    last = time.monotonic()
    while True:
        data = s.recv(65536)
        if not data:
            break
        got += len(data)
        time.sleep(0.0005)  # slower than the generator
        if time.monotonic() - last > 0.2:
            peak = max(peak, rss_kib(proc.pid))
            last = time.monotonic()
    s.close()
    return got, before, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-rss", action="store_true")
    parser.add_argument("--servers", default="axkit,gunicorn,twisted")
    parser.add_argument(
        "--twisted-access-log",
        action="store_true",
        help="keep twisted.web Site's default access log (off by "
        "default: none of the others writes one)",
    )
    args = parser.parse_args()
    global ACCESS_LOG
    ACCESS_LOG = args.twisted_access_log
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed (apt-get install wrk)")
    names = args.servers.split(",")
    work = tempfile.mkdtemp(prefix="axkit-wsgi-bench-")
    with open(os.path.join(work, "helloapp.py"), "w") as f:
        f.write(APP)
    results = {name: [] for name in names}
    cpu = {name: [] for name in names}
    for round_ in range(args.rounds):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            port = free_port()
            proc = start(name, work, port, core=0)
            try:
                wrk(port, 2, core=1)  # warm-up
                pids = server_pids(proc)
                used = cpu_seconds(pids)
                rate, total, errors, sock = wrk(port, args.duration, core=1)
                used = cpu_seconds(pids) - used
                results[name].append(rate)
                cpu[name].append(used / total * 1e6)
                print(
                    f"round {round_ + 1}: {name:9s} {rate:9.0f} req/s  "
                    f"{used / total * 1e6:6.0f} us CPU/request  non-2xx {errors}  "
                    f"socket errors {sock}",
                    flush=True,
                )
                if name == "axkit" and round_ == 0 and not args.no_rss:
                    got, before, peak = rss_check(port, proc)
                    print(
                        f"         axkit: 1 GiB to a slow reader ({got >> 20} MiB "
                        f"read): RSS {before // 1024} -> peak {peak // 1024} MiB "
                        f"(+{(peak - before) // 1024} MiB)",
                        flush=True,
                    )
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    print()
    medians = {name: statistics.median(rates) for name, rates in results.items()}
    for name in names:
        print(
            f"{name:9s} median {medians[name]:9.0f} req/s, "
            f"{statistics.median(cpu[name]):6.0f} us CPU/request"
        )
    if "axkit" in medians:
        for other in names:
            if other != "axkit":
                print(f"axkit / {other}: {medians['axkit'] / medians[other]:.2f}x")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
