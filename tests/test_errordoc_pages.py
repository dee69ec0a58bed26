"""ErrorDocument (the error_document plugin), in memory: a local page served
with the error's status, text, a 302 to a URL, ``default``; errors from
every source (a hook, the engine, a plugin that raised, LimitRequestBody);
the loop guard.  The expected answers are Apache 2.4.71's for the same
lines (see each test)."""

import os
import shutil
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from axkit import discovery
from axkit.config.errors import ConfigErrors
from axkit.hooks import DECLINED
from axkit.testing import MemorySite

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "access_fixtures")


def plugin(name, dotted):
    """The dropin name, or the dotted path where discovery does not find it
    (a stale install of axkit shadowing this tree's twisted/plugins)."""
    return name if name in discovery.discover() else dotted


ERROR_DOCUMENT = plugin("error_document", "axkit.plugins.error_document.ErrorDocument")


class Raises:
    """A response plugin that fails: the pipeline's 500."""

    name = "raises"

    def hook_response(self, request, conf):
        if request.path.startswith("/boom"):
            raise RuntimeError("the plugin broke")
        return DECLINED


def docroot(test):
    root = tempfile.mkdtemp()
    test.addCleanup(shutil.rmtree, root)
    os.mkdir(os.path.join(root, "errors"))
    with open(os.path.join(root, "errors", "404.html"), "w") as f:
        f.write("<h1>mine</h1>\n")
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("home\n")
    return root


def site_for(test, body, root=None):
    root = root or docroot(test)
    site = MemorySite(f"""
        Plugin {ERROR_DOCUMENT}
        Plugin tests.test_errordoc_pages.Raises
        Plugin uri_to_file
        Plugin mime_map
        Plugin serve_file
        DocumentRoot {root}
        AddType text/html .html
        {body}
    """)
    test.addCleanup(site.close)
    return site


class LocalPageTests(SynchronousTestCase):
    def setUp(self):
        self.site = site_for(
            self,
            """
            ErrorDocument 404 /errors/404.html
            ErrorDocument 405 /errors/404.html
            ErrorDocument 500 /errors/404.html
        """,
        )

    def test_the_page_with_the_errors_status(self):
        # Apache: 404, the page's body and type (and its validators).
        r = self.site.get("/missing")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.body, b"<h1>mine</h1>\n")
        self.assertEqual(r.header("Content-Type"), "text/html")

    def test_head(self):
        r = self.site.request("HEAD", "/missing")
        self.assertEqual((r.status, r.body, r.header("Content-Length")), (404, b"", "14"))

    def test_never_a_304_or_a_206(self):
        # Apache: the whole page with 404, whatever If-None-Match or Range say.
        etag = self.site.get("/missing").header("ETag")
        r = self.site.get("/missing", headers=[("If-None-Match", etag), ("Range", "bytes=0-3")])
        self.assertEqual((r.status, r.body), (404, b"<h1>mine</h1>\n"))

    def test_engine_405_keeps_allow(self):
        r = self.site.request("POST", "/index.html", body=b"x=1")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")
        self.assertEqual(r.body, b"<h1>mine</h1>\n")

    def test_a_plugin_that_raised(self):
        r = self.site.get("/boom")
        self.assertEqual((r.status, r.body), (500, b"<h1>mine</h1>\n"))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_post_to_a_missing_url_gets_the_page(self):
        # (Apache: 404 for a POST to a missing file too.)
        r = self.site.request("POST", "/nothing", body=b"a=1")
        self.assertEqual((r.status, r.body), (404, b"<h1>mine</h1>\n"))

    def test_the_connection_stays_open(self):
        connection = self.site.connect()
        connection.request("GET", "/missing")
        connection.request("GET", "/index.html")
        self.site.wait_for(connection, 2)
        first, second = connection.responses()
        self.assertEqual((first.status, second.status, second.body), (404, 200, b"home\n"))
        self.assertFalse(connection.closed)


class OtherFormsTests(SynchronousTestCase):
    def setUp(self):
        self.site = site_for(
            self,
            """
            ErrorDocument 404 "Not here, sorry"
            ErrorDocument 405 Word
            ErrorDocument 500 https://example.com/oops?a=1
            <Location /plain>
                ErrorDocument 404 default
            </Location>
        """,
        )

    def test_text(self):
        # Apache: the text alone, with the error's status, as text/html.
        r = self.site.get("/missing")
        self.assertEqual((r.status, r.body), (404, b"Not here, sorry"))
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")

    def test_one_word_is_text_too(self):
        r = self.site.request("POST", "/index.html", body=b"x")
        self.assertEqual((r.status, r.body), (405, b"Word"))

    def test_url_is_a_302(self):
        r = self.site.get("/boom")
        self.assertEqual((r.status, r.header("Location")), (302, "https://example.com/oops?a=1"))
        self.flushLoggedErrors(RuntimeError)

    def test_default_restores_the_core_page(self):
        r = self.site.get("/plain/x")
        self.assertEqual(r.status, 404)
        self.assertIn(b"<h1>404 Not Found</h1>", r.body)


