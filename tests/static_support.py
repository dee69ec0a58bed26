"""Shared helpers for the static-file tests: a document root in a temp folder,
a real server on 127.0.0.1:0, requests over the raw client (tests/rawclient.py)."""

import os
import shutil
import tempfile

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from axkit.testing import TEST_LISTEN, MemorySite, parse_responses, start_server

from .rawclient import exchange, request_bytes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

STATIC_PLUGINS = """
Include "{repo}/conf.d/mime.conf"
Plugin uri_to_file
Plugin mime_map
Plugin serve_dir
Plugin serve_file
"""


class StaticTestCase(TestCase):
    """A document root (self.root) and a running server (self.server), or
    with ``in_memory`` a MemorySite (self.site)."""

    extra_config = ""
    plugins = STATIC_PLUGINS
    # True: requests go through a MemorySite (the whole engine and hook
    # chain, no socket) -- for what needs no network: MIME, header rules.
    in_memory = False

    def write(self, name, data, mtime=None):
        path = os.path.join(self.root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        return path

    def make_root(self):
        self.root = tempfile.mkdtemp(prefix="axkit-static-")
        self.addCleanup(shutil.rmtree, self.root, True)

    def make_outside(self):
        """A folder outside the root (self.outside) holding secret.txt."""
        self.outside = tempfile.mkdtemp(prefix="axkit-outside-")
        self.addCleanup(shutil.rmtree, self.outside, True)
        with open(os.path.join(self.outside, "secret.txt"), "w") as f:
            f.write("outside secret\n")

    @defer.inlineCallbacks
    def start(self, extra=None, root=None):
        text = (
            f'DocumentRoot "{root or self.root}"\n'
            + self.plugins.format(repo=REPO)
            + (self.extra_config if extra is None else extra)
        )
        if self.in_memory:
            self.site = MemorySite(f"Listen {TEST_LISTEN}\n" + text)
            self.addCleanup(self.site.close)
            return self.site
        server = yield start_server(text)
        self.addCleanup(server.stop)
        self.server = server
        return server

    @defer.inlineCallbacks
    def get(self, path, headers=(), method="GET"):
        """One request on its own connection; the parsed Response."""
        if self.in_memory:
            conn = self.site.connect()
            conn.request(method, path, list(headers) + [("Connection", "close")])
            [response] = self.site.wait_for(conn)
            data = conn.transport.value()
            self.assertIsNotNone(response, data[:500])
            self.assertEqual(len(conn.responses()), 1, data[:500])
        else:
            data = yield exchange(self.server.port, request_bytes(path, headers, method))
            responses = parse_responses(data, [method])
            self.assertEqual(len(responses), 1, data[:500])
            response = responses[0]
        response.raw = data
        return response
