#!/usr/bin/env python3
"""axkit ProxyPass next to Apache 2.4 mod_proxy_http: what each sends on.

Not a load test: the reference run behind docs/proxy.md's "Apache side by
side".  One recording backend on 127.0.0.1; axkit and Apache (Debian's
apache2, mod_proxy + mod_proxy_http) each with the same lines

    ProxyPass        /a/ http://127.0.0.1:BACKEND/b/
    ProxyPassReverse /a/ http://127.0.0.1:BACKEND/b/

Each case is a request with some hop-by-hop or X-Forwarded-* fields, or
an answer with some; the table shows which fields (and values) reached
the backend or the client through each proxy.

    python bench/proxy_vs_apache.py
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import TWISTD, free_port
from http_bench import stop, wait_listening

APACHE = shutil.which("apache2") or "/usr/sbin/apache2"
MODULES = "/usr/lib/apache2/modules"

# (label, request fields, answer fields the backend sends)
CASES = [
    ("plain GET", [], []),
    ("Connection: close", [("Connection", "close")], []),
    ("Connection lists X-Secret", [("Connection", "X-Secret"), ("X-Secret", "s")], []),
    ("Connection lists Authorization",
     [("Connection", "Authorization"), ("Authorization", "Basic eDp5")], []),
    ("two Connection fields",
     [("Connection", "X-A"), ("Connection", "X-B"), ("X-A", "1"), ("X-B", "2"), ("X-C", "3")], []),
    ("Keep-Alive", [("Keep-Alive", "timeout=5")], []),
    ("Proxy-Connection", [("Proxy-Connection", "keep-alive")], []),
    ("TE: trailers", [("TE", "trailers")], []),
    ("Trailer", [("Trailer", "X-Sum")], []),
    ("Upgrade: h2c", [("Upgrade", "h2c"), ("Connection", "Upgrade")], []),
    ("X-Forwarded-For given", [("X-Forwarded-For", "6.6.6.6")], []),
    ("X-Forwarded-For listed in Connection",
     [("Connection", "X-Forwarded-For"), ("X-Forwarded-For", "6.6.6.6")], []),
    ("X-Forwarded-Host/Server given",
     [("X-Forwarded-Host", "a.example"), ("X-Forwarded-Server", "b.example")], []),
    ("X-Forwarded-Proto given", [("X-Forwarded-Proto", "https")], []),
    ("Expect: 100-continue (POST)", [("Expect", "100-continue")], []),
    ("answer: Connection lists X-Secret", [],
     [("Connection", "X-Secret"), ("X-Secret", "1"), ("X-Open", "2")]),
    ("answer: Keep-Alive, Proxy-Connection", [],
     [("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive")]),
    ("answer: Upgrade, Trailer", [], [("Upgrade", "h2c"), ("Trailer", "X-Sum")]),
    ("answer: Server, Date", [],
     [("Server", "backend/1"), ("Date", "Tue, 01 Dec 2026 00:00:00 GMT")]),
    ("answer: Location to the backend", [], [("Location", "http://127.0.0.1:BACKEND/b/there")]),
]  # fmt: skip

SHOWN = (
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade",
    "x-secret", "authorization", "x-a", "x-b", "x-c", "expect", "host",
    "x-forwarded-for", "x-forwarded-host", "x-forwarded-server", "x-forwarded-proto",
    "x-open", "server", "date", "location",
)  # fmt: skip


class Backend(threading.Thread):
    """Records each request's head; answers with the case's fields."""

    daemon = True

    def __init__(self, port):
        super().__init__()
        self.port = port
        self.seen = {}
        self.sock = socket.create_server(("127.0.0.1", port))

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        data = b""
        conn.settimeout(10)
        try:
            while True:
                while b"\r\n\r\n" not in data:
                    piece = conn.recv(65536)
                    if not piece:
                        return
                    data += piece
                head, _, data = data.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                fields = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:]]
                length = next((int(v) for n, v in fields if n.lower() == "content-length"), 0)
                if any(n.lower() == "expect" for n, _ in fields):
                    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                while len(data) < length:
                    data += conn.recv(65536)
                data = data[length:]
                case = int(lines[0].split(" ")[1].rsplit("/", 1)[1])
                self.seen[case] = fields
                answer = [(n, v.replace("BACKEND", str(self.port))) for n, v in CASES[case][2]]
                body = b"ok"
                out = "HTTP/1.1 200 OK\r\n" + "".join(f"{n}: {v}\r\n" for n, v in answer)
                out += f"Content-Length: {len(body)}\r\n\r\n"
                conn.sendall(out.encode("latin-1") + body)
        except OSError:
            return
        finally:
            conn.close()


def ask(port, case):
    label, fields, _ = CASES[case]
    method = "POST" if any(n == "Expect" for n, _ in fields) else "GET"
    lines = [f"{method} /a/{case} HTTP/1.1", "Host: front.example"]
    lines += [f"{n}: {v}" for n, v in fields]
    body = b"data" if method == "POST" else b""
    if body:
        lines.append(f"Content-Length: {len(body)}")
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    answer = b""
    while b"\r\n\r\n" not in answer:
        piece = s.recv(65536)
        if not piece:
            break
        answer += piece
        if answer.startswith(b"HTTP/1.1 100") and answer.count(b"\r\n\r\n") == 1:
            answer = answer.partition(b"\r\n\r\n")[2]  # an interim 100: the next one
    s.close()
    head = answer.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    return [tuple(x.strip() for x in line.split(":", 1)) for line in head[1:] if ":" in line]


def start_apache(work, port, bport):
    conf = os.path.join(work, "apache.conf")
    with open(conf, "w") as f:
        f.write(f"""ServerRoot {work}