class LoopTests(SynchronousTestCase):
    def test_a_missing_page_gets_the_plain_page_of_the_first_error(self):
        # Apache: "404 Not Found ... Additionally, a 404 Not Found error was
        # encountered while trying to use an ErrorDocument".
        site = site_for(self, "ErrorDocument 404 /errors/nope.html\n")
        r = site.get("/missing")
        self.assertEqual(r.status, 404)
        self.assertIn(b"Additionally, a 404 Not Found error", r.body)
        self.assertTrue(site.messages(plugin="error_document"))

    def test_a_page_that_is_its_own_error(self):
        site = site_for(self, "ErrorDocument 500 /boom/page\n")
        r = site.get("/boom/x")
        self.assertEqual(r.status, 500)
        self.assertIn(b"Additionally, a 500 Internal Server Error", r.body)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)

    def test_a_page_for_another_error(self):
        # The page's own 500 does not start its own page.
        site = site_for(
            self,
            """
            ErrorDocument 404 /boom/page
            ErrorDocument 500 /errors/404.html
        """,
        )
        r = site.get("/missing")
        self.assertEqual(r.status, 404)
        self.assertIn(b"Additionally, a 500", r.body)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class ScopeTests(SynchronousTestCase):
    def test_a_locations_page(self):
        site = site_for(
            self,
            """
            <Location /shop>
                ErrorDocument 404 "shop: no such thing"
            </Location>
        """,
        )
        self.assertEqual(site.get("/shop/x").body, b"shop: no such thing")
        self.assertIn(b"<h1>404 Not Found</h1>", site.get("/x").body)

    def test_the_servers_page_for_an_engine_error_before_the_locations(self):
        # A path the engine refuses (400) is answered before any <Location>.
        site = site_for(self, 'ErrorDocument 400 "bad path"\n')
        r = site.get("/a/%2e%2e/%2e%2e/etc")
        self.assertEqual((r.status, r.body), (400, b"bad path"))

    def test_413_for_limit_request_body(self):
        # Apache serves ErrorDocument 413 too.
        site = site_for(
            self,
            """
            LimitRequestBody 10
            ErrorDocument 413 /errors/404.html
        """,
        )
        connection = site.connect()
        connection.request("POST", "/index.html", body=b"x" * 100)
        site.wait_for(connection)
        [r] = connection.responses()
        self.assertEqual((r.status, r.body), (413, b"<h1>mine</h1>\n"))

    def test_the_page_keeps_the_challenge_of_a_401(self):
        site = site_for(
            self,
            f"""
            Plugin {plugin("access", "axkit.plugins.access.Access")}
            ErrorDocument 401 /errors/404.html
            <Location /private>
                AuthType Basic
                AuthName "Private Area"
                AuthUserFile {FIXTURES}/users.htpasswd
                Require valid-user
            </Location>
        """,
        )
        r = site.get("/private/x")
        self.assertEqual((r.status, r.body), (401, b"<h1>mine</h1>\n"))
        self.assertEqual(r.header("WWW-Authenticate"), 'Basic realm="Private Area"')

    def test_header_always_reaches_the_page(self):
        site = site_for(
            self,
            f"""
            Plugin {plugin("headers", "axkit.plugins.headers.HeadersPlugin")}
            Header always set X-Always yes
            ErrorDocument 404 /errors/404.html
        """,
        )
        r = site.get("/missing")
        self.assertEqual((r.status, r.header("X-Always")), (404, "yes"))

    def test_the_access_log_has_the_errors_status(self):
        import axkit.log

        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        log = os.path.join(folder, "access.log")
        self.addCleanup(axkit.log.close_file, log)
        site = site_for(
            self,
            f"""
            Plugin {plugin("access_log", "axkit.plugins.access_log.AccessLog")}
            AccessLog {log}
            ErrorDocument 404 /errors/404.html
        """,
        )
        site.get("/missing?q=1")
        axkit.log.flush_all()
        with open(log) as f:
            line = f.read()
        # What the client asked and what it got: the page's length, 404.
        self.assertIn('"GET /missing?q=1 HTTP/1.1" 404 14', line)


class ConfigTests(SynchronousTestCase):
    def error(self, body):
        e = self.assertRaises(ConfigErrors, MemorySite, f"Plugin {ERROR_DOCUMENT}\n{body}\n")
        return str(e)

    def test_refused(self):
        self.assertIn("expected an error status from 400 to 599", self.error("ErrorDocument 200 x"))
        self.assertIn("expected an error status", self.error("ErrorDocument abc x"))
        self.assertIn(
            "401 cannot be a full URL", self.error("ErrorDocument 401 http://example.com/login")
        )
        self.assertIn("takes 2 arguments", self.error("ErrorDocument 404"))
        self.assertIn(
            "not allowed in <Files>",
            self.error('<Files "*.x">\nErrorDocument 404 /x\n</Files>'),
        )

    def test_without_the_plugin(self):
        e = self.assertRaises(ConfigErrors, MemorySite, "ErrorDocument 404 /x\n")
        self.assertIn("Plugin error_document", str(e))

    def test_classify_as_apache(self):
        from axkit.plugins.error_document import DEFAULT, LOCAL, TEXT, URL, classify

        cases = {
            "/a.html": LOCAL,
            "http://e.com/": URL,
            "https://e.com/x": URL,
            "Gone": TEXT,
            "two words": TEXT,
            "/with space": TEXT,
            "default": DEFAULT,
            "DEFAULT": DEFAULT,
        }
        for value, kind in cases.items():
            self.assertEqual(classify(value).kind, kind, value)
