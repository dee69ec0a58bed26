"""Per-request cost of a real server on every static path: instructions
(callgrind) and system calls (strace) per request of ``twistd -n axkit``.

hotpath.py measures the engine in memory; this runs the real server (its
reactor, sockets, the kernel's side of sendfile) under ``valgrind
--tool=callgrind`` with instrumentation off, warms it up, switches
collection on (``callgrind_control -i on``) only while a client in another
process sends N requests, and reads the instructions of that window: exact
enough to compare two trees on a busy machine, start-up excluded.  With
``--strace`` it instead counts the server's system calls per request
(``strace -c -f``): how many sends, ``epoll_ctl``\\ s and ``sendfile``\\ s a
response costs.

    python bench/server_hotpath.py                       # every case
    python bench/server_hotpath.py --cases 100k-keep,1k-close -n 300
    python bench/server_hotpath.py --strace
    python bench/server_hotpath.py --config default --cases 1k-keep

Cases: ``1k-keep``, ``1k-close``, ``100k-keep``, ``100k-close``,
``10m-keep`` (one client, one request at a time: the figures are per
request, without wrk's batching).  The config is http_bench.py's
(uri_to_file, mime_map, serve_file, access_log to a file), with ``--config
static`` static_bench.py's (the same without the access log) or, with
``--config default``, the built-in default one.  Kernel work is not in
callgrind's count (strace shows the calls; their time is in /proc).
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

from benchlib import REPO, TWISTD, free_port

CASES = {
    "1k-keep": ("/1k.txt", True, 1024),
    "1k-close": ("/1k.txt", False, 1024),
    "100k-keep": ("/100k.txt", True, 102400),
    "100k-close": ("/100k.txt", False, 102400),
    "10m-keep": ("/10m.bin", True, 10 * 1024 * 1024),
}

CONFIGS = {
    "bench": """Include "{repo}/conf.d/mime.conf"
Plugin uri_to_file
Plugin mime_map
Plugin serve_file
Plugin access_log
AccessLog "{work}/access.log"
""",
    # The minimal static config (static_bench.py's): no access log.
    "static": """Include "{repo}/conf.d/mime.conf"
Plugin uri_to_file
Plugin mime_map
Plugin serve_file
""",
    # The built-in default config (axkit/defaults/default.conf), its access
    # log to a file instead of stdout.
    "default": """Include "{repo}/axkit/defaults/mime.conf"
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


def client(port, path, n, keep):
    """(In the client process.)  ``n`` GETs of ``path``, each read whole."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()

    def read_response(sock, buf):
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(1 << 20)
        head, _, rest = buf.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        while len(rest) < length:
            data = sock.recv(1 << 20)
            if not data:
                raise SystemExit("response cut short")
            rest += data
        return rest[length:]

    if keep:
        sock = socket.create_connection(("127.0.0.1", port))
        buf = b""
        for _ in range(n):
            sock.sendall(request + b"\r\n")
            buf = read_response(sock, buf)
        sock.close()
    else:
        for _ in range(n):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(request + b"Connection: close\r\n\r\n")
            read_response(sock, b"")
            while sock.recv(65536):
                pass
            sock.close()


def run_client(port, case, n):
    path, keep, _ = CASES[case]
    subprocess.run(
        [sys.executable, __file__, "--client", str(port), path, str(n), "1" if keep else "0"],
        check=True,
        timeout=600,
    )


def make_root(work):
    root = os.path.join(work, "root")
    os.makedirs(root)
    for path, _, size in CASES.values():
        name = os.path.join(root, path[1:])
        if not os.path.exists(name):
            with open(name, "wb") as f:
                f.write(b"x" * size)
    return root


def start(work, root, port, config, wrapper, profile=None):
    conf = os.path.join(work, "axkit.conf")
    with open(conf, "w") as f:
        f.write(
            f'Listen tcp:{port}:interface=127.0.0.1\nDocumentRoot "{root}"\n'
            "MaxKeepAliveRequests 0\n" + CONFIGS[config].format(repo=REPO, work=work)
        )
    env = dict(os.environ, PYTHONPATH=REPO, PYTHONHASHSEED="0")
    twistd = TWISTD if profile is None else [sys.executable, __file__, "--serve-profiled", profile]
    log = os.path.join(work, "axkit.log")
    proc = subprocess.Popen(
        [*wrapper, *twistd, "-n", "--pidfile=", "--logfile", log, "axkit", "--config", conf],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the server did not start listening")


def stop(proc):
    proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=120)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[1]


def callgrind(work, root, config, cases, n, keep=None):
    out = os.path.join(work, "callgrind.out")
    port = free_port()
    proc = start(
        work,
        root,
        port,
        config,
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"],
    )
    results = {}

    def control(*args):
        subprocess.run(["callgrind_control", *args, str(proc.pid)], capture_output=True)

    try:
        for number, case in enumerate(cases, 1):
            run_client(port, case, 20)  # warm up (imports, caches)
            control("-i", "on")
            run_client(port, case, n)
            control("-i", "off")
            control(f"--dump={case}")  # written as callgrind.out.<number>
            results[case] = dump_total(f"{out}.{number}") / n
            if keep:
                shutil.copy(f"{out}.{number}", os.path.join(keep, f"callgrind.{config}.{case}"))
    finally:
        stop(proc)
    return results


def dump_total(name):
    """The instructions counted in callgrind dump ``name``."""
    for _ in range(100):
        if os.path.exists(name):
            with open(name) as f:
                for line in f:
                    if line.startswith("totals:"):
                        return int(line.split()[1])
        time.sleep(0.1)
    raise SystemExit(f"no callgrind dump {name}")


def profile(work, root, config, cases, n, top):
    """cProfile of the server over each case (the functions' own time)."""
    import pstats

    for case in cases:
        out = os.path.join(work, "profile.out")
        port = free_port()
        proc = start(work, root, port, config, [], profile=out)
        try:
            run_client(port, case, 20)
            run_client(port, case, n)
        finally:
            stop(proc)
        print(f"== {case}: cProfile, {n} requests (calls are per request)")
        stats = pstats.Stats(out)
        rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])
        for (path, line, name), (_, calls, own, total, _) in rows[:top]:
            where = os.path.relpath(path, REPO) if path.startswith(REPO) else os.path.basename(path)
            print(f"  {own / n * 1e6:7.2f} us own {total / n * 1e6:8.2f} us total "
                  f"{calls / n:6.2f} calls  {where}:{line}({name})")  # fmt: skip


