"""The alias plugin: Alias, AliasMatch, Redirect, RedirectMatch,
RedirectPermanent, RedirectTemp -- Apache's mod_alias.  The expected
statuses and Location values are Apache 2.4.71's for the same lines
(except that a Location given as a path stays a path: Apache makes it
absolute with the Host)."""

import os
import shutil
import tempfile

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase, TestCase

from axkit.config.errors import ConfigErrors
from axkit.testing import MemorySite, load_config
from tests.cgi_support import request, serve

HERE = os.path.dirname(os.path.abspath(__file__))
FX = os.path.join(HERE, "alias_fixtures")

ALIASES = f"""
    Alias /al {FX}/target
    Alias /al2/ {FX}/target/
    Alias /robots.txt {FX}/robots.txt
    AliasMatch ^/m/(.*)$ {FX}/target/$1
    AliasMatch ^/x(.*)$ {FX}/target/$1
    Redirect /r http://example.com/new
    Redirect /rel /target
    RedirectMatch ^/m2(.*) /n?a=$1&b
    RedirectMatch 301 ^/q(.*)$ http://e.com/x$1
    Redirect gone /g
    Redirect 303 /s /t
    RedirectPermanent /p http://e.com/p
    RedirectTemp /tmp http://e.com/tmp
    Redirect 404 /nf
"""


def site_for(test, body, docroot=f"{FX}/docroot"):
    site = MemorySite(f"""
        Plugin uri_to_file
        Plugin serve_file
        Plugin alias
        DocumentRoot {docroot}
        {body}
    """)
    test.addCleanup(site.close)
    return site


class AliasTests(SynchronousTestCase):
    def setUp(self):
        self.site = site_for(self, ALIASES)

    def check(self, path, status, location=None, body=None):
        r = self.site.get(path)
        self.assertEqual((r.status, r.header("Location")), (status, location), path)
        if body is not None:
            self.assertEqual(r.body, body, path)

    def test_alias_folder(self):
        self.check("/", 200, body=b"root\n")
        self.check("/al", 301, "/al/")  # Apache: 301 to the slashed URL
        self.check("/al/", 404)  # no index.html there (Apache: 404)
        self.check("/al/a.txt", 200, body=b"al\n")
        self.check("/al/sub", 301, "/al/sub/")
        self.check("/al/sub/", 200, body=b"sub\n")  # DirectoryIndex applies
        self.check("/alx", 404)  # whole segments only

    def test_alias_with_a_slash_needs_it(self):
        self.check("/al2", 404)  # as Apache
        self.check("/al2/a.txt", 200, body=b"al\n")

    def test_alias_to_a_file(self):
        self.check("/robots.txt", 200, body=b"robots\n")

    def test_alias_match(self):
        self.check("/m/a.txt", 200, body=b"al\n")
        self.check("/xsub/", 200, body=b"sub\n")
        self.check("/xsub", 301, "/xsub/")

    def test_alias_match_cannot_climb_out(self):
        self.check("/x../secret.txt", 403)
        self.assertTrue(any("outside" in m for m in self.site.messages(plugin="alias")))

    def test_redirects(self):
        self.check("/r/x%20y/z?q=1&b", 302, "http://example.com/new/x%20y/z?q=1&b")
        self.check("/r", 302, "http://example.com/new")
        self.check("/rx", 404)
        self.check("/rel/a?x", 302, "/target/a?x")
        self.check("/m2/foo?z=1", 302, "/n?a=/foo&b")  # its own query wins; & literal
        self.check("/q/foo?z=1", 301, "http://e.com/x/foo?z=1")
        self.check("/q/a%20b%3F", 301, "http://e.com/x/a%20b%3F")
        self.check("/g", 410)
        self.check("/s/x", 303, "/t/x")
        self.check("/p", 301, "http://e.com/p")
        self.check("/tmp/y", 302, "http://e.com/tmp/y")
        self.check("/nf", 404)

    def test_head_and_post_are_redirected_too(self):
        r = self.site.request("HEAD", "/p")
        self.assertEqual((r.status, r.header("Location")), (301, "http://e.com/p"))
        r = self.site.request("POST", "/p", body=b"x")
        self.assertEqual((r.status, r.header("Location")), (301, "http://e.com/p"))


class OrderTests(SynchronousTestCase):
    def test_redirect_wins_over_alias_and_first_match_wins(self):
        site = site_for(
            self,
            f"""
            Alias /both {FX}/target
            Redirect /both /elsewhere
            Alias /first {FX}/target
            Alias /first/sub {FX}/docroot
        """,
        )
        self.assertEqual(site.get("/both/a.txt").header("Location"), "/elsewhere/a.txt")
        # The first matching line wins, as in Apache: write specific ones first.
        self.assertEqual(site.get("/first/sub/").body, b"sub\n")

    def test_a_server_s_lines_come_before_the_global_ones(self):
        site = site_for(
            self,
            f"""
            Alias /a {FX}/docroot
            Redirect /r /global
            <Server>
                Alias /a {FX}/target
                Redirect /r /server
            </Server>
        """,
        )
        self.assertEqual(site.get("/a/a.txt").body, b"al\n")
        self.assertEqual(site.get("/r").header("Location"), "/server")
        self.assertEqual(site.get("/a/index.html").status, 404)


