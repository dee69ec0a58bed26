"""The xslt plugin in memory: chains, alternate styles and their choosers,
xml-stylesheet instructions, string parameters, output types, HEAD and
conditional requests, XML handed over by a plugin.  Golden outputs were
made by xsltproc from the same files (tests/xslt/expected)."""

import os
import time

from axkit.http.dates import http_date, parse_http_date

from .xslt_support import HandOver, XsltCase, expected

STYLES = """
AxAddProcessor text/xsl /style/page.xsl
<AxStyleName text>
    AxAddProcessor text/xsl /style/text.xsl
</AxStyleName>
Include "{root}/chain.conf"
"""


# Included from the site's folder: "style/page.xsl" is relative to it.
CHAIN_CONF = """
<AxStyleName chain>
    AxAddProcessor text/xsl /style/wrap.xsl
    AxAddProcessor text/xsl style/page.xsl
</AxStyleName>
"""


class DefaultStyle(XsltCase):
    chain_conf = CHAIN_CONF
    config = STYLES + "AxPassQueryParams On\n"

    def test_golden_output_and_type(self):
        r = self.get("/doc.xml")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, expected("doc.html"))
        self.assertEqual(r.header("Content-Type"), "text/html; charset=UTF-8")
        self.assertTrue(r.header("ETag").startswith('"x'))
        self.assertEqual(self.errors(), [])

    def test_params_are_strings_never_xpath(self):
        r = self.get("/doc.xml?who=1%20or%201")
        self.assertEqual(r.body, expected("doc-who.html"))

    def test_unknown_style_falls_back_to_default(self):
        # No chooser configured: ?style= is only a parameter.
        r = self.get("/doc.xml?style=text")
        self.assertIn(b"<h1>Hello</h1>", r.body)

    def test_head_and_conditional(self):
        r = self.get("/doc.xml")
        head = self.get("/doc.xml", method="HEAD")
        self.assertEqual(head.status, 200)
        self.assertEqual(head.body, b"")
        self.assertEqual(head.header("Content-Length"), str(len(r.body)))
        self.assertEqual(head.header("ETag"), r.header("ETag"))
        again = self.get("/doc.xml", [("If-None-Match", r.header("ETag"))])
        self.assertEqual(again.status, 304)
        since = self.get("/doc.xml", [("If-Modified-Since", r.header("Last-Modified"))])
        self.assertEqual(since.status, 304)
        part = self.get("/doc.xml", [("Range", "bytes=0-5")])
        self.assertEqual(part.status, 206)
        self.assertEqual(part.body, r.body[:6])

    def test_params_change_the_etag(self):
        a = self.get("/doc.xml?who=a")
        b = self.get("/doc.xml?who=b")
        self.assertNotEqual(a.header("ETag"), b.header("ETag"))
        self.assertIn(b">a<", a.body)
        self.assertIn(b">b<", b.body)

    def test_result_without_root_element(self):
        # page.xsl has no template for <data>: text only (as xsltproc gives).
        r = self.get("/data.xml")
        self.assertEqual((r.status, r.body), (200, b"data v1\n"))

    def test_other_methods(self):
        r = self.get("/doc.xml", method="POST")
        self.assertEqual(r.status, 405)

    def test_non_xml_files_are_left_alone(self):
        self.write("plain.txt", "plain\n")
        r = self.get("/plain.txt")
        self.assertEqual(r.body, b"plain\n")

    def test_stylesheets_are_sent_as_they_are(self):
        r = self.get("/style/page.xsl")
        self.assertEqual(r.body.decode(), self.read("style/page.xsl"))

    def test_any_plus_xml_type_is_styled(self):
        self.write("feed.atom", self.read("doc.xml"))
        self.assertEqual(self.get("/feed.atom").body, expected("doc.html"))


