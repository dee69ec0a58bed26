#!/usr/bin/env python3
"""Idle keep-alive connections: server memory per connection and latency.

Starts a server (axkit by default, or twisted.web with ``--server
twisted.web``; with ``--workers N`` axkit's ``Workers N``), then:

1. wrk's p99 with no idle connections (baseline; ``--rounds 0`` skips wrk);
2. opens N keep-alive connections from client processes (``--clients``,
   each under the per-process open-file limit), each from its own
   127.0.0.x source addresses (one address gives about 28,000 ephemeral
   ports: net.ipv4.ip_local_port_range), sends one request on each, reads
   the answer, and holds them open;
3. reports the server's RSS growth per connection (summed over the
   supervisor and its workers), the kernel's TCP memory, how the
   connections spread over the workers, the latency of fresh requests (a
   new connection each) while they are held, and wrk's p99 while they are
   held.

    python bench/idle_connections.py                  # 19,000, one process
    python bench/idle_connections.py -n 100000 --workers 6 --rounds 0
    python bench/idle_connections.py -n 5000 --server twisted.web

The hard open-file limit here is 20,000 per process: one server process
holds at most about 19,500, so 100,000 need 6 workers (and 6 client
processes). One server process is pinned to core 0 and the clients to core
1; workers and their clients share both cores.
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


def start_server(kind, work, docroot, port, n, workers=1):
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
MaxConnections {min(n + 500, 19500)}
{f"Workers {workers}" if workers > 1 else ""}
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
    pin = ["taskset", "-c", "0"] if workers == 1 else []
    proc = subprocess.Popen(
        [*pin, *cmd],
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


def cpu_seconds(pids):
    """User + system CPU seconds of ``pids`` so far (a figure a busy
    machine does not inflate the way it inflates latencies)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def pct(values, p):
    return values[min(len(values) - 1, int(len(values) * p))]


def server_pids(pid):
    """``pid`` and its descendants (a supervisor and its workers)."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except FileNotFoundError:
            pass
    return pids


def python_pids(pid):
    """The server's Python processes (not a taskset or the log opener)."""
    out = []
    for p in server_pids(pid):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except FileNotFoundError:
            continue
        if any(b"axkit.logopener" in c for c in cmd):
            continue
        out.append(p)
    return out


def open_sockets(pid):
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    n += 1
            except OSError:
                pass
    except FileNotFoundError:
        pass
    return n


def slab_kib():
    """The kernel's slab memory (socket structures of both ends live
    there; machine-wide, so other work on the machine moves it too)."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Slab:"):
                return int(line.split()[1])
    return 0


def kernel_limits():
    def read(path):
        try:
            with open(path) as f:
                return f.read().split()
        except OSError:
            return ["?"]

    return {
        "ulimit -n (hard)": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
        "fs.nr_open": read("/proc/sys/fs/nr_open")[0],
        "fs.file-max": read("/proc/sys/fs/file-max")[0],
        "net.ipv4.ip_local_port_range": "-".join(read("/proc/sys/net/ipv4/ip_local_port_range")),
        "net.core.somaxconn": read("/proc/sys/net/core/somaxconn")[0],
        "net.netfilter.nf_conntrack_max": read("/proc/sys/net/netfilter/nf_conntrack_max")[0],
    }


def client_role(port, n, sources):
    """A client process: open ``n`` connections, say so, hold them until
    stdin closes or says "close"."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    started = time.monotonic()
    conns = open_idle(port, n, sources)
    print(f"opened {len(conns)} {time.monotonic() - started:.1f}", flush=True)
    import sys

    sys.stdin.readline()
    for s in conns:
        s.close()


