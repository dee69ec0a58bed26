"""Cache headers per scope (in memory): ExpiresByType, ExpiresDefault, the
Header directive; error pages and 304s keep them; over a socket with a CGI
program's answer."""

import time

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from axkit.config import ConfigErrors
from axkit.http.dates import parse_http_date
from axkit.plugins.expires import expiry
from axkit.testing import load_config

from .static_support import StaticTestCase

MTIME = 1700000000


class CacheHeaderTests(StaticTestCase):
    in_memory = True
    extra_config = """
        Plugin expires
        Plugin headers
        ExpiresDefault "access plus 1 hour"
        ExpiresByType text/css "access plus 7 days"
        ExpiresByType image/* A600
        ExpiresByType text/javascript "modification plus 1 day"
        Header set X-Frame-Options DENY
        <Location /api>
            Header set Cache-Control "public, max-age=60"
            Header append Cache-Control stale-while-revalidate=30
        </Location>
        <Location /private>
            Header set Cache-Control no-store
            Header unset X-Frame-Options
            ExpiresActive Off
        </Location>
    """

    @defer.inlineCallbacks
    def setUp(self):
        self.make_root()
        for name in ("a.txt", "a.css", "a.png", "api/data.json", "private/p.txt"):
            self.write(name, "x")
        self.write("a.js", "x", mtime=MTIME)
        yield self.start()

    def max_age(self, r):
        return int(r.header("Cache-Control").split("max-age=")[1].split(",")[0])

    @defer.inlineCallbacks
    def test_expires_by_type_and_default(self):
        now = time.time()
        r = yield self.get("/a.txt")
        self.assertEqual(self.max_age(r), 3600)
        self.assertLess(abs(parse_http_date(r.header("Expires")) - (now + 3600)), 5)
        r = yield self.get("/a.css")
        self.assertEqual(self.max_age(r), 7 * 86400)
        r = yield self.get("/a.png")
        self.assertEqual(self.max_age(r), 600)
        r = yield self.get("/a.js")
        self.assertEqual(parse_http_date(r.header("Expires")), MTIME + 86400)
        self.assertEqual(self.max_age(r), 0)  # long expired: revalidate

    @defer.inlineCallbacks
    def test_header_directive_per_scope(self):
        r = yield self.get("/a.txt")
        self.assertEqual(r.header("X-Frame-Options"), "DENY")
        r = yield self.get("/api/data.json")
        self.assertEqual(r.header("Cache-Control"), "public, max-age=60, stale-while-revalidate=30")
        self.assertIsNotNone(r.header("Expires"))
        r = yield self.get("/private/p.txt")
        self.assertEqual(r.header("Cache-Control"), "no-store")
        self.assertIsNone(r.header("Expires"))
        self.assertIsNone(r.header("X-Frame-Options"))

    @defer.inlineCallbacks
    def test_304_keeps_cache_headers(self):
        first = yield self.get("/api/data.json")
        r = yield self.get("/api/data.json", [("If-None-Match", first.header("ETag"))])
        self.assertEqual(r.status, 304)
        self.assertEqual(r.header("Cache-Control"), first.header("Cache-Control"))
        self.assertIsNotNone(r.header("Expires"))

    @defer.inlineCallbacks
    def test_missing_file_gets_no_expires(self):
        r = yield self.get("/nope.txt")
        self.assertEqual(r.status, 404)
        self.assertIsNone(r.header("Expires"))


