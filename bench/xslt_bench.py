#!/usr/bin/env python3
"""The XML pipeline's speed: a 20 KB document through one stylesheet.

Beside each other in one run:
- "lxml loop": the same work in-process, no server (parse the bytes,
  transform, serialise), one thread -- the ceiling for one core; and
  "lxml-2t", the same loop on two threads (what the machine gives two
  cores' worth of this work at that moment);
- "uncached": axkit with `AxCache Off` (a transform per request) and
  `AxThreads 1`, the server pinned to one core (taskset -c 0), wrk on the
  other;
- "uncached-2t": `AxThreads 2`, the server on both cores (wrk, pinned to
  the second, shares it);
- "cached": `AxCache On` (the output cache: a few stats per request);
- "static": a file with the same bytes as the output, from the same server.

    python bench/xslt_bench.py                  # 5 s per run
    python bench/xslt_bench.py --duration 3 --rounds 5

Two kinds of figures.  Requests per second, as wrk saw them: on a machine
other work shares these are noisy.  And CPU time per request (the lxml
loop's own CPU time per page; the server's from /proc, split into the
reactor thread and the transformation threads; wrk's from its rusage):
these survive a busy machine.  From them the ratios the issue asks for:

- one core: lxml loop CPU per page / server CPU per request (>= 0.7);
- two cores: the rate two cores would give (two cores' worth of CPU
  over server + wrk CPU per request, and never more than the reactor
  thread alone can carry) over the lxml loop's rate on one core (>= 1.6);
- cached / static, by CPU per request (>= 0.8).

Needs wrk and taskset.
"""

import argparse
import os
import re
import resource
import shutil
import subprocess
import tempfile
import threading
import time

from benchlib import REPO, free_port
from http_bench import CLIENT_CORE, need_tools, stop, twistd_axkit, wait_listening

STYLESHEET = """<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="html" encoding="UTF-8"/>
  <xsl:template match="/catalogue">
    <html><head><title><xsl:value-of select="@name"/></title></head><body>
    <table><xsl:apply-templates select="item"/></table></body></html>
  </xsl:template>
  <xsl:template match="item">
    <tr class="{@kind}"><td><xsl:value-of select="@id"/></td><td><xsl:value-of select="name"/></td>
    <td><xsl:value-of select="format-number(price, '0.00')"/></td></tr>
  </xsl:template>
</xsl:stylesheet>
"""


def document(size=20 * 1024):
    items, i = [], 0
    while sum(len(s) for s in items) < size:
        kind = ("book", "disc", "game")[i % 3]
        items.append(
            f'<item id="{i}" kind="{kind}"><name>Item number {i} of the catalogue</name>'
            f"<price>{i * 1.25:.2f}</price></item>\n"
        )
        i += 1
    return f'<?xml version="1.0"?>\n<catalogue name="bench">\n{"".join(items)}</catalogue>\n'


def lxml_loop(root, duration, threads=1):
    """(pages per second, CPU seconds per page, the output) of the plain
    loop, run by ``threads`` threads at once (each its own stylesheet and
    parser, as lxml wants)."""
    from lxml import etree

    with open(os.path.join(root, "doc.xml"), "rb") as f:
        data = f.read()
    counts = []

    def loop():
        xslt = etree.XSLT(etree.parse(os.path.join(root, "style.xsl")))
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        n, end, cpu = 0, time.perf_counter() + max(duration, 0.1), time.thread_time()
        while time.perf_counter() < end:
            bytes(xslt(etree.fromstring(data, parser)))
            n += 1
        counts.append((n, time.thread_time() - cpu, bytes(xslt(etree.fromstring(data, parser)))))

    started = time.perf_counter()
    running = [threading.Thread(target=loop) for _ in range(threads)]
    for t in running:
        t.start()
    for t in running:
        t.join()
    n = sum(c[0] for c in counts)
    return n / (time.perf_counter() - started), sum(c[1] for c in counts) / n, counts[0][2]


def thread_cpu(pid):
    """{thread id: CPU seconds} of the process's threads."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def measure(url, duration, connections, pid):
    """wrk's rate, and the CPU per request of the server's reactor thread,
    its other threads (the transformations) and wrk itself."""
    cmd = ["taskset", "-c", CLIENT_CORE, "wrk", "-t1", f"-c{connections}", f"-d{duration}s", url]
    before, children = thread_cpu(pid), resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
    after, done = thread_cpu(pid), resource.getrusage(resource.RUSAGE_CHILDREN)
    total = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    n = int(total.group(1)) if total else 0
    used = {tid: cpu - before.get(tid, 0.0) for tid, cpu in after.items()}
    reactor = used.pop(pid, 0.0)
    wrk_cpu = done.ru_utime + done.ru_stime - children.ru_utime - children.ru_stime
    per = (lambda seconds: seconds / n * 1e6) if n else (lambda seconds: float("nan"))
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "non2xx": int(errors.group(1)) if errors else 0,
        "reactor_us": per(reactor),
        "workers_us": per(sum(used.values())),
        "server_us": per(reactor + sum(used.values())),
        "wrk_us": per(wrk_cpu),
    }


def start(work, root, port, threads, pin):
    conf = os.path.join(work, f"xslt-{port}.conf")
    with open(conf, "w") as f:
        f.write(f"""Listen tcp:{port}:interface=127.0.0.1
