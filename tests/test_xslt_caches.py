"""Caches that are never stale: each kind of input is edited and the very
next request shows it (the source, the stylesheet, an import, an include,
an import three levels down, a document() input); unchanged inputs are
answered from the caches without compiling or transforming again."""

from .xslt_support import XsltCase, expected


class NeverStale(XsltCase):
    config = "AxAddProcessor text/xsl /style/page.xsl\n"

    def plugin(self):
        [plugin] = [p for p in self.site.config.plugins.values() if p.name == "xslt"]
        return plugin

    def test_cached_when_nothing_changed(self):
        plugin = self.plugin()
        first = self.get("/doc.xml")
        compiles = plugin.stylesheets.compiles
        hits = plugin.outputs.hits
        second = self.get("/doc.xml")
        self.assertEqual(second.body, first.body)
        self.assertEqual(second.header("ETag"), first.header("ETag"))
        self.assertEqual(plugin.stylesheets.compiles, compiles)
        self.assertEqual(plugin.outputs.hits, hits + 1)

    def check_edit(self, name, old, new, shows=None):
        first = self.get("/doc.xml")
        self.assertEqual(first.body, expected("doc.html"))
        self.write(name, self.read(name).replace(old, new))
        second = self.get("/doc.xml")
        self.assertEqual(second.status, 200)
        self.assertIn((shows or new).encode(), second.body)
        self.assertNotEqual(second.header("ETag"), first.header("ETag"))
        stale = self.get("/doc.xml", [("If-None-Match", first.header("ETag"))])
        self.assertEqual(stale.status, 200)

    def test_source(self):
        self.check_edit("doc.xml", "Hello", "Changed source")

    def test_stylesheet(self):
        self.check_edit("style/page.xsl", "<h1>", "<h1 class='edited'>", '<h1 class="edited">')

    def test_import(self):
        self.check_edit(
            "style/common.xsl", "<p><xsl:value-of", "<p>EDITED <xsl:value-of", "<p>EDITED First"
        )

    def test_include(self):
        self.check_edit("style/footer.xsl", "footer v1", "footer v2")

    def test_import_three_levels_down(self):
        self.check_edit("style/deep/level3.xsl", "deep v1", "deep v2")

    def test_uncached_output_also_fresh(self):
        site = self.make_site(self.config + "AxCache Off\n")
        self.assertIn(b"deep v1", site.request("GET", "/doc.xml").body)
        self.write("style/deep/level3.xsl", self.read("style/deep/level3.xsl").replace("v1", "v3"))
        self.assertIn(b"deep v3", site.request("GET", "/doc.xml").body)

    def test_uncached_source_edit_shows(self):
        site = self.make_site(self.config + "AxCache Off\n")
        self.assertIn(b"Hello", site.request("GET", "/doc.xml").body)
        self.write("doc.xml", self.read("doc.xml").replace("Hello", "Edited source"))
        self.assertIn(b"Edited source", site.request("GET", "/doc.xml").body)
        self.write("doc.xml", self.read("doc.xml").replace("Edited source", "Again"))
        body = site.request("GET", "/doc.xml").body
        self.assertIn(b"Again", body)
        self.assertNotIn(b"Edited source", body)

    def test_uncached_pages_read_the_document_once_until_changed(self):
        # AxCache Off transforms per request, from the bytes read last time
        # while the request's stat of the document is the one they were
        # read under (the source cache): no open per request.
        import os

        from axkit.xslt import transform

        site = self.make_site(self.config + "AxCache Off\n")
        document = os.path.join(self.root, "doc.xml")
        opened = []
        real_open = os.open
        self.patch(transform.os, "open", lambda p, *a: opened.append(p) or real_open(p, *a))
        first = site.request("GET", "/doc.xml")
        self.assertEqual(first.body, expected("doc.html"))
        self.assertEqual(opened, [document])
        again = site.request("GET", "/doc.xml")
        self.assertEqual(again.body, first.body)
        self.assertEqual(again.header("ETag"), first.header("ETag"))
        self.assertEqual(opened, [document])
        self.write("doc.xml", self.read("doc.xml").replace("Hello", "Changed"))
        self.assertIn(b"Changed", site.request("GET", "/doc.xml").body)
        self.assertEqual(opened, [document, document])

    def test_a_hit_stats_each_input_once_and_resolves_nothing(self):
        # One os.stat per stylesheet file; the document's stat is the one
        # uri_to_file made for this request; no realpath per request.
        import os

        from axkit.xslt import safety, styles

        plugin = self.plugin()
        self.get("/doc.xml")
        [entry] = plugin.outputs.entries.values()
        stats, real = [], []
        stat, realpath = os.stat, os.path.realpath
        self.patch(safety.os, "stat", lambda p: stats.append(p) or stat(p))
        self.patch(styles.os.path, "realpath", lambda p: real.append(p) or realpath(p))
        self.assertEqual(self.get("/doc.xml").status, 200)
        document = os.path.join(self.root, "doc.xml")
        self.assertEqual(sorted(stats), sorted(p for p in entry.deps if p != document))
        self.assertEqual(real, [])

    def test_the_documents_stat_is_still_checked(self):
        first = self.get("/doc.xml")
        self.write("doc.xml", self.read("doc.xml"))  # same bytes, a new mtime
        self.assertNotEqual(self.get("/doc.xml").header("ETag"), first.header("ETag"))


class DocumentFunction(XsltCase):
    config = "AxAddProcessor text/xsl /style/info.xsl\n"

    def test_document_input_edit(self):
        first = self.get("/doc.xml")
        self.assertEqual(first.body, expected("doc-info.xml"))
        self.assertEqual(first.header("Content-Type"), "text/xml; charset=UTF-8")
        self.write("data.xml", "<data>data v2</data>")
        self.assertIn(b"Hello/data v2", self.get("/doc.xml").body)

    def test_broken_import_is_never_served_stale(self):
        site = self.make_site("AxAddProcessor text/xsl /style/page.xsl\n")
        self.assertEqual(site.request("GET", "/doc.xml").status, 200)
        self.write("style/common.xsl", "<xsl:stylesheet oops")
        self.assertEqual(site.request("GET", "/doc.xml").status, 500)


class Unstyled(XsltCase):
    config = ""  # no processors: the documents' own xml-stylesheet

    def test_document_without_pi_parsed_once_until_changed(self):
        [plugin] = [p for p in self.site.config.plugins.values() if p.name == "xslt"]
        first = self.get("/doc.xml")
        self.assertEqual(first.body.decode(), self.read("doc.xml"))
        hits = plugin.outputs.hits
        again = self.get("/doc.xml")
        self.assertEqual(again.body, first.body)
        self.assertEqual(plugin.outputs.hits, hits + 1)
        # Gaining a stylesheet instruction shows at once.
        self.write(
            "doc.xml",
            '<?xml-stylesheet type="text/xsl" href="style/text.xsl"?>\n'
            + self.read("doc.xml").split("?>", 1)[1],
        )
        self.assertEqual(self.get("/doc.xml").body, b"TEXT: Hello")