def start_clients(port, n, clients, sources_per_client, first_source):
    """``clients`` client processes sharing ``n`` connections; each its own
    source addresses.  Returns the processes once all have opened theirs."""
    import sys

    procs = []
    share = [n // clients + (1 if i < n % clients else 0) for i in range(clients)]
    for i in range(clients):
        sources = [
            f"127.0.0.{first_source + i * sources_per_client + j}"
            for j in range(sources_per_client)
        ]
        cmd = [sys.executable, os.path.abspath(__file__), "--client-role", str(port)]
        cmd += [str(share[i]), *sources]
        pin = ["taskset", "-c", "1"] if clients == 1 else []
        procs.append(
            subprocess.Popen([*pin, *cmd], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        )
    opened = []
    for proc in procs:
        line = proc.stdout.readline().split()
        if not line or line[0] != "opened":
            raise SystemExit(f"a client failed to open its connections (exit {proc.poll()})")
        opened.append((int(line[1]), float(line[2])))
    return procs, opened


def stop_clients(procs):
    for proc in procs:
        try:
            proc.stdin.write("close\n")
            proc.stdin.close()
        except BrokenPipeError:
            pass
    for proc in procs:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def main():
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == "--client-role":
        return client_role(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=19000)
    parser.add_argument("--server", choices=["axkit", "twisted.web"], default="axkit")
    parser.add_argument("--workers", type=int, default=1, help="axkit's Workers N")
    parser.add_argument(
        "--clients",
        type=int,
        default=0,
        help="client processes (default: enough for the open-file limit)",
    )
    parser.add_argument(
        "--sources", type=int, default=2, help="source addresses per client process"
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--fresh", type=int, default=300)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="wrk runs with and without the idle connections (medians "
        "are reported: the machine may be shared); 0: no wrk",
    )
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    per_process = hard - 300
    clients = args.clients or -(-args.n // per_process)
    if -(-args.n // clients) > per_process:
        raise SystemExit(f"{args.n} connections over {clients} clients pass the open-file limit")
    if args.server == "axkit" and -(-args.n // args.workers) > 19500:
        raise SystemExit(f"-n {args.n} needs more than {args.workers} worker(s) (19,500 each)")
    for name, value in kernel_limits().items():
        print(f"{name}: {value}")

    work = tempfile.mkdtemp(prefix="axkit-idle-")
    docroot = os.path.join(work, "htdocs")
    os.makedirs(docroot)
    with open(os.path.join(docroot, "1k.txt"), "wb") as f:
        f.write(b"x" * 1024)
    port = free_port()
    proc = start_server(args.server, work, docroot, port, args.n, args.workers)
    procs = []
    try:
        deadline = time.monotonic() + 30
        expected = 1 if args.workers == 1 else args.workers + 1  # and a supervisor
        while len(python_pids(proc.pid)) < expected and time.monotonic() < deadline:
            time.sleep(0.2)
        # Workers exist before they accept: a connection hashed to one not
        # yet listening waits in its backlog.  Warm every one up first.
        time.sleep(3)
        fresh_latencies(port, 50 * expected)
        pids = python_pids(proc.pid)
        cpu = cpu_seconds(pids)
        fresh_before = fresh_latencies(port, args.fresh)
        cpu_before = (cpu_seconds(pids) - cpu) / len(fresh_before)
        base = sorted(wrk_p99(port, args.duration) for _ in range(args.rounds))
        base_p99, base_rps = base[len(base) // 2] if base else (None, 0.0)
        time.sleep(1)
        pids = python_pids(proc.pid)
        before = sum(rss_kib(p) for p in pids)
        kernel_before = slab_kib()
        started = time.monotonic()
        procs, opened = start_clients(port, args.n, clients, args.sources, 2)
        took = time.monotonic() - started
        held_count = sum(n for n, _ in opened)
        time.sleep(2)
        pids = python_pids(proc.pid)
        after = sum(rss_kib(p) for p in pids)
        kernel_after = slab_kib()
        spread = sorted((open_sockets(p) for p in pids), reverse=True)
        cpu = cpu_seconds(pids)
        time.sleep(5)
        idle_cpu = (cpu_seconds(pids) - cpu) / 5
        cpu = cpu_seconds(pids)
        fresh = fresh_latencies(port, args.fresh)
        cpu_held = (cpu_seconds(pids) - cpu) / len(fresh)
        held = sorted(wrk_p99(port, args.duration) for _ in range(args.rounds))
        held_p99, held_rps = held[len(held) // 2] if held else (None, 0.0)
        still = sum(rss_kib(p) for p in python_pids(proc.pid))
        print(
            f"server: {args.server}, workers {args.workers} ({len(pids)} processes), "
            f"{held_count} idle keep-alive connections from {clients} client processes x "
            f"{args.sources} source addresses (opened in {took:.1f} s)"
        )
        print(f"sockets open per server process (listening ones included): {spread}")
        print(
            f"server RSS (sum): {before} KiB before, {after} KiB with them held "
            f"-> {(after - before) * 1024 / held_count:.0f} bytes per connection "
            f"({still} KiB after the fresh requests and wrk)"
        )
        print(
            f"kernel slab (machine-wide): {kernel_before} KiB -> {kernel_after} KiB "
            f"({(kernel_after - kernel_before) * 1024 / held_count:.0f} bytes per "
            "connection, both ends)"
        )
        print(
            f"fresh requests while held: p50 {pct(fresh, 0.5):.2f} ms, "
            f"p99 {pct(fresh, 0.99):.2f} ms, max {fresh[-1]:.2f} ms ({len(fresh)} requests)"
        )
        print(
            f"fresh requests before: p50 {pct(fresh_before, 0.5):.2f} ms, "
            f"p99 {pct(fresh_before, 0.99):.2f} ms"
        )
        print(
            f"server CPU per fresh request: {cpu_before * 1e6:.0f} us without the idle "
            f"connections, {cpu_held * 1e6:.0f} us while they are held "
            f"({cpu_held / (cpu_before or 1e-9):.2f}x); while they sit idle: "
            f"{idle_cpu * 100:.2f}% of a core"
        )
        if args.rounds:
            print(
                f"wrk -c50 p99 (median of {args.rounds}): {base_p99} ms without idle "
                f"connections ({base_rps:.0f} req/s), {held_p99} ms with them "
                f"({held_rps:.0f} req/s) -> {(held_p99 or 0) / (base_p99 or 1):.2f}x"
            )
            print(f"  all runs without: {[p for p, _ in base]}; with: {[p for p, _ in held]}")
    finally:
        stop_clients(procs)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        stats = os.path.join(work, "gc-stats.txt")
        if os.path.exists(stats):
            with open(stats) as f:
                print("server GC:", f.read().strip())
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
