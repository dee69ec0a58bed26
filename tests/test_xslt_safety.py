"""Secure by default and observable: no external entity, no network, no
writes, document() confined; a document or stylesheet error answers 500
with one log line naming the file and line, and the server goes on."""

import os

from twisted.trial.unittest import SynchronousTestCase

from axkit.config import ConfigErrors
from axkit.testing import load_config

from .xslt_support import XsltCase

SECRET = "TOP-SECRET-CONTENT"


class Safety(XsltCase):
    config = "AxAddProcessor text/xsl /style/page.xsl\n"

    def setUp(self):
        XsltCase.setUp(self)
        self.secret = os.path.join(os.path.dirname(self.root), "secret.xml")
        with open(self.secret, "w") as f:
            f.write(f"<data>{SECRET}</data>")
        self.write("plain.txt", "still here\n")

    def assert_failed(self, path, *in_log):
        r = self.get(path)
        self.assertEqual(r.status, 500)
        self.assertNotIn(SECRET.encode(), r.body)
        errors = self.errors()
        self.assertEqual(len(errors), 1, errors)
        for text in in_log:
            self.assertIn(text, errors[0])
        self.assertEqual(self.get("/plain.txt").body, b"still here\n")
        return errors[0]

    def test_xxe_is_refused(self):
        self.write(
            "xxe.xml",
            f'<!DOCTYPE page [<!ENTITY x SYSTEM "file://{self.secret}">]>'
            "<page><title>&x;</title></page>",
        )
        self.assert_failed("/xxe.xml", "xxe.xml", "external entity")

    def test_document_outside_the_roots(self):
        self.write(
            "style/steal.xsl",
            '<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">'
            f"<xsl:template match='/'><x><xsl:value-of select=\"document('{self.secret}')\"/>"
            "</x></xsl:template></xsl:stylesheet>",
        )
        site = self.make_site("AxAddProcessor text/xsl /style/steal.xsl\n")
        r = site.request("GET", "/doc.xml")
        self.assertEqual(r.status, 500)
        self.assertNotIn(SECRET.encode(), r.body)
        [line] = self.errors(site)
        self.assertIn("steal.xsl", line)
        self.assertIn("document() outside", line)

    def test_network_refused(self):
        self.write(
            "style/net.xsl",
            '<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">'
            "<xsl:template match='/'><x><xsl:value-of "
            "select=\"document('http://127.0.0.1:9/x.xml')\"/></x></xsl:template>"
            "</xsl:stylesheet>",
        )
        site = self.make_site("AxAddProcessor text/xsl /style/net.xsl\n")
        self.assertEqual(site.request("GET", "/doc.xml").status, 500)
        [line] = self.errors(site)
        self.assertIn("Network file read for http://127.0.0.1:9/x.xml refused", line)

    def test_exsl_document_writes_nothing(self):
        target = os.path.join(self.root, "written.txt")
        self.write(
            "style/write.xsl",
            '<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"'
            ' xmlns:exsl="http://exslt.org/common" extension-element-prefixes="exsl">'
            f"<xsl:template match='/'><exsl:document href='{target}' method='text'>x"
            "</exsl:document><x/></xsl:template></xsl:stylesheet>",
        )
        site = self.make_site("AxAddProcessor text/xsl /style/write.xsl\n")
        self.assertEqual(site.request("GET", "/doc.xml").status, 500)
        self.assertFalse(os.path.exists(target))
        self.assertEqual(len(self.errors(site)), 1)

    def test_stylesheet_error_names_file_and_line(self):
        self.write(
            "style/common.xsl",
            '<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">\n'
            "\n<xsl:template match='para'><xsl:value-of selec='.'/></xsl:template>\n"
            "</xsl:stylesheet>\n",
        )
        line = self.assert_failed("/doc.xml", "common.xsl:3")
        self.assertIn("select is missing", line)

    def test_document_error_names_file_and_line(self):
        self.write("bad.xml", "<page>\n<title>\n</page>\n")
        self.assert_failed("/bad.xml", "bad.xml:3")

    def test_missing_stylesheet(self):
        site = self.make_site("AxAddProcessor text/xsl /style/none.xsl\n")
        self.assertEqual(site.request("GET", "/doc.xml").status, 500)
        [line] = self.errors(site)
        self.assertIn("none.xsl", line)


class Config(SynchronousTestCase):
    def refused(self, text):
        with self.assertRaises(ConfigErrors) as caught:
            load_config("Plugin xslt\n" + text)
        return str(caught.exception)

    def test_unknown_processor_type(self):
        self.assertIn(":2:", self.refused("AxAddProcessor text/css a.css\n"))

    def test_section_holds_processors_only(self):
        message = self.refused("<AxStyleName x>\n  AxStyleChooser cookie\n</AxStyleName>\n")
        self.assertIn(":3:", message)
        self.assertIn("only AxAddProcessor", message)

    def test_bad_chooser_and_threads(self):
        self.assertIn(":2:", self.refused("AxStyleChooser dice\n"))
        self.assertIn(":2:", self.refused("AxThreads 0\n"))