Listen 127.0.0.1:{port}
LoadModule mpm_event_module {MODULES}/mod_mpm_event.so
LoadModule authz_core_module {MODULES}/mod_authz_core.so
LoadModule proxy_module {MODULES}/mod_proxy.so
LoadModule proxy_http_module {MODULES}/mod_proxy_http.so
User nobody
Group nogroup
PidFile {work}/apache.pid
ErrorLog {work}/apache-error.log
ServerName proxy.example
ProxyPass        /a/ http://127.0.0.1:{bport}/b/
ProxyPassReverse /a/ http://127.0.0.1:{bport}/b/
""")
    return subprocess.Popen([APACHE, "-X", "-f", conf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip


def start_axkit(work, port, bport):
    conf = os.path.join(work, "axkit.conf")
    with open(conf, "w") as f:
        f.write(f"""Listen tcp:{port}:interface=127.0.0.1
ServerName proxy.example
Plugin proxy
ProxyPass        /a/ http://127.0.0.1:{bport}/b/
ProxyPassReverse /a/ http://127.0.0.1:{bport}/b/
""")
    base = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return subprocess.Popen([*TWISTD, "-n", "--pidfile=", "--logfile", os.path.join(work, "ax.log"),
                             "axkit", "--config", conf], cwd=work, env=base,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def show(fields, only_case_names=None):
    names = {n.lower() for n, _ in fields}
    kept = [f"{n}: {v}" for n, v in fields if n.lower() in SHOWN]
    if only_case_names is not None:
        kept = [k for k in kept if k.split(":")[0].lower() in only_case_names]
    return "; ".join(kept) if names else "-"


def main():
    if not os.path.exists(APACHE):
        sys.exit("apache2 is not installed (apt-get install apache2)")
    work = tempfile.mkdtemp(prefix="axkit-vs-apache-")
    os.chmod(work, 0o755)
    bport = free_port()
    backend = Backend(bport)
    backend.start()
    results = {}
    try:
        for name, start in (("apache", start_apache), ("axkit", start_axkit)):
            port = free_port()
            proc = start(work, port, bport)
            try:
                wait_listening(port, proc)
                time.sleep(0.3)
                backend.seen.clear()
                answers = [ask(port, i) for i in range(len(CASES))]
                results[name] = ([backend.seen.get(i, []) for i in range(len(CASES))], answers)
            finally:
                stop(proc)
    finally:
        backend.sock.close()
        shutil.rmtree(work, ignore_errors=True)
    for i, (label, _req, resp) in enumerate(CASES):
        print(f"## {i}. {label}")
        for name in ("apache", "axkit"):
            seen, answers = results[name]
            if resp:
                print(f"   {name:7} client got: {show(answers[i])}")
            else:
                print(f"   {name:7} backend got: {show(seen[i])}")
        print()


if __name__ == "__main__":
    main()
