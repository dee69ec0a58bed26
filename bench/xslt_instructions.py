#!/usr/bin/env python3
"""Instructions per transformed page, per thread: xslt_bench.py's site and
config under ``valgrind --tool=callgrind --separate-threads=yes``.

Wall-clock rates are noisy on a shared machine; instruction counts are
not.  The server runs with instrumentation off; after a warm-up a client
process sends N requests over a few keep-alive connections at once (as
wrk does) while collection is on, and the dump of each thread is read:
the reactor thread's instructions per request and the transformation
threads', beside the plain lxml loop's (parse, transform, serialise the
same bytes) measured the same way.

    python bench/xslt_instructions.py                     # every case
    python bench/xslt_instructions.py --cases uncached -n 200

Cases: ``uncached`` (AxCache Off, a transform per request), ``cached``,
``static`` (a file of the output's bytes).  Kernel work is not counted.
"""

import argparse
import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import REPO, TWISTD, free_port
from xslt_bench import STYLESHEET, document, lxml_loop

CASES = {"uncached": "/uncached/doc.xml", "cached": "/doc.xml", "static": "/out.html"}


def client(port, path, n, connections):
    """(In the client process.)  ``n`` GETs of ``path`` spread over
    ``connections`` keep-alive connections running at once."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()

    def one(count):
        sock = socket.create_connection(("127.0.0.1", port))
        buf = b""
        for _ in range(count):
            sock.sendall(request)
            while b"\r\n\r\n" not in buf:
                buf += sock.recv(1 << 20)
            head, _, rest = buf.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise SystemExit(head.decode(errors="replace"))
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            while len(rest) < length:
                data = sock.recv(1 << 20)
                if not data:
                    raise SystemExit("response cut short")
                rest += data
            buf = rest[length:]
        sock.close()

    each = [n // connections + (i < n % connections) for i in range(connections)]
    running = [threading.Thread(target=one, args=(c,)) for c in each if c]
    for t in running:
        t.start()
    for t in running:
        t.join()


def run_client(port, path, n, connections):
    cmd = [sys.executable, __file__, "--client", str(port), path, str(n), str(connections)]
    subprocess.run(cmd, check=True, timeout=900)


def make_site(work):
    root = os.path.join(work, "site")
    os.makedirs(os.path.join(root, "uncached"))
    doc = document()
    for name in ("doc.xml", "uncached/doc.xml"):
        with open(os.path.join(root, name), "w") as f:
            f.write(doc)
    with open(os.path.join(root, "style.xsl"), "w") as f:
        f.write(STYLESHEET)
    _, _, output = lxml_loop(root, 0)
    with open(os.path.join(root, "out.html"), "wb") as f:
        f.write(output)
    return root


def start(work, root, port, threads, wrapper, repo=REPO):
    conf = os.path.join(work, "axkit.conf")
    with open(conf, "w") as f:
        f.write(f"""Listen tcp:{port}:interface=127.0.0.1
DocumentRoot "{root}"
Include "{repo}/axkit/defaults/mime.conf"
Plugin uri_to_file
Plugin mime_map
Plugin xslt
Plugin serve_file
MaxKeepAliveRequests 0
AxThreads {threads}
AxAddProcessor text/xsl /style.xsl
<Location /uncached>
    AxCache Off
</Location>
""")
    env = dict(os.environ, PYTHONPATH=repo, PYTHONHASHSEED="0")
    log = os.path.join(work, "axkit.log")
    proc = subprocess.Popen(
        [*wrapper, *TWISTD, "-n", "--pidfile=", "--logfile", log, "axkit", "--config", conf],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the server did not start listening")


def thread_totals(prefix):
    """{thread number: instructions} of one dump (one file per thread)."""
    out = {}
    for _ in range(100):
        names = glob.glob(prefix + "-*")
        if names:
            break
        time.sleep(0.1)
    time.sleep(0.5)
    for name in glob.glob(prefix + "-*"):
        with open(name) as f:
            for line in f:
                if line.startswith("totals:"):
                    out[int(name.rsplit("-", 1)[1])] = int(line.split()[1])
                    break
    return out


def server_counts(work, root, cases, n, connections, threads, repo=REPO):
    out = os.path.join(work, "callgrind.out")
    port = free_port()
    wrapper = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--separate-threads=yes",
        f"--callgrind-out-file={out}",
    ]
    proc = start(work, root, port, threads, wrapper, repo)
    results = {}

    def control(*args):
        subprocess.run(["callgrind_control", *args, str(proc.pid)], capture_output=True)

    try:
        for number, case in enumerate(cases, 1):
            run_client(port, CASES[case], 30, connections)  # warm up (imports, caches)
            control("-i", "on")
            run_client(port, CASES[case], n, connections)
            control("-i", "off")
            control(f"--dump={case}")
            totals = thread_totals(f"{out}.{number}")
            reactor = totals.pop(1, 0)
            results[case] = (reactor / n, sum(totals.values()) / n)
    finally:
        proc.terminate()
        proc.wait(timeout=120)
    return results


LOOP = """
import sys, time
from lxml import etree
data = open(sys.argv[1], 'rb').read()
xslt = etree.XSLT(etree.parse(sys.argv[2]))
parser = etree.XMLParser(resolve_entities=False, no_network=True)
for _ in range(int(sys.argv[3])):
    bytes(xslt(etree.fromstring(data, parser)))
"""


def loop_count(root, n, keep=None):
    def total(count):
        out = os.path.join(keep, f"loop.{count}") if keep else "/dev/null"
        if keep:
            os.makedirs(keep, exist_ok=True)
        err = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-c",
                LOOP,
                os.path.join(root, "doc.xml"),
                os.path.join(root, "style.xsl"),
                str(count),
            ],  # fmt: skip
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONHASHSEED="0"),
        ).stderr
        refs = [int(x.rsplit(":", 1)[1].replace(",", "")) for x in err.splitlines() if "refs:" in x]
        return refs[-1]

    return (total(n + 10) - total(10)) / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("-n", type=int, default=200, help="requests per case")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1, help="AxThreads")
    ap.add_argument("--no-loop", action="store_true", help="skip the lxml loop's count")
    ap.add_argument("--base", metavar="CHECKOUT", help="measure that checkout's axkit instead")
    ap.add_argument("--keep", metavar="DIR", help="copy the callgrind dumps there")
    ap.add_argument("--client", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        port, path, n, connections = args.client
        client(int(port), path, int(n), int(connections))
        return
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed")
    work = tempfile.mkdtemp(prefix="axkit-xslt-instr-")
    try:
        root = make_site(work)
        if not args.no_loop:
            loop = loop_count(root, args.n, args.keep)
            print(f"{'lxml loop':9} {loop / 1e3:9.0f} k instructions per page")
        cases = args.cases.split(",")
        repo = os.path.abspath(args.base) if args.base else REPO
        counts = server_counts(work, root, cases, args.n, args.connections, args.threads, repo)
        for case, (reactor, workers) in counts.items():
            print(
                f"{case:9} {(reactor + workers) / 1e3:9.0f} k instructions per request "
                f"(reactor {reactor / 1e3:.0f} k, transform threads {workers / 1e3:.0f} k)"
            )
        if args.keep:
            os.makedirs(args.keep, exist_ok=True)
            for name in glob.glob(os.path.join(work, "callgrind.out*")):
                shutil.copy(name, args.keep)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
