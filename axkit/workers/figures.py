"""Status and metrics across ``Workers N``: each worker's figures in a folder
the supervisor owns (made at start, removed at stop).

- a worker writes ``worker-PID.json`` (axkit.status.snapshot) once a
  second and as it exits -- a rename, so a reader never sees half a file;
- when a worker has exited, the supervisor adds what it had counted to
  ``retired.json`` (with its pid in ``pids``) and then removes its file;
- a page (any worker's) reads the other workers' files first, then
  ``retired.json``, skipping a file whose pid is already retired: no
  response is counted twice, whichever moment the page is asked at.

Why files, not prometheus_client's multiprocess mode: its values live in
memory-mapped files too, but are written on every response (4.5-6 us a
response for the three metrics with their label children cached, against
under 2 us for axkit's dict counting: measured, see bench/RESULTS.md);
a snapshot a second costs nothing per response.  The price: another
worker's figures are up to a second old.
"""

import json
import os
import time

INTERVAL = 1.0
RETIRED = "retired.json"
KEEP_PIDS = 1024  # retired pids remembered (their files are long gone)


def worker_file(folder, pid):
    return os.path.join(folder, f"worker-{pid}.json")


def write_json(path, data):
    """Write ``data`` to ``path`` atomically (a temporary file renamed)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, separators=(",", ":"))
    os.replace(tmp, path)


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


class Writer:
    """A worker's snapshot, written every INTERVAL on the reactor.
    ``serving`` (the worker's AxKitService.serving_figures, set once it
    exists) adds its open connections and requests read, for systemd's
    STATUS= line, which the supervisor sends."""

    def __init__(self, folder, reactor):
        from twisted.internet.task import LoopingCall

        self.folder = folder
        self.serving = None
        self.loop = LoopingCall(self.write)
        self.loop.clock = reactor
        self.loop.start(INTERVAL, now=False)
        reactor.addSystemEventTrigger("after", "shutdown", self.write)

    def write(self):
        from axkit.status import snapshot

        data = snapshot()
        if self.serving is not None:
            data["open"], data["served"] = self.serving()
        try:
            write_json(worker_file(self.folder, os.getpid()), data)
        except OSError:
            pass  # the supervisor removed the folder: it is stopping


def become_worker(slot, folder, reactor):
    """This process is worker ``slot``: pages add up every worker's figures."""
    from axkit import status

    status.WORKER = (slot, folder)
    return Writer(folder, reactor)


def read_others(folder, own_pid):
    """``(snapshots of the other live workers, retired totals or None)``."""
    others = []
    try:
        names = os.listdir(folder)
    except OSError:
        return [], None
    for name in names:
        if name.startswith("worker-") and name.endswith(".json"):
            try:
                pid = int(name[len("worker-") : -len(".json")])
            except ValueError:
                continue
            if pid != own_pid:
                found = read_json(os.path.join(folder, name))
                if found is not None:
                    others.append(found)
    # Read after the workers' files: a worker retired meanwhile is in
    # here with its pid, and its file (if it was read) is skipped.
    retired = read_json(os.path.join(folder, RETIRED))
    if retired is not None:
        gone = set(retired["pids"])
        others = [o for o in others if o["pid"] not in gone]
    return others, retired


def serving_figures(folder):
    """``(open connections, requests read since start)`` over every worker,
    as last written: the supervisor's STATUS= line."""
    others, retired = read_others(folder, None)
    connections = sum(o.get("open", 0) for o in others)
    requests = sum(o.get("served", 0) for o in others) + (retired or {}).get("served", 0)
    return connections, requests


def start_folder(folder, generation):
    """The supervisor's start: an empty retired.json (the server's start time)."""
    write_json(
        os.path.join(folder, RETIRED),
        {
            "started": time.time(),
            "generation": generation,
            "pids": [],
            "accepted": 0,
            "requests": [],
            "bytes": {},
            "durations": {},
            "cpu": [0.0, 0.0, 0.0, 0.0],
            "served": 0,
        },
    )


def set_generation(folder, generation):
    path = os.path.join(folder, RETIRED)
    retired = read_json(path)
    if retired is not None:
        retired["generation"] = generation
        write_json(path, retired)


def retire_worker(folder, pid):
    """A worker exited: its counts join retired.json, then its file goes."""
    from axkit.status import add_up

    path = worker_file(folder, pid)
    last = read_json(path)
    retired_path = os.path.join(folder, RETIRED)
    retired = read_json(retired_path)
    if last is not None and retired is not None:
        total = add_up([last], retired)
        retired.update(
            accepted=total["accepted"],
            requests=total["requests"],
            bytes=total["bytes"],
            durations=total["durations"],
            cpu=total["cpu"],
            served=retired.get("served", 0) + last.get("served", 0),
            pids=(retired["pids"] + [pid])[-KEEP_PIDS:],
        )
        write_json(retired_path, retired)
    try:
        os.remove(path)
    except OSError:
        pass
