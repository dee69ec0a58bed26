"""A real-world stylesheet set: DocBook's HTML stylesheets (about 60 files
through xsl:import, xsl:include, external entities and document()) on a
real server, each answer equal to xsltproc's.  Skipped where Debian's
docbook-xsl is not installed; compared with xsltproc when it is
installed, else with its output committed for docbook-xsl 1.79.2."""

import hashlib
import os
import shutil
import subprocess

import treq
from twisted.internet import defer, reactor
from twisted.trial.unittest import SkipTest, TestCase
from twisted.web.client import HTTPConnectionPool

from axkit.testing import start_server

from .xslt_support import FIXTURES, PLUGINS, REPO

DOCBOOK = "/usr/share/xml/docbook/stylesheet/docbook-xsl-nons"
HTML = os.path.join(DOCBOOK, "html", "docbook.xsl")
ARTICLE = os.path.join(FIXTURES, "docbook", "article.xml")


def xsltproc_output():
    if shutil.which("xsltproc"):
        return subprocess.run(
            ["xsltproc", HTML, ARTICLE], capture_output=True, check=True, timeout=60
        ).stdout
    with open(os.path.join(DOCBOOK, "VERSION")) as f:
        if "1.79.2" not in f.read():
            raise SkipTest("no xsltproc, and docbook-xsl is not 1.79.2")
    with open(os.path.join(FIXTURES, "expected", "article-docbook-1.79.2.html"), "rb") as f:
        return f.read()


class DocBook(TestCase):
    def setUp(self):
        if not os.path.exists(HTML):
            raise SkipTest("docbook-xsl is not installed (apt-get install docbook-xsl)")

    @defer.inlineCallbacks
    def test_docbook_html_matches_xsltproc(self):
        want = hashlib.sha256(xsltproc_output()).hexdigest()
        server = yield start_server(
            f'DocumentRoot "{os.path.dirname(ARTICLE)}"\n'
            + PLUGINS.format(repo=REPO)
            + f"AxThreads 2\nAxPassQueryParams On\nAxAddProcessor text/xsl file://{HTML}\n"
        )
        self.addCleanup(server.stop)
        pool = HTTPConnectionPool(reactor, persistent=True)
        pool.maxPersistentPerHost = 4
        self.addCleanup(pool.closeCachedConnections)
        limit = defer.DeferredSemaphore(4)
        got = []

        @defer.inlineCallbacks
        def one(query):
            r = yield treq.get(server.url("/article.xml" + query), pool=pool)
            body = yield r.content()
            got.append((r.code, r.headers.getRawHeaders("content-type"), body))

        # Cached and (through distinct queries: other cache keys) uncached.
        queries = ["", "?a=1", "?a=2", "?a=3"] * 6
        yield defer.gatherResults([limit.run(one, q) for q in queries], consumeErrors=True)
        self.assertEqual(len(got), 24)
        for code, types, body in got:
            self.assertEqual(code, 200)
            self.assertEqual(types, ["text/html; charset=ISO-8859-1"])
            self.assertEqual(hashlib.sha256(body).hexdigest(), want)
