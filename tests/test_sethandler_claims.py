"""SetHandler, and how a response plugin claims its URLs: a plugin listed
after serve_file answers where SetHandler names it (or where it set
request.handler itself), whatever the order of the Plugin lines; the file
plugins leave such requests alone.  SetHandler cgi-script over a real
socket as Apache 2.4.71 answers the same lines."""

import json
import os
import shutil
import tempfile

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase, TestCase

from axkit.config.errors import ConfigErrors
from axkit.hooks import DECLINED, DONE
from axkit.testing import MemorySite
from tests.cgi_support import CGI_BIN, plugin_name, request, serve
from tests.test_errordoc_pages import ERROR_DOCUMENT, plugin


class Health:
    """Answers where SetHandler names it ("healthz"): 200 for /…/ok paths
    and HEAD/GET, 404 for the rest."""

    name = "healthz"

    def hook_response(self, request, conf):
        if request.handler != "healthz":
            return DECLINED
        if not request.path.endswith("ok"):
            return 404
        request.send(200, "healthy\n", "text/plain")
        return DONE


class SelfClaiming:
    """Claims /status itself, in post_read_request (every plugin's
    post_read_request runs: no order to worry about)."""

    name = "status"

    def hook_post_read_request(self, request, conf):
        if request.path == "/status":
            request.handler = "status"
        return DECLINED

    def hook_response(self, request, conf):
        if request.handler != "status":
            return DECLINED
        request.send(200, "up\n", "text/plain")
        return DONE


class Greedy:
    """A response plugin that answers every URL no handler claimed, listed
    first (what docs/plugins.md tells such a plugin to do)."""

    name = "greedy"

    def hook_response(self, request, conf):
        if request.handler is not None:
            return DECLINED
        request.send(200, "greedy\n", "text/plain")
        return DONE


def docroot(test):
    root = tempfile.mkdtemp()
    test.addCleanup(shutil.rmtree, root)
    os.mkdir(os.path.join(root, "healthz"))
    for name, text in (("index.html", "home\n"), ("healthz/ok", "a file\n"), ("a.txt", "text\n")):
        with open(os.path.join(root, name), "w") as f:
            f.write(text)
    return root


def site_for(test, body, first=""):
    site = MemorySite(f"""
        DocumentRoot {docroot(test)}
        {first}
        Plugin uri_to_file
        Plugin mime_map
        Plugin serve_dir
        Plugin serve_file
        Plugin {plugin("compress", "axkit.plugins.compress.Compress")}
        Plugin {plugin("expires", "axkit.plugins.expires.Expires")}
        Gzip On
        GzipMinLength 0
        ExpiresDefault "access plus 1 hour"
        Plugin tests.test_sethandler_claims.Health
        {body}
    """)
    test.addCleanup(site.close)
    return site


