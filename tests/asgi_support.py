"""Helpers of the ASGI tests: a MemorySite whose app loop is stepped by hand."""

import asyncio
import os
import tempfile

from axkit.asgi.bridge import SameThreadBridge
from axkit.testing import MemorySite, parse_responses
from tests.asgiapps import probe

APPS = "tests.asgiapps.probe"


class ASGISite:
    """A MemorySite with Plugin asgi started on a loop of its own, in this
    thread: ``pump()`` runs the loop until the apps wait."""

    def __init__(self, test, config, docroot=None):
        import axkit.asgi.bridge as bridge_module
        import axkit.plugins.asgi as plugin_module

        self.docroot = docroot or tempfile.mkdtemp()
        test.addCleanup(_rmtree, self.docroot)
        probe.SEEN["messages"].clear()
        probe.SEEN["events"].clear()
        probe.GATE.clear()
        self.loop = asyncio.new_event_loop()
        test.patch(bridge_module, "_BRIDGE", SameThreadBridge(self.loop))
        test.patch(plugin_module, "_APPS", {})
        self.site = MemorySite(
            f"Listen tcp:0:interface=127.0.0.1\nPlugin asgi\nDocumentRoot {self.docroot}\n{config}",
            route_logs=False,
        )
        test.addCleanup(self.close)
        self.plugin = self.site.config.plugins["asgi"]
        self.plugin.startup(self.site.config, self.site.clock)

    def pump(self, turns=20):
        for _ in range(turns):
            self.loop.run_until_complete(asyncio.sleep(0))

    def request(self, method="GET", path="/", headers=(), body=b""):
        conn = self.site.connect()
        conn.request(method, path, headers, body)
        self.pump()
        return conn

    def get(self, path, headers=()):
        conn = self.request("GET", path, headers)
        responses = conn.responses()
        return responses[0] if responses else None

    def failures(self):
        return [
            e
            for e in self.site.events
            if e.get("plugin") == "asgi" and e.get("log_failure") is not None
        ]

    def close(self):
        self.site.close()
        tasks = asyncio.all_tasks(self.loop)
        for task in tasks:
            task.cancel()
        if tasks:
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self.loop.close()


def _rmtree(path):
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def responses_of(transport, methods=("GET",)):
    return parse_responses(transport.value(), list(methods))


def write_file(folder, name, data):
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        f.write(data)
    return path