class Choosers(XsltCase):
    chain_conf = CHAIN_CONF
    config = STYLES + "AxStyleChooser querystring\n"

    def test_querystring(self):
        self.assertEqual(self.get("/doc.xml?style=text").body, expected("doc.txt"))
        r = self.get("/doc.xml?style=text")
        self.assertEqual(r.header("Content-Type"), "text/plain; charset=ISO-8859-1")

    def test_chain_in_order(self):
        self.assertEqual(self.get("/doc.xml?style=chain").body, expected("doc-chain.html"))

    def test_unknown_name_is_the_default(self):
        self.assertEqual(self.get("/doc.xml?style=nosuch").body, expected("doc.html"))

    def test_cookie_chooser(self):
        site = self.make_site(STYLES + "AxStyleChooser cookie\n")
        r = site.request("GET", "/doc.xml", [("Cookie", "a=b; axkit_style=text")])
        self.assertEqual(r.body, expected("doc.txt"))
        self.assertEqual(r.header("Vary"), "Cookie")
        r = site.request("GET", "/doc.xml?style=text")
        self.assertEqual(r.body, expected("doc.html"))

    def test_pathinfo_chooser(self):
        site = self.make_site(STYLES + "AxStyleChooser pathinfo\n")
        self.assertEqual(site.request("GET", "/doc.xml/text").body, expected("doc.txt"))
        self.assertEqual(site.request("GET", "/doc.xml").body, expected("doc.html"))
        # Without the pathinfo chooser a path info is a 404, as for files.
        self.assertEqual(self.get("/doc.xml/text").status, 404)


class StylePI(XsltCase):
    config = ""

    def test_pi_used_without_processors(self):
        r = self.get("/pi.xml")
        self.assertEqual(r.body, expected("pi.txt"))
        self.assertEqual(r.header("Content-Type"), "text/plain; charset=ISO-8859-1")

    def test_no_pi_sends_the_file(self):
        r = self.get("/doc.xml")
        self.assertEqual(r.body.decode(), self.read("doc.xml"))

    def test_ignore_style_pi(self):
        site = self.make_site("AxIgnoreStylePI On\n")
        r = site.request("GET", "/pi.xml")
        self.assertEqual(r.body.decode(), self.read("pi.xml"))

    def test_processors_win_over_pi(self):
        site = self.make_site("AxAddProcessor text/xsl /style/page.xsl\n")
        self.assertIn(b"<h1>Via PI</h1>", site.request("GET", "/pi.xml").body)


class HandedOver(XsltCase):
    config = "Plugin tests.xslt_support.HandOver\nAxAddProcessor text/xsl /style/page.xsl\n"

    def test_bytes(self):
        r = self.get("/built/bytes")
        self.assertEqual(r.status, 200)
        self.assertIn(b"<h1>Built</h1><p>from bytes</p>", r.body.replace(b"\n", b""))
        self.assertEqual(r.header("Content-Type"), "text/html; charset=UTF-8")

    def test_tree(self):
        r = self.get("/built/tree")
        self.assertIn(b"<h1>Tree</h1>", r.body)
        self.assertEqual(self.get("/built/tree", method="HEAD").body, b"")

    def test_sent_as_it_is_without_stylesheet(self):
        site = self.make_site("Plugin tests.xslt_support.HandOver\n")
        r = site.request("GET", "/built/bytes")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "application/xml")
        self.assertIn(b"<para>from bytes</para>", r.body)

    def test_other_requests_untouched(self):
        self.assertEqual(self.get("/nothing").status, 404)