class ContainmentTests(SynchronousTestCase):
    """An Alias target has DocumentRoot's symlink and dot-file rules."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        os.makedirs(f"{self.tmp}/target")
        os.makedirs(f"{self.tmp}/outside")
        with open(f"{self.tmp}/outside/secret", "w") as f:
            f.write("secret")
        with open(f"{self.tmp}/target/.env", "w") as f:
            f.write("dot")
        with open(f"{self.tmp}/target/ok.txt", "w") as f:
            f.write("ok")
        os.symlink(f"{self.tmp}/outside/secret", f"{self.tmp}/target/leak")
        os.symlink(f"{self.tmp}/outside", f"{self.tmp}/target/leakdir")
        os.symlink(f"{self.tmp}/target/ok.txt", f"{self.tmp}/target/inside")

    def test_symlinks_and_dot_files(self):
        site = site_for(self, f"Alias /t {self.tmp}/target\n")
        self.assertEqual(site.get("/t/ok.txt").body, b"ok")
        self.assertEqual(site.get("/t/inside").body, b"ok")
        self.assertEqual(site.get("/t/leak").status, 403)
        self.assertEqual(site.get("/t/leakdir/secret").status, 403)
        self.assertEqual(site.get("/t/.env").status, 404)

    def test_scope_options_apply(self):
        site = site_for(
            self,
            f"""
            Alias /t {self.tmp}/target
            AllowSymlinksOutsideRoot On
            <Location /t/inside>
                Options -FollowSymLinks
            </Location>
        """,
        )
        self.assertEqual(site.get("/t/leak").body, b"secret")
        self.assertEqual(site.get("/t/inside").status, 403)


class ConfigErrorTests(SynchronousTestCase):
    def error(self, body):
        with self.assertRaises(ConfigErrors) as caught:
            load_config("Plugin alias\n" + body, name="site.conf")
        return str(caught.exception)

    def test_errors(self):
        cases = [
            ("Alias icons /x", "site.conf:2: expected a URL path starting with '/'"),
            ("Alias /icons", "site.conf:2: Alias takes 2 arguments, got 1"),
            ("AliasMatch ^/(x /y", "site.conf:2: bad regular expression"),
            ("Redirect /a b", "site.conf:2: Redirect to non-URL 'b'"),
            ("Redirect /a", "site.conf:2: Redirect: URL to redirect to is missing"),
            (
                "Redirect gone /a http://x/",
                "site.conf:2: Redirect: a URL is not valid with status 410",
            ),
            ("Redirect 999 /a http://x/", "site.conf:2: Redirect: invalid status code 999"),
            ("Redirect a http://x/", "site.conf:2: Redirect: the URL-path must start"),
            ("RedirectMatch 301 ^/(a http://x/", "site.conf:2: bad regular expression"),
            (
                "RedirectPermanent /a",
                "site.conf:2: RedirectPermanent: URL to redirect to is missing",
            ),
            ("RedirectTemp /a http://x/ y", "site.conf:2: RedirectTemp takes URL-PATH URL"),
            (
                "<Location /x>\nAlias /a /b\n</Location>",
                "site.conf:3: Alias is not allowed in <Location>",
            ),
            ("Redirect /a http://x/ extra", "site.conf:2: Redirect takes [STATUS]"),
        ]
        for body, expected in cases:
            self.assertIn(expected, self.error(body), body)


class RealSocketTests(TestCase):
    """Every directive once over a real socket."""

    timeout = 20

    @defer.inlineCallbacks
    def test_each_directive(self):
        server = yield serve(
            self,
            f"""
            DocumentRoot {FX}/docroot
            Plugin alias
            Plugin uri_to_file
            Plugin serve_file
            {ALIASES}
        """,
        )
        expected = [
            ("/al/a.txt", 200, None, b"al\n"),
            ("/al", 301, "/al/", None),
            ("/m/a.txt", 200, None, b"al\n"),
            ("/r/x?y=1", 302, "http://example.com/new/x?y=1", None),
            ("/q/z", 301, "http://e.com/x/z", None),
            ("/p/1", 301, "http://e.com/p/1", None),
            ("/tmp/1", 302, "http://e.com/tmp/1", None),
            ("/g", 410, None, None),
        ]
        for path, status, location, body in expected:
            r = yield request(server.port, "GET", path)
            self.assertEqual((r.status, r.header("Location")), (status, location), path)
            if body is not None:
                self.assertEqual(r.body, body)