class ErrorPageHeaderTests(StaticTestCase):
    """Apache's two Header tables: `Header set` is for the document and
    `Header always set` for every response, error pages included; a
    server or gateway error (5xx) never carries the document's lifetime."""

    extra_config = """
        Plugin headers
        Plugin expires
        ExpiresDefault "access plus 1 hour"
        Header set Cache-Control "public, max-age=60"
        Header set X-Doc yes
        Header always set X-Frame-Options DENY
        Header setifempty X-Keep config
        Header unset X-Gone
        Header add X-Program more
        ScriptAlias /cgi-bin/ {cgi_bin}/
    """

    @defer.inlineCallbacks
    def setUp(self):
        from .cgi_support import CGI_BIN, plugin_name

        self.plugins = self.plugins.replace(
            "Plugin uri_to_file", f"Plugin {plugin_name()}\nPlugin uri_to_file"
        )
        self.make_root()
        self.write("a.txt", "x")
        yield self.start(self.extra_config.format(cgi_bin=CGI_BIN))

    @defer.inlineCallbacks
    def test_document_gets_both(self):
        r = yield self.get("/a.txt")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("X-Doc"), "yes")
        self.assertEqual(r.header("X-Frame-Options"), "DENY")
        self.assertEqual(r.header("Cache-Control"), "public, max-age=60")

    @defer.inlineCallbacks
    def test_always_reaches_error_pages(self):
        for path in ("/nope.txt", "/cgi-bin/crash.sh"):
            r = yield self.get(path)
            self.assertIn(r.status, (404, 502), path)
            self.assertEqual(r.header("X-Frame-Options"), "DENY", path)
            self.assertIsNone(r.header("X-Doc"), path)

    @defer.inlineCallbacks
    def test_always_reaches_answers_made_before_the_fixup_phase(self):
        # uri_to_file's 301 (folder without its slash) and 404 (dotfile)
        # are answered before any fixup: `always` fields are there too.
        self.write("d/x.txt", "x")
        for path, status in (("/d", 301), ("/.env", 404), ("/d/x.txt/extra", 404)):
            r = yield self.get(path)
            self.assertEqual(r.status, status, path)
            self.assertEqual(r.header("X-Frame-Options"), "DENY", path)
            self.assertIsNone(r.header("X-Doc"), path)

    @defer.inlineCallbacks
    def test_gateway_error_is_not_given_a_lifetime(self):
        # A cache in front must not keep a program's crash for a minute.
        r = yield self.get("/cgi-bin/crash.sh")
        self.assertEqual(r.status, 502)
        self.assertIsNone(r.header("Cache-Control"))
        self.assertIsNone(r.header("Expires"))

    @defer.inlineCallbacks
    def test_header_applies_over_a_programs_own_fields(self):
        # Apache runs Header after the handler: `set` replaces the program's
        # field (one field, not two that contradict each other), `setifempty`
        # leaves it, `unset` removes it, `add` adds one more.
        r = yield self.get("/cgi-bin/own_headers.sh")
        self.assertEqual(r.status, 200)
        fields = [line.split(": ", 1) for line in r.raw_head.split("\r\n")[1:] if line]
        named = lambda name: [v for k, v in fields if k.lower() == name]
        self.assertEqual(named("cache-control"), ["public, max-age=60"])
        self.assertEqual(named("x-doc"), ["yes"])
        self.assertEqual(named("x-keep"), ["program"])
        self.assertEqual(named("x-gone"), [])
        self.assertEqual(named("x-program"), ["mine", "more"])
        self.assertEqual(named("x-frame-options"), ["DENY"])
        self.assertEqual(r.body, b"body\n")

    @defer.inlineCallbacks
    def test_412_keeps_the_documents_cache_headers(self):
        r = yield self.get("/a.txt", [("If-Match", '"other"')])
        self.assertEqual(r.status, 412)
        self.assertEqual(r.header("Cache-Control"), "public, max-age=60")
        self.assertEqual(r.header("X-Frame-Options"), "DENY")


class ConfigTests(SynchronousTestCase):
    def test_expiry_syntax(self):
        self.assertEqual(expiry("access plus 1 month 2 days"), ("access", 32 * 86400))
        self.assertEqual(expiry("now plus 1 hour"), ("access", 3600))
        self.assertEqual(expiry("modification plus 30 minutes"), ("modification", 1800))
        self.assertEqual(expiry("M60"), ("modification", 60))

    def test_bad_lines_refused_with_place(self):
        for line, words in (
            ('ExpiresDefault "access plus soon"', 'expected "access plus N units"'),
            ("Header frobnicate X y", "unknown Header action"),
            ("Header set Bad:Name y", "not a valid header name"),
            ("Header set X", "takes a header name and one value"),
        ):
            text = f"Plugin expires\nPlugin headers\n{line}\n"
            with self.assertRaises(ConfigErrors) as cm:
                load_config(text)
            self.assertIn(":3:", str(cm.exception))
            self.assertIn(words, str(cm.exception))