class SetHandlerTests(SynchronousTestCase):
    def test_a_plugin_after_serve_file_answers_its_location(self):
        site = site_for(self, "<Location /health>\n SetHandler healthz\n</Location>\n")
        r = site.get("/health/ok")  # no such file: serve_file would say 404
        self.assertEqual((r.status, r.body), (200, b"healthy\n"))
        self.assertEqual(site.get("/health/nope").status, 404)
        self.assertEqual(site.get("/index.html").body, b"home\n")

    def test_a_file_there_is_not_sent(self):
        # /healthz/ok exists as a file: the handler answers, not serve_file;
        # compress and expires leave its answer alone.
        site = site_for(self, "<Location /healthz>\n SetHandler healthz\n</Location>\n")
        r = site.get("/healthz/ok", headers=[("Accept-Encoding", "gzip")])
        self.assertEqual((r.status, r.body), (200, b"healthy\n"))
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertIsNone(r.header("Expires"))
        # A folder there is not listed either.
        self.assertEqual(site.get("/healthz/").status, 404)

    def test_files_section(self):
        site = site_for(self, '<Files "*.txt">\n SetHandler healthz\n</Files>\n')
        self.assertEqual(site.get("/a.txt").status, 404)  # the handler's answer
        self.assertEqual(site.get("/index.html").body, b"home\n")

    def test_none_in_an_inner_scope(self):
        site = site_for(
            self,
            """
            <Location /healthz>
                SetHandler healthz
            </Location>
            <Location /healthz/ok>
                SetHandler None
            </Location>
        """,
        )
        self.assertEqual(site.get("/healthz/ok").body, b"a file\n")

    def test_an_internal_redirect_into_the_location(self):
        # The ErrorDocument page's walk resolves its scope again: the same
        # <Location> as the first request, and its handler is set again.
        site = site_for(
            self,
            f"""
            Plugin {ERROR_DOCUMENT}
            <Location /health>
                SetHandler healthz
                ErrorDocument 404 /health/ok
            </Location>
        """,
        )
        r = site.get("/health/nope")
        self.assertEqual((r.status, r.body), (404, b"healthy\n"))

    def test_a_careful_plugin_listed_first_leaves_it_alone(self):
        site = site_for(
            self,
            "<Location /health>\n SetHandler healthz\n</Location>\n",
            first="Plugin tests.test_sethandler_claims.Greedy",
        )
        self.assertEqual(site.get("/health/ok").body, b"healthy\n")
        self.assertEqual(site.get("/index.html").body, b"greedy\n")

    def test_config_errors(self):
        e = self.assertRaises(ConfigErrors, MemorySite, "SetHandler healthz\n")
        self.assertIn("SetHandler is not allowed in the global scope", str(e))
        e = self.assertRaises(
            ConfigErrors, MemorySite, "<Location /x>\nSetHandler a/b\n</Location>\n"
        )
        self.assertIn("expected a handler name", str(e))


class SelfClaimTests(SynchronousTestCase):
    def test_a_plugin_claiming_in_post_read_request_after_serve_file(self):
        site = site_for(self, "Plugin tests.test_sethandler_claims.SelfClaiming\n")
        r = site.get("/status")
        self.assertEqual((r.status, r.body), (200, b"up\n"))
        self.assertEqual(site.get("/index.html").body, b"home\n")


class CGIScriptTests(TestCase):
    """SetHandler cgi-script: every file of the <Location> is a program
    (Apache 2.4.71: a.sh runs, a missing name 404, a folder 403 -- "attempt
    to invoke directory as script" -- and SetHandler None serves files)."""

    timeout = 20

    @defer.inlineCallbacks
    def test_over_a_socket(self):
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root)
        run = os.path.join(root, "run")
        os.makedirs(os.path.join(run, "sub"))
        os.makedirs(os.path.join(run, "static"))
        shutil.copy(os.path.join(CGI_BIN, "env.py"), os.path.join(run, "a.py"))
        os.chmod(os.path.join(run, "a.py"), 0o755)
        shutil.copy(os.path.join(CGI_BIN, "env.py"), os.path.join(run, "static", "b.py"))
        server = yield serve(
            self,
            f"""
            DocumentRoot {root}
            Plugin uri_to_file
            Plugin serve_file
            Plugin {plugin_name()}
            <Location /run>
                Options +ExecCGI
                SetHandler cgi-script
            </Location>
            <Location /run/static>
                SetHandler None
            </Location>
        """,
        )
        r = yield request(server.port, "GET", "/run/a.py/more?x=1")
        self.assertEqual(r.status, 200)
        env = json.loads(r.body)["env"]
        self.assertEqual((env["SCRIPT_NAME"], env["PATH_INFO"]), ("/run/a.py", "/more"))
        r = yield request(server.port, "GET", "/run/missing")
        self.assertEqual(r.status, 404)
        r = yield request(server.port, "GET", "/run/sub/")
        self.assertEqual(r.status, 403)
        r = yield request(server.port, "GET", "/run/sub")
        self.assertEqual((r.status, r.header("Location")), (301, "/run/sub/"))
        r = yield request(server.port, "GET", "/run/static/b.py")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.body.startswith(b"#!/usr/bin/env python3"))
