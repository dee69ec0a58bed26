#!/usr/bin/env python3
"""Hello-world CGI requests per second: axkit beside lighttpd's mod_cgi.

Both servers run the same tiny program (a shell script by default) from the
same folder, on 127.0.0.1, each warmed up (3 s of load, not counted), then
loaded in turn by ``wrk -c10`` (or ``ab -c10`` when wrk is missing) for a
few rounds, taking turns going first; the report gives each round and the
ratio of the medians.  Fork and exec dominate: what is
measured is how little each server adds around them.

    python bench/cgi_bench.py                 # 3 rounds of 10 s each
    python bench/cgi_bench.py --duration 5 --rounds 2 --program c

Nothing here runs in CI.  Results also go to bench/results/cgi-*.json.
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchlib import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LIGHTTPD = shutil.which("lighttpd") or "/usr/sbin/lighttpd"

PROGRAMS = {
    "sh": (
        "hello.cgi",
        '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\nHello, world!\\n"\n',
    ),
    "perl": (
        "hello.cgi",
        '#!/usr/bin/perl\nprint "Content-Type: text/plain\\r\\n\\r\\nHello, world!\\n";\n',
    ),
    "c": (
        "hello.c",
        '#include <stdio.h>\nint main(void){fputs("Content-Type: '
        'text/plain\\r\\n\\r\\nHello, world!\\n", stdout);return 0;}\n',
    ),
}


def make_program(folder, kind):
    name, text = PROGRAMS[kind]
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        f.write(text)
    if kind == "c":
        exe = os.path.join(folder, "hello.cgi")
        subprocess.check_call([shutil.which("cc") or "gcc", "-O2", "-o", exe, path])
        os.unlink(path)
        path = exe
    os.chmod(path, 0o755)
    return path


def wait_ready(url, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200 and b"Hello, world!" in r.read():
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not answer within {timeout}s")


def start_axkit(work, cgi_bin, port):
    conf = os.path.join(work, "axkit.conf")
    with open(conf, "w") as f:
        f.write(
            f"Listen tcp:{port}:interface=127.0.0.1\n"
            f"DocumentRoot {work}\n"
            # The dotted path works even where a stale global install
            # shadows the bundled dropin's name.
            f"Plugin axkit.plugins.cgi.CGI\n"
            f"ScriptAlias /cgi-bin/ {cgi_bin}/\n"
        )
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    twistd = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
    return subprocess.Popen(
        [sys.executable, "-c", twistd, "-n", "--pidfile=", "axkit", "--config", conf],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(work, "axkit.err"), "w"),
    )


def start_lighttpd(work, cgi_bin, port):
    conf = os.path.join(work, "lighttpd.conf")
    with open(conf, "w") as f:
        f.write(
            f'server.document-root = "{work}"\n'
            f"server.port = {port}\n"
            f'server.bind = "127.0.0.1"\n'
            f'server.modules = ("mod_cgi", "mod_alias")\n'
            f'server.errorlog = "{work}/lighttpd.err"\n'
            f'alias.url = ("/cgi-bin/" => "{cgi_bin}/")\n'
            f'$HTTP["url"] =~ "^/cgi-bin/" {{ cgi.assign = ("" => "") }}\n'
        )
    return subprocess.Popen(
        [LIGHTTPD, "-D", "-f", conf], cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def cpu_times(pid):
    """(the process's own CPU seconds, its reaped children's), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    # utime, stime, cutime, cstime are fields 14-17 (1-based, pid first).
    own = (int(fields[11]) + int(fields[12])) / tick
    children = (int(fields[13]) + int(fields[14])) / tick
    return own, children


