#!/usr/bin/env python3
"""Reverse-proxy throughput: 1 KB answers through axkit, nginx and twisted.web.

One keep-alive backend (nginx serving a 1 KB file, else axkit) on core 1
beside wrk; each proxy in turn on core 0: axkit (``ProxyPass``), nginx
(``proxy_pass`` to an upstream with ``keepalive 16``, one worker) and
twisted.web's ``ReverseProxyResource``; and, for reference, axkit serving
the same file itself (``axkit-direct``: the engine's floor).  A few
rounds, alternating.

    python bench/proxy_bench.py                     # 3 rounds of 5 s
    python bench/proxy_bench.py --rounds 2 --duration 8 --connections 50

Prints req/s and the proxy's CPU per request (from /proc: what one core
would serve at that cost), then axkit's ratios to nginx and twisted.web
(best round of each).  Needs wrk and taskset; nginx is optional.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from benchlib import TWISTD, free_port
from http_bench import CLIENT_CORE, SERVER_CORE, need_tools, stop, twistd_axkit, wait_listening, wrk

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _nginx(work, name, port, body):
    conf = os.path.join(work, f"{name}.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1;
daemon off;
master_process off;
pid {work}/{name}.pid;
error_log {work}/{name}-error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {work}/{name}-body;
    proxy_temp_path {work}/{name}-proxy;
    fastcgi_temp_path {work}/{name}-fastcgi;
    uwsgi_temp_path {work}/{name}-uwsgi;
    scgi_temp_path {work}/{name}-scgi;
    keepalive_requests 1000000;
{body}
}}
""")
    return conf


def start_backend(work, port):
    root = os.path.join(work, "root")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "1k.txt"), "wb") as f:
        f.write(b"x" * 1024)
    core = ["taskset", "-c", CLIENT_CORE]
    if os.path.exists(NGINX):
        body = f"    server {{ listen 127.0.0.1:{port}; root {root}; }}"
        conf = _nginx(work, "backend", port, body)
        cmd = [*core, NGINX, "-c", conf, "-p", work]
    else:
        conf = os.path.join(work, "backend-axkit.conf")
        with open(conf, "w") as f:
            f.write(f"Listen tcp:{port}:interface=127.0.0.1\nDocumentRoot {root}\n")
        cmd = [*core, *TWISTD, "-n", "--pidfile=", "axkit", "--config", conf]
    return subprocess.Popen(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_axkit(work, port, backend):
    conf = os.path.join(work, "axkit.conf")
    with open(conf, "w") as f:
        f.write(f"""Listen tcp:{port}:interface=127.0.0.1
Plugin proxy
ProxyPass / http://127.0.0.1:{backend}/ max=64
MaxKeepAliveRequests 0
""")
    return twistd_axkit(work, conf)


def start_nginx(work, port, backend):
    if not os.path.exists(NGINX):
        return None
    body = f"""    upstream app {{ server 127.0.0.1:{backend}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}"""
    conf = _nginx(work, "proxy", port, body)
    cmd = ["taskset", "-c", SERVER_CORE, NGINX, "-c", conf, "-p", work]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_twisted_web(work, port, backend):
    code = (
        "import sys\nfrom twisted.internet import reactor\nfrom twisted.web import proxy, server\n"
        f"site = server.Site(proxy.ReverseProxyResource('127.0.0.1', {backend}, b''))\n"
        "site.log = lambda r: None\n"
        f"reactor.listenTCP({port}, site, interface='127.0.0.1')\nreactor.run()\n"
    )
    cmd = ["taskset", "-c", SERVER_CORE, sys.executable, "-c", code]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_axkit_direct(work, port, backend):
    """Not a proxy: axkit serving the same 1 KB file itself -- the engine's
    own floor per request, for reading the proxy's figure against."""
    conf = os.path.join(work, "axkit-direct.conf")
    with open(conf, "w") as f:
        f.write(f"""Listen tcp:{port}:interface=127.0.0.1
DocumentRoot {os.path.join(work, "root")}
Plugin uri_to_file
Plugin mime_map
Plugin serve_file
MaxKeepAliveRequests 0
""")
    return twistd_axkit(work, conf)


PROXIES = {
    "axkit": start_axkit,
    "nginx": start_nginx,
    "twisted.web": start_twisted_web,
    "axkit-direct": start_axkit_direct,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--only", choices=list(PROXIES), action="append")
    args = parser.parse_args()
    need_tools("wrk", "taskset")
    names = args.only or list(PROXIES)
    work = tempfile.mkdtemp(prefix="axkit-proxy-bench-")
    results = {name: [] for name in names}
    bport = free_port()
    backend = start_backend(work, bport)
    try:
        wait_listening(bport, backend)
        for round_ in range(args.rounds):
            for name in names:
                port = free_port()
                proc = PROXIES[name](work, port, bport)
                if proc is None:
                    continue
                try:
                    wait_listening(port, proc)
                    url = f"http://127.0.0.1:{port}/1k.txt"
                    wrk(url, 1, args.connections, False)  # warm up
                    r = wrk(url, args.duration, args.connections, False, proc.pid)
                finally:
                    stop(proc)
                results[name].append(r)
                print(
                    f"round {round_ + 1} {name:12} {r['rps']:8.0f} req/s  "
                    f"{r['cpu_us'] or 0:6.1f} us CPU/req = {r['core_rps']:7.0f} req/s per core"
                    + (f"  (non-2xx {r['non2xx']})" if r["non2xx"] else ""),
                    flush=True,
                )
    finally:
        stop(backend)
        shutil.rmtree(work, ignore_errors=True)
    print()
    best = {name: max(rs, key=lambda r: r["rps"]) for name, rs in results.items() if rs}
    ax = best.get("axkit")
    for name, r in best.items():
        if name == "axkit-direct":
            print(f"{name:12} best {r['rps']:8.0f} req/s, {r['cpu_us'] or 0:6.1f} us CPU/req "
                  "(no proxy: axkit serving the file itself)")  # fmt: skip
            continue
        line = f"{name:12} best {r['rps']:8.0f} req/s, {r['cpu_us'] or 0:6.1f} us CPU/req"
        if ax and name != "axkit" and ax["cpu_us"] and r["cpu_us"]:
            line += f"   axkit/{name} by CPU per request: {r['cpu_us'] / ax['cpu_us']:.2f}x"
        print(line)


if __name__ == "__main__":
    main()
