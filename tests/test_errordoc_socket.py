"""ErrorDocument over a real socket: pages served by a CGI program and by a
WSGI application (REDIRECT_STATUS, REDIRECT_URL ... as Apache 2.4.71 sets
them for the same lines), and the errors of a CGI program (502, 504) and
of an application (500) answered with a page."""

import json
import os
import shutil
import tempfile

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from tests.cgi_support import CGI_BIN, plugin_name, request, serve
from tests.test_errordoc_pages import ERROR_DOCUMENT
from tests.test_wsgi_protocol import APPS, plugin_line


class PagesOverASocketTests(TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root)
        os.mkdir(os.path.join(root, "errors"))
        with open(os.path.join(root, "errors", "bad.html"), "w") as f:
            f.write("<h1>bad gateway, sorry</h1>\n")
        self.server = yield serve(
            self,
            f"""
            DocumentRoot {root}
            Plugin {ERROR_DOCUMENT}
            Plugin {plugin_name()}
            Plugin {plugin_line()}
            Plugin uri_to_file
            Plugin mime_map
            Plugin serve_file
            AddType text/html .html
            ScriptAlias /cgi-bin/ {CGI_BIN}/
            CGITimeout 1
            WSGIScriptAlias /app {APPS}:raises
            WSGIScriptAlias /wenv {APPS}:env
            ErrorDocument 404 /cgi-bin/env.py
            ErrorDocument 502 /errors/bad.html
            ErrorDocument 504 "too slow"
            ErrorDocument 500 /wenv/page?from=500
            <Location /text>
                ErrorDocument 404 "Not here"
            </Location>
            <Location /away>
                ErrorDocument 404 http://example.com/elsewhere
            </Location>
        """,
        )

    @defer.inlineCallbacks
    def test_a_cgi_page(self):
        # Apache: 404, REDIRECT_STATUS=404, REDIRECT_URL, the query and method
        # of the first request; the page runs as a GET.
        r = yield request(self.server.port, "POST", "/missing?q=1", body=b"a=1")
        self.assertEqual(r.status, 404)
        env = json.loads(r.body)["env"]
        self.assertEqual(env["REDIRECT_STATUS"], "404")
        self.assertEqual(env["REDIRECT_URL"], "/missing")
        self.assertEqual(env["REDIRECT_QUERY_STRING"], "q=1")
        self.assertEqual(env["REDIRECT_REQUEST_METHOD"], "POST")
        self.assertEqual(env["REQUEST_METHOD"], "GET")
        self.assertEqual(env["REQUEST_URI"], "/missing?q=1")
        self.assertEqual(env["SCRIPT_NAME"], "/cgi-bin/env.py")

    @defer.inlineCallbacks
    def test_a_cgi_programs_502(self):
        r = yield request(self.server.port, "GET", "/cgi-bin/garbage.sh")
        self.assertEqual((r.status, r.body), (502, b"<h1>bad gateway, sorry</h1>\n"))

    @defer.inlineCallbacks
    def test_a_cgi_programs_504(self):
        r = yield request(self.server.port, "GET", "/cgi-bin/hang.sh")
        self.assertEqual((r.status, r.body), (504, b"too slow"))

    @defer.inlineCallbacks
    def test_an_applications_500_with_an_application_page(self):
        r = yield request(self.server.port, "GET", "/app/x")
        self.assertEqual(r.status, 500)
        env = json.loads(r.body)
        self.assertEqual(env["REDIRECT_STATUS"], "500")
        self.assertEqual(env["REDIRECT_URL"], "/app/x")
        self.assertEqual(env["PATH_INFO"], "/page")
        self.assertEqual(env["QUERY_STRING"], "from=500")
        self.flushLoggedErrors(ValueError)

    @defer.inlineCallbacks
    def test_text_and_url(self):
        r = yield request(self.server.port, "GET", "/text/x")
        self.assertEqual((r.status, r.body), (404, b"Not here"))
        r = yield request(self.server.port, "GET", "/away/x")
        self.assertEqual((r.status, r.header("Location")), (302, "http://example.com/elsewhere"))