def load(url, duration, connections):
    """(requests per second, failed requests, requests) from wrk or ab."""
    if shutil.which("wrk"):
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", url],
            capture_output=True,
            text=True,
            timeout=duration + 60,
        ).stdout
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        done = int(re.search(r"(\d+) requests in", out).group(1))
        failed = 0
        m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if m:
            failed += int(m.group(1))
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        if m:
            failed += sum(int(x) for x in m.groups())
        return rate, failed, done
    out = subprocess.run(
        ["ab", "-q", "-k", f"-c{connections}", f"-t{duration}", "-n", "10000000", url],
        capture_output=True,
        text=True,
        timeout=duration + 60,
    ).stdout
    rate = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
    failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
    done = int(re.search(r"Complete requests:\s+(\d+)", out).group(1))
    m = re.search(r"Non-2xx responses:\s+(\d+)", out)
    return rate, failed + (int(m.group(1)) if m else 0), done


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--program", choices=sorted(PROGRAMS), default="sh")
    parser.add_argument(
        "--warmup",
        type=int,
        default=3,
        help="seconds of load per server before the rounds, not counted",
    )
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="axkit-cgi-bench-")
    cgi_bin = os.path.join(work, "cgi-bin")
    os.makedirs(cgi_bin)
    make_program(cgi_bin, args.program)
    servers = {}
    pids = {}
    procs = []
    try:
        port = free_port()
        procs.append(start_axkit(work, cgi_bin, port))
        servers["axkit"] = f"http://127.0.0.1:{port}/cgi-bin/hello.cgi"
        pids["axkit"] = procs[-1].pid
        if os.path.exists(LIGHTTPD):
            port = free_port()
            procs.append(start_lighttpd(work, cgi_bin, port))
            servers["lighttpd"] = f"http://127.0.0.1:{port}/cgi-bin/hello.cgi"
            pids["lighttpd"] = procs[-1].pid
        else:
            print("lighttpd not found: measuring axkit alone")
        for url in servers.values():
            wait_ready(url)
        # Warm-up, not counted: a server's first thousands of requests fill
        # its caches (Python's, the allocator's, the program's pages).
        if args.warmup > 0:
            for url in servers.values():
                load(url, args.warmup, args.connections)
        results = {name: [] for name in servers}
        order = list(servers.items())
        for r in range(args.rounds):
            # The servers take turns going first: a machine that drifts
            # during the run does not always favour the same one.
            for name, url in order if r % 2 == 0 else order[::-1]:
                own0, kids0 = cpu_times(pids[name])
                rate, failed, done = load(url, args.duration, args.connections)
                own1, kids1 = cpu_times(pids[name])
                # The server's own CPU per request (the figure least disturbed
                # by whatever else the machine runs), and its programs'.
                cpu = (own1 - own0) / max(done, 1) * 1e6
                kids = (kids1 - kids0) / max(done, 1) * 1e6
                results[name].append(
                    {
                        "rate": rate,
                        "failed": failed,
                        "requests": done,
                        "server_us_per_request": round(cpu, 1),
                        "programs_us_per_request": round(kids, 1),
                    }
                )
                print(
                    f"round {r + 1}  {name:9s} {rate:9.1f} req/s  failed {failed}  "
                    f"server CPU {cpu:6.0f} us/req  programs {kids:6.0f} us/req",
                    flush=True,
                )
        summary = {
            name: statistics.median(x["rate"] for x in runs) for name, runs in results.items()
        }
        cpu_summary = {
            name: statistics.median(x["server_us_per_request"] for x in runs)
            for name, runs in results.items()
        }
        print()
        for name, rate in summary.items():
            print(f"{name:9s} median {rate:9.1f} req/s  server CPU {cpu_summary[name]:6.0f} us/req")
        if "lighttpd" in summary:
            ratio = summary["axkit"] / summary["lighttpd"]
            pairs = zip(results["axkit"], results["lighttpd"], strict=False)
            ratios = [a["rate"] / b["rate"] for a, b in pairs]
            print(
                f"axkit / lighttpd = {ratio:.2f} (medians; per round "
                + ", ".join(f"{x:.2f}" for x in ratios)
                + ")"
            )
        os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
        out = os.path.join(HERE, "results", f"cgi-{time.strftime('%Y%m%d-%H%M%S')}.json")
        with open(out, "w") as f:
            json.dump(
                {
                    "program": args.program,
                    "connections": args.connections,
                    "duration": args.duration,
                    "rounds": results,
                    "median": summary,
                    "median_server_us_per_request": cpu_summary,
                    "load_average": os.getloadavg(),
                },
                f,
                indent=1,
            )
        print(f"results: {out}")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if os.environ.get("KEEP"):
            print("kept", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
