"""Directory listings through the pipeline (AxHandleDirs), ErrorStylesheet,
AxTraceIntermediate, TraceHooks' stage lines."""

import gzip
import os
import shutil
import tempfile

from .xslt_support import XsltCase, expected

LISTED = """
Plugin serve_dir
AxHandleDirs On
<Location /docs>
    DirectoryListing On
    AxAddProcessor text/xsl /style/dir.xsl
</Location>
"""


class Directories(XsltCase):
    config = LISTED

    def test_listing_styled(self):
        r = self.get("/docs/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body.strip(), b'<ul class="/docs/"><li>a.xml</li></ul>')
        self.assertEqual(r.header("Content-Type"), "text/html; charset=UTF-8")
        self.assertEqual(r.header("Cache-Control"), "no-cache")

    def test_a_new_file_shows_at_once(self):
        self.get("/docs/")
        self.write("docs/b.xml", "<page/>")
        self.assertIn(b"<li>b.xml</li>", self.get("/docs/").body)

    def test_not_listed_where_listing_is_off(self):
        self.assertEqual(self.get("/style/").status, 403)


class ErrorPage(XsltCase):
    config = "AxAddProcessor text/xsl /style/page.xsl\nErrorStylesheet /style/error.xsl\n"

    def test_error_styled_and_logged(self):
        self.write("bad.xml", "<page>\n<title>\n</page>\n")
        r = self.get("/bad.xml")
        self.assertEqual(r.status, 500)
        self.assertEqual(r.body.strip(), b'<p class="error">Sorry: /bad.xml failed at line 3</p>')
        [line] = self.errors()
        self.assertIn("bad.xml:3", line)
        self.assertEqual(self.get("/doc.xml").status, 200)


class Traces(XsltCase):
    def test_intermediate_outputs_written(self):
        folder = tempfile.mkdtemp(prefix="axkit-xslt-trace-")
        self.addCleanup(shutil.rmtree, folder, True)
        site = self.make_site(
            "AxAddProcessor text/xsl /style/wrap.xsl\n"
            "AxAddProcessor text/xsl /style/page.xsl\n"
            f'AxTraceIntermediate "{folder}"\nAxCache Off\n'
        )
        self.assertEqual(site.request("GET", "/doc.xml").status, 200)
        names = sorted(os.listdir(folder))
        self.assertEqual(names, ["%2Fdoc.xml.0", "%2Fdoc.xml.1", "%2Fdoc.xml.2"])
        with open(os.path.join(folder, "%2Fdoc.xml.1"), "rb") as f:
            self.assertIn(b"<title>[Hello]</title>", f.read())

    def test_trace_hooks_names_each_stage(self):
        site = self.make_site("AxAddProcessor text/xsl /style/page.xsl\nTraceHooks On\n")
        site.request("GET", "/doc.xml")
        stages = [m for m in site.messages(plugin="xslt") if "xslt stage" in m]
        self.assertEqual(len(stages), 1)
        self.assertIn("page.xsl", stages[0])


class Compressed(XsltCase):
    config = "Plugin compress\nGzip On\nGzipMinLength 10\nAxAddProcessor text/xsl /style/page.xsl\n"

    def test_gzip_on_the_fly(self):
        plain = self.get("/doc.xml")
        self.assertEqual(plain.header("Vary"), "Accept-Encoding")
        self.assertIsNone(plain.header("Content-Encoding"))
        r = self.get("/doc.xml", [("Accept-Encoding", "gzip")])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(gzip.decompress(r.body), expected("doc.html"))
        self.assertEqual(r.header("ETag"), plain.header("ETag")[:-1] + '-gzip"')
        again = self.get(
            "/doc.xml", [("Accept-Encoding", "gzip"), ("If-None-Match", r.header("ETag"))]
        )
        self.assertEqual(again.status, 304)