class HandedOverWithKey(XsltCase):
    """hand_over(request, build, key=..., files=...): the styled output is
    cached under the key; a hit neither builds nor transforms; a new key,
    an edited file or stylesheet shows on the very next request."""

    config = "Plugin tests.xslt_support.HandOver\nAxAddProcessor text/xsl /style/page.xsl\n"

    def setUp(self):
        super().setUp()
        self.patch(HandOver, "version", 1)
        self.patch(HandOver, "built", 0)
        self.patch(HandOver, "source", self.write("data.txt", "row one"))

    def test_cached_under_its_key(self):
        first = self.get("/built/keyed")
        self.assertEqual(first.status, 200)
        self.assertIn(b"<h1>v1</h1><p>row one</p>", first.body.replace(b"\n", b""))
        second = self.get("/built/keyed")
        self.assertEqual(second.body, first.body)
        self.assertEqual(second.header("ETag"), first.header("ETag"))
        self.assertEqual(HandOver.built, 1)
        again = self.get("/built/keyed", [("If-None-Match", first.header("ETag"))])
        self.assertEqual(again.status, 304)
        self.assertEqual(HandOver.built, 1)

    def test_a_new_key_shows_at_once(self):
        first = self.get("/built/keyed")
        HandOver.version = 2
        second = self.get("/built/keyed")
        self.assertIn(b"<h1>v2</h1>", second.body)
        self.assertNotEqual(second.header("ETag"), first.header("ETag"))
        stale = self.get("/built/keyed", [("If-None-Match", first.header("ETag"))])
        self.assertEqual(stale.status, 200)

    def test_last_modified_is_when_it_was_made(self):
        # Not the inputs' (the stylesheet's, long ago): a client holding an
        # output of that date must not get a 304 for new content.
        HandOver.source = None
        before = int(time.time())
        r = self.get("/built/keyed")
        self.assertGreaterEqual(parse_http_date(r.header("Last-Modified")), before)
        old = http_date(os.stat(os.path.join(self.root, "style/page.xsl")).st_mtime)
        HandOver.version = 2
        self.assertEqual(self.get("/built/keyed", [("If-Modified-Since", old)]).status, 200)

    def test_an_edited_file_shows_at_once(self):
        first = self.get("/built/keyed")
        self.write("data.txt", "row two")
        second = self.get("/built/keyed")
        self.assertIn(b"<p>row two</p>", second.body.replace(b"\n", b""))
        self.assertNotEqual(second.header("ETag"), first.header("ETag"))
        self.assertEqual(HandOver.built, 2)

    def test_an_edited_stylesheet_shows_at_once(self):
        self.get("/built/keyed")
        self.write("style/page.xsl", self.read("style/page.xsl").replace("<h1>", "<h1 id='e'>"))
        self.assertIn(b'<h1 id="e">v1</h1>', self.get("/built/keyed").body)

    def test_not_cached_with_cache_off(self):
        site = self.make_site(self.config + "AxCache Off\n")
        site.request("GET", "/built/keyed")
        site.request("GET", "/built/keyed")
        self.assertEqual(HandOver.built, 2)


class OutputFromImports(XsltCase):
    """xsl:output spread over imports and an include: the effective values
    as XSLT 1.0 §16 defines them (the importing stylesheet and what it
    includes win, then the last import with its imports, then the
    earlier ones), the body as xsltproc gives it."""

    config = "AxAddProcessor text/xsl /style/output/main.xsl\n"

    def test_effective_output(self):
        r = self.get("/latin.xml")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, expected("latin.html"))  # html method, ISO-8859-1
        self.assertEqual(r.header("Content-Type"), "application/xhtml+xml; charset=ISO-8859-1")

    def test_the_importing_stylesheet_wins(self):
        self.write(
            "style/output/main.xsl",
            self.read("style/output/main.xsl").replace(
                '<xsl:output indent="no"/>', '<xsl:output media-type="text/html"/>'
            ),
        )
        r = self.get("/latin.xml")
        self.assertEqual(r.header("Content-Type"), "text/html; charset=ISO-8859-1")

    def test_an_import_edit_changes_the_type(self):
        self.get("/latin.xml")
        self.write("style/output/deep.xsl", self.read("style/output/deep.xsl").replace(
            "application/xhtml+xml", "text/x-deep"))  # fmt: skip
        r = self.get("/latin.xml")
        self.assertEqual(r.header("Content-Type"), "text/x-deep; charset=ISO-8859-1")

    def test_no_method_and_an_html_root_is_html(self):
        # XSLT 1.0 §16: without a method, a result whose root is <html> is html.
        self.write("style/output/main.xsl", """<xsl:stylesheet version="1.0"
            xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
          <xsl:template match="/"><html><p>x</p></html></xsl:template>
        </xsl:stylesheet>""")  # fmt: skip
        r = self.get("/latin.xml")
        self.assertEqual(r.header("Content-Type"), "text/html; charset=UTF-8")
        self.assertTrue(r.body.startswith(b"<html><p>x</p></html>"), r.body)
