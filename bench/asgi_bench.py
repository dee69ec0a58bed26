#!/usr/bin/env python3
"""ASGI throughput: the same hello-world app from axkit and from uvicorn.

uvicorn runs with ``--http httptools``, one worker, no access log, twice:
on asyncio's own loop (``--loop asyncio``: "uvicorn") and on uvloop
(``--loop uvloop``: "uvicorn-uvloop", what ``pip install uvicorn[standard]``
brings and uvicorn then picks by itself); axkit with ``ASGIAlias / tests.asgiapps.hello:app`` and no access log,
on its own reactor (the app's asyncio loop in a thread beside it: "axkit")
and on Twisted's asyncio reactor (one thread: "axkit-asyncio").  Each server
is pinned to one core (taskset -c 0), wrk to the other (taskset -c 1); a
few rounds of each, alternating, so drift on a shared machine hits all.

    python bench/asgi_bench.py                     # 3 rounds of 5 s
    python bench/asgi_bench.py --rounds 2 --duration 8 --connections 50

Prints req/s per round, the server's CPU per request (from /proc: what one
core would serve at that cost), and the ratios to each uvicorn (best round
of each).  Needs wrk, taskset, and uvicorn + httptools in this Python;
uvicorn-uvloop needs uvloop too (skipped, with a note, without it).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from benchlib import REPO, free_port
from http_bench import SERVER_CORE, need_tools, stop, twistd_axkit, wait_listening, wrk

APP = "tests.asgiapps.hello:app"


def _env():
    return dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))


def start_axkit(work, port, reactor=None, loop=""):
    conf = os.path.join(work, "asgi.conf")
    with open(conf, "w") as f:
        f.write(f"""Listen tcp:{port}:interface=127.0.0.1
Plugin asgi
ASGIAlias / {APP}
ASGILifespan off
MaxKeepAliveRequests 0
""")
    reactor_args = [f"--reactor={reactor}"] if reactor else []
    return twistd_axkit(work, conf, reactor_args, env={"AXKIT_ASGI_LOOP": loop})


def start_axkit_thread(work, port):
    return start_axkit(work, port, loop="thread")


def start_axkit_asyncio(work, port):
    return start_axkit(work, port, "asyncio")


def start_uvicorn(work, port, loop="asyncio"):
    return subprocess.Popen(
        [
            "taskset",
            "-c",
            SERVER_CORE,
            sys.executable,
            "-m",
            "uvicorn",
            APP,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--http",
            "httptools",
            "--loop",
            loop,
            "--workers",
            "1",
            "--no-access-log",
            "--lifespan",
            "off",
            "--log-level",
            "warning",
        ],
        cwd=work,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_uvicorn_uvloop(work, port):
    return start_uvicorn(work, port, "uvloop")


SERVERS = {
    "axkit": start_axkit,
    "axkit-thread": start_axkit_thread,
    "axkit-asyncio": start_axkit_asyncio,
    "uvicorn": start_uvicorn,
    "uvicorn-uvloop": start_uvicorn_uvloop,
}
PEERS = ("uvicorn", "uvicorn-uvloop")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--only", choices=list(SERVERS), action="append")
    args = parser.parse_args()
    need_tools("wrk", "taskset")
    try:
        import httptools  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        if not args.only or "uvicorn" in args.only:
            raise SystemExit("pip install uvicorn httptools (or --only axkit)")
    names = args.only or list(SERVERS)
    if "uvicorn-uvloop" in names:
        try:
            import uvloop  # noqa: F401
        except ImportError:
            print("uvloop not installed: uvicorn-uvloop skipped (pip install uvloop)")
            names = [n for n in names if n != "uvicorn-uvloop"]
    work = tempfile.mkdtemp(prefix="axkit-asgi-bench-")
    results = {name: [] for name in names}
    try:
        for round_ in range(args.rounds):
            for name in names:
                port = free_port()
                proc = SERVERS[name](work, port)
                try:
                    wait_listening(port, proc)
                    url = f"http://127.0.0.1:{port}/"
                    wrk(url, 1, args.connections, False)  # warm up
                    r = wrk(url, args.duration, args.connections, False, proc.pid)
                finally:
                    stop(proc)
                results[name].append(r)
                print(
                    f"round {round_ + 1} {name:14} {r['rps']:8.0f} req/s  "
                    f"{r['cpu_us'] or 0:6.1f} us CPU/req = {r['core_rps']:7.0f} req/s "
                    f"per core  p99 {r['p99_ms']} ms"
                    + (
                        f"  (non-2xx {r['non2xx']}, socket errors {r['socket_errors']})"
                        if r["non2xx"] or r["socket_errors"]
                        else ""
                    ),
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    best = {name: max(rs, key=lambda r: r["rps"]) for name, rs in results.items() if rs}
    for name, r in best.items():
        line = f"{name:14} best {r['rps']:8.0f} req/s, {r['cpu_us'] or 0:6.1f} us CPU/req"
        for peer in PEERS:
            base = best.get(peer)
            if name in PEERS or not base or not base["rps"] or not base["core_rps"]:
                continue
            line += (
                f"   / {peer}: {r['rps'] / base['rps']:.2f}x req/s, "
                f"{r['core_rps'] / base['core_rps']:.2f}x per core"
            )
        print(line)

if __name__ == "__main__":
    main()
