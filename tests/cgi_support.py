"""Shared helpers for the CGI tests: a real server, a request over the raw
client (tests/rawclient.py), counters."""

import os
import time

from twisted.internet import defer, reactor, task
from twisted.logger import formatEvent, globalLogPublisher

from axkit.testing import parse_responses, start_server

from .rawclient import exchange, request_bytes

HERE = os.path.dirname(os.path.abspath(__file__))
CGI_BIN = os.path.join(HERE, "cgi-bin")


def plugin_name():
    """`cgi` when discovery finds our dropin, else the dotted path (a stale
    global install of axkit can shadow the worktree's twisted/plugins)."""
    from axkit import discovery

    return "cgi" if "cgi" in discovery.discover() else "axkit.plugins.cgi.CGI"


def base_config(docroot, extra=""):
    return f"""
        DocumentRoot {docroot}
        Plugin {plugin_name()}
        Plugin uri_to_file
        Plugin serve_file
        ScriptAlias /cgi-bin/ {CGI_BIN}/
        CGITimeout 3
        {extra}
    """


class LogCapture:
    def __init__(self):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)

    def stop(self):
        globalLogPublisher.removeObserver(self.events.append)

    def lines(self, namespace="axkit.cgi"):
        return [formatEvent(e) for e in self.events if e.get("log_namespace") == namespace]


@defer.inlineCallbacks
def request(port, method="GET", path="/", headers=(), body=b"", **kw):
    """One request with Connection: close; the parsed Response."""
    data = yield exchange(port, request_bytes(path, headers, method, body=body), **kw)
    responses = parse_responses(data, [method])
    if not responses:
        raise AssertionError(f"no complete response in {data[:300]!r}")
    return responses[0]


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def children(pid=None):
    """(pid, state) of every child process of ``pid`` (default: us)."""
    pid = pid or os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[1]) == pid:
            found.append((int(entry), fields[0]))
    return found


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def sleep(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


@defer.inlineCallbacks
def wait_until(predicate, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        yield sleep(step)
    return predicate()


@defer.inlineCallbacks
def serve(testcase, config_text, base_dir=None):
    from axkit.cgi.slots import SLOTS

    server = yield start_server(config_text, base_dir)

    @defer.inlineCallbacks
    def stop():
        yield server.stop()
        # Every script has ended and been reaped before the next test.
        ok = yield wait_until(lambda: SLOTS.used == 0 and not SLOTS.running)
        if not ok:
            raise AssertionError(f"CGI processes still running: {SLOTS.running!r}")

    testcase.addCleanup(stop)
    return server