DocumentRoot "{root}"
Include "{REPO}/axkit/defaults/mime.conf"
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
    proc = twistd_axkit(work, conf, pin=pin, log=os.path.join(work, f"{port}.log"))
    wait_listening(port, proc)
    return proc


CASES = (  # label, AxThreads, pinned to one core, path
    ("uncached", 1, True, "/uncached/doc.xml"),
    ("uncached-2t", 2, False, "/uncached/doc.xml"),
    ("cached", 1, True, "/doc.xml"),
    ("static", 1, True, "/out.html"),
)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3, help="best CPU per request of these")
    args = ap.parse_args()
    need_tools("wrk", "taskset")
    work = tempfile.mkdtemp(prefix="axkit-xslt-bench-")
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
    print(f"document {len(doc)} bytes, output {len(output)} bytes")
    best = {}  # label -> the round with the least server CPU per request
    procs = {}
    try:
        for label, threads, pin, _ in CASES:
            port = free_port()
            procs[label] = (start(work, root, port, threads, pin), port)
        for n in range(args.rounds):
            rate, cpu, _ = lxml_loop(root, args.duration)
            r = {"rps": rate, "server_us": cpu * 1e6}
            print(f"round {n + 1}: {'lxml loop':12} {rate:6.0f}/s  CPU {cpu * 1e6:5.0f} us/page")
            if "lxml" not in best or r["server_us"] < best["lxml"]["server_us"]:
                best["lxml"] = r
            rate2, cpu2, _ = lxml_loop(root, args.duration, threads=2)
            print(f"round {n + 1}: {'lxml-2t':12} {rate2:6.0f}/s  CPU {cpu2 * 1e6:5.0f} us/page")
            if "lxml-2t" not in best or rate2 > best["lxml-2t"]["rps"]:
                best["lxml-2t"] = {"rps": rate2, "server_us": cpu2 * 1e6}
            for label, _, _, path in CASES:
                proc, port = procs[label]
                url = f"http://127.0.0.1:{port}{path}"
                measure(url, 1, args.connections, proc.pid)  # warm up
                r = measure(url, args.duration, args.connections, proc.pid)
                print(
                    f"round {n + 1}: {label:12} {r['rps']:6.0f}/s  CPU {r['server_us']:5.0f} us "
                    f"(reactor {r['reactor_us']:.0f}, transform threads {r['workers_us']:.0f}; "
                    f"wrk {r['wrk_us']:.0f})  non-2xx {r['non2xx']}"
                )
                if label not in best or r["server_us"] < best[label]["server_us"]:
                    best[label] = r
    finally:
        for proc, _ in procs.values():
            stop(proc)
        shutil.rmtree(work, True)
    lxml_us = best["lxml"]["server_us"]
    one, two = best["uncached"], best["uncached-2t"]
    cached, static = best["cached"], best["static"]
    # Two cores: 2 s of CPU per second shared by the server and wrk; the
    # reactor thread (one core at most) must carry its part alone.
    two_core_rate = min(2e6 / (two["server_us"] + two["wrk_us"]), 1e6 / two["reactor_us"])
    print(f"best of {args.rounds} rounds, ratios by CPU time (they survive a shared machine):")
    print(f"  uncached / lxml loop, one core   {lxml_us / one['server_us']:.2f}  (target 0.7)")
    print(f"  uncached-2t / lxml loop, 2 cores {two_core_rate * lxml_us / 1e6:.2f}  (target 1.6)")
    print(f"  cached / static                  {static['server_us'] / cached['server_us']:.2f}"
          "  (target 0.8)")  # fmt: skip
    print("the same rounds by wrk's rate (noisy where the machine is shared):")
    rate = best["lxml"]["rps"]
    print(f"  uncached / lxml loop             {one['rps'] / rate:.2f}")
    print(f"  uncached-2t / lxml loop          {two['rps'] / rate:.2f}")
    print(f"  lxml loop on 2 threads / 1       {best['lxml-2t']['rps'] / rate:.2f}"
          "  (what this machine gave the plain loop)")  # fmt: skip
    print(f"  cached / static                  {cached['rps'] / static['rps']:.2f}")


if __name__ == "__main__":
    main()