def serve_profiled(out, argv):
    """(In the server process.)  twistd under cProfile, written to ``out`` at exit."""
    import cProfile

    sys.argv = ["twistd", *argv]
    from twisted.scripts.twistd import run

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        run()
    finally:
        profiler.disable()
        profiler.dump_stats(out)


def strace_counts(work, root, config, cases, n):
    results = {}
    for case in cases:
        port = free_port()
        proc = start(work, root, port, config, [])
        try:
            run_client(port, case, 20)
            out = os.path.join(work, "strace.out")
            tracer = subprocess.Popen(
                ["strace", "-c", "-f", "-o", out, "-p", str(proc.pid)],
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1)
            run_client(port, case, n)
            time.sleep(0.3)
            tracer.send_signal(signal.SIGINT)
            tracer.wait(timeout=30)
        finally:
            stop(proc)
        calls = {}
        with open(out) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 5 and parts[3].isdigit() and parts[-1] != "total":
                    calls[parts[-1]] = int(parts[3]) / n
        results[case] = calls
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--config", choices=sorted(CONFIGS), default="bench")
    ap.add_argument("-n", type=int, default=200, help="requests per case")
    ap.add_argument("--strace", action="store_true", help="count system calls instead")
    ap.add_argument("--profile", action="store_true", help="cProfile the server instead")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--keep-dumps", metavar="DIR", help="copy each case's callgrind dump to DIR")
    ap.add_argument("--client", nargs=4, help=argparse.SUPPRESS)
    if sys.argv[1:2] == ["--serve-profiled"]:
        serve_profiled(sys.argv[2], sys.argv[3:])
        return
    args = ap.parse_args()
    if args.client:
        port, path, n, keep = args.client
        client(int(port), path, int(n), keep == "1")
        return
    cases = args.cases.split(",")
    if args.profile:
        tools = ()
    else:
        tools = ("strace",) if args.strace else ("valgrind", "callgrind_control")
    for tool in tools:
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed")
    work = tempfile.mkdtemp()
    try:
        root = make_root(work)
        if args.profile:
            profile(work, root, args.config, cases, args.n, args.top)
        elif args.strace:
            for case, calls in strace_counts(work, root, args.config, cases, args.n).items():
                shown = ", ".join(
                    f"{name} {count:.2f}"
                    for name, count in sorted(calls.items(), key=lambda kv: -kv[1])
                    if count >= 0.05
                )
                print(f"{case:11} {sum(calls.values()):5.1f} calls/request: {shown}")
        else:
            found = callgrind(work, root, args.config, cases, args.n, args.keep_dumps)
            for case, per in found.items():
                print(f"{case:11} {per:9.0f} instructions per request ({args.config} config)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
