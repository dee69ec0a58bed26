#!/usr/bin/env python3
"""WebSocket tunnel cost: echo round trips through axkit and nginx.

A websockets echo server (the backend) and the clients run on core 1;
each proxy in turn on core 0: axkit (``ProxyPass ... upgrade=websocket``)
and nginx (``proxy_pass`` with ``Upgrade``/``Connection`` set, one
worker).  Two loads: ``small`` -- C connections each sending N 64-byte
text messages, one at a time, waiting for each echo; ``bulk`` -- one
connection sending 1 MiB binary messages and reading each echo.

    python bench/websocket_bench.py                   # 2 rounds
    python bench/websocket_bench.py --rounds 3 --messages 2000
    python bench/websocket_bench.py --idle 2000        # RSS per idle tunnel

Prints messages/s and the proxy's CPU per message (from /proc; a message
crosses the proxy twice, there and back), then axkit's ratio to nginx
(best round of each).  Needs taskset and the websockets package; nginx
is optional.  Bounded: every load has a fixed count.
"""

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import free_port
from http_bench import CLIENT_CORE, SERVER_CORE, need_tools, stop, twistd_axkit, wait_listening
from proxy_bench import _nginx

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TICKS = os.sysconf("SC_CLK_TCK")

BACKEND = """
import asyncio, sys, websockets
async def echo(ws):
    async for m in ws:
        await ws.send(m)
async def main():
    async with websockets.serve(echo, "127.0.0.1", int(sys.argv[1]), max_size=None,
                                compression=None):
        await asyncio.Future()
asyncio.run(main())
"""


RAW_BACKEND = """
import asyncio, sys
async def tunnel(reader, writer):
    try:
        await reader.readuntil(b"\\r\\n\\r\\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return
    writer.write(b"HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\n"
                 b"Connection: Upgrade\\r\\n\\r\\n")
    await reader.read()
async def main():
    server = await asyncio.start_server(tunnel, "127.0.0.1", int(sys.argv[1]), backlog=4096)
    await server.serve_forever()
asyncio.run(main())
"""
UPGRADE = (
    b"GET /x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def rss_kib_of(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def idle(args):
    """Open ``args.idle`` tunnels through each proxy, then read its RSS."""
    import resource
    import socket

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    work = tempfile.mkdtemp(prefix="axkit-ws-idle-")
    bport = free_port()
    backend = subprocess.Popen(
        ["taskset", "-c", CLIENT_CORE, sys.executable, "-c", RAW_BACKEND, str(bport)]
    )
    try:
        wait_listening(bport, backend)
        for name, start in PROXIES.items():
            port = free_port()
            proc = start(work, port, bport)
            if proc is None:
                continue
            socks = []
            try:
                wait_listening(port, proc)
                time.sleep(0.5)
                before = rss_kib_of(proc.pid)
                for _ in range(args.idle):
                    s = socket.create_connection(("127.0.0.1", port), timeout=20)
                    s.sendall(UPGRADE)
                    head = b""
                    while b"\r\n\r\n" not in head:
                        head += s.recv(4096)
                    assert head.startswith(b"HTTP/1.1 101"), head[:100]
                    socks.append(s)
                time.sleep(0.5)
                grown = rss_kib_of(proc.pid) - before
                print(f"{name:6}: {args.idle} idle tunnels, RSS +{grown / 1024:.1f} MiB "
                      f"({grown / args.idle:.1f} KiB per tunnel)", flush=True)  # fmt: skip
            finally:
                for s in socks:
                    s.close()
                stop(proc)
    finally:
        stop(backend)
        shutil.rmtree(work, ignore_errors=True)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start_axkit(work, port, backend):
    conf = os.path.join(work, "axkit.conf")
    with open(conf, "w") as f:
        f.write(f"""Listen tcp:{port}:interface=127.0.0.1
Plugin proxy
ProxyPass / http://127.0.0.1:{backend}/ upgrade=websocket timeout=600
""")
    return twistd_axkit(work, conf)


def start_nginx(work, port, backend):
    if not os.path.exists(NGINX):
        return None
    body = f"""    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{backend};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 600s;
        }}
    }}"""
    conf = _nginx(work, "ws-proxy", port, body)
    cmd = ["taskset", "-c", SERVER_CORE, NGINX, "-c", conf, "-p", work]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


PROXIES = {"axkit": start_axkit, "nginx": start_nginx}


async def small(port, connections, messages):
    from websockets.asyncio.client import connect

    async def one():
        async with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
            for _ in range(messages):
                await ws.send("m" * 64)
                await ws.recv()

    await asyncio.gather(*(one() for _ in range(connections)))
    return connections * messages


async def bulk(port, count):
    from websockets.asyncio.client import connect

    payload = os.urandom(1 << 20)
    async with connect(f"ws://127.0.0.1:{port}/", compression=None, max_size=None) as ws:
        for _ in range(count):
            await ws.send(payload)
            await ws.recv()
    return count


def measure(proc, load):
    before = cpu_seconds(proc.pid)
    started = time.monotonic()
    count = asyncio.run(load)
    elapsed = time.monotonic() - started
    return count / elapsed, (cpu_seconds(proc.pid) - before) / count


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--bulk", type=int, default=200, help="1 MiB messages")
    parser.add_argument("--idle", type=int, default=0, help="only: RSS of N idle tunnels")
    args = parser.parse_args()
    need_tools("taskset")
    if args.idle:
        idle(args)
        return
    os.sched_setaffinity(0, {int(CLIENT_CORE)})
    work = tempfile.mkdtemp(prefix="axkit-ws-bench-")
    bport = free_port()
    backend = subprocess.Popen(
        ["taskset", "-c", CLIENT_CORE, sys.executable, "-c", BACKEND, str(bport)]
    )
    results = {}
    try:
        wait_listening(bport, backend)
        for round_ in range(args.rounds):
            for name, start in PROXIES.items():
                port = free_port()
                proc = start(work, port, bport)
                if proc is None:
                    continue
                try:
                    wait_listening(port, proc)
                    for load, coro in (
                        ("small", small(port, args.connections, args.messages)),
                        ("bulk", bulk(port, args.bulk)),
                    ):
                        rate, cpu = measure(proc, coro)
                        results.setdefault((name, load), []).append((rate, cpu))
                        print(
                            f"round {round_ + 1} {name:6} {load:5}: {rate:9.1f} msg/s, "
                            f"{cpu * 1e6:9.1f} us CPU per message",
                            flush=True,
                        )
                finally:
                    stop(proc)
    finally:
        stop(backend)
        shutil.rmtree(work, ignore_errors=True)
    for load in ("small", "bulk"):
        mine = results.get(("axkit", load))
        peer = results.get(("nginx", load))
        if mine and peer:
            a = min(cpu for _, cpu in mine)
            n = min(cpu for _, cpu in peer)
            if not a or not n:
                print(f"{load}: too short to measure the CPU (clock ticks); raise the counts")
                continue
            print(f"{load}: axkit {a * 1e6:.1f} us, nginx {n * 1e6:.1f} us per message: "
                  f"axkit uses {a / n:.2f}x nginx's CPU (nginx/axkit = {n / a:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
