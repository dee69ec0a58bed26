"""Instructions per request of a real ``twistd axkit`` -- threads, wake-ups
and all -- under callgrind: the figure for changes to how work crosses
between the reactor and an application's threads or loop, which the
in-memory hot-path benches (run inline) cannot see.

The server runs under ``valgrind --tool=callgrind`` (which runs one thread
at a time, so thread hand-offs cost what their code costs, never a busy
machine's scheduling); a client in this process sends ``small`` and then,
in a second run, ``large`` keep-alive requests over a few connections in
lock step, and the difference of the two totals over ``large - small`` is
the cost of one request -- start-up and shutdown cancel out.  Child
processes (gunicorn's worker) are traced and counted too.  Repeats
within about 1%; a busy machine only makes it slower.

Used by bench/wsgi_hotpath.py and bench/asgi_hotpath.py (``--served``).
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from benchlib import REPO, TWISTD, free_port

CONNECTIONS = 4


def _wait_listening(port, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited before it listened")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server never listened")


def _drive(port, count, request, answer_end):
    """``count`` requests over CONNECTIONS keep-alive connections in lock step."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(CONNECTIONS)]
    try:
        sent = 0
        while sent < count:
            batch = socks[: min(CONNECTIONS, count - sent)]
            for s in batch:
                s.sendall(request)
            for s in batch:
                data = b""
                while not data.endswith(answer_end):
                    piece = s.recv(65536)
                    if not piece:
                        raise RuntimeError(f"connection closed: {data!r}")
                    data += piece
            sent += len(batch)
    finally:
        for s in socks:
            s.close()


def _total(conf_text, count, request, answer_end, env, prepare, command):
    work = tempfile.mkdtemp(prefix="axkit-served-")
    try:
        if prepare is not None:
            prepare(work)
        port = free_port()
        if command is None:
            conf = os.path.join(work, "site.conf")
            with open(conf, "w") as f:
                f.write(f"Listen tcp:{port}:interface=127.0.0.1\n" + conf_text.format(work=work))
            server = [*TWISTD, "-n", "--pidfile=", "axkit", "--config", conf]
        else:
            server = command(port, work)
        proc = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                "--trace-children=yes",  # (gunicorn's worker is a child)
                f"--log-file={work}/valgrind.%p.txt",
                *server,
            ],
            cwd=work,
            env=dict(os.environ, PYTHONHASHSEED="0", PYTHONPATH=REPO, **env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_listening(port, proc)
            _drive(port, 20, request, answer_end)  # (imports, caches)
            _drive(port, count, request, answer_end)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(120)
        total = 0
        for name in os.listdir(work):
            if name.startswith("valgrind."):
                with open(os.path.join(work, name)) as f:
                    refs = [
                        int(line.rsplit(":", 1)[1].replace(",", ""))
                        for line in f
                        if "refs:" in line
                    ]
                total += refs[-1] if refs else 0
        if not total:
            raise RuntimeError("no callgrind summary")
        return total
    finally:
        shutil.rmtree(work, ignore_errors=True)


def per_request(
    conf_text, request, answer_end, prepare=None, small=300, large=1300, env=None, command=None
):
    """Instructions per request of the server ``conf_text`` (a config
    without its Listen line; ``{work}`` is a scratch folder, which
    ``prepare(work)`` may fill first) -- or of another server,
    ``command(port, work)`` -- or None without valgrind."""
    if shutil.which("valgrind") is None:
        return None
    env = env or {}
    high = _total(conf_text, large, request, answer_end, env, prepare, command)
    low = _total(conf_text, small, request, answer_end, env, prepare, command)
    return (high - low) / (large - small)
