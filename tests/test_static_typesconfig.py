"""TypesConfig and the MIME table a config gets without one: as Apache's
mod_mime, /etc/mime.types when the system has it, else the table axkit
ships; AddType lines add to it or override it."""

import os
import shutil
import tempfile

import treq
from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase, TestCase

from axkit.config.errors import ConfigErrors
from axkit.introspect import dump_config_text
from axkit.plugins import mime_map
from axkit.testing import MemorySite, http_pool, load_config, start_server


def docroot(test):
    root = tempfile.mkdtemp()
    test.addCleanup(shutil.rmtree, root)
    for name in ("a.css", "a.foo", "a.bar", "a.JS", "noext"):
        with open(os.path.join(root, name), "w") as f:
            f.write("x")
    return root


def site_for(test, body=""):
    site = MemorySite(f"""
        DocumentRoot {docroot(test)}
        Plugin uri_to_file
        Plugin mime_map
        Plugin serve_file
        {body}
    """)
    test.addCleanup(site.close)
    return site


def system_table(test, filename):
    """Use ``filename`` as /etc/mime.types for this test."""
    test.patch(mime_map, "SYSTEM_TYPES", filename)
    test.patch(mime_map, "_default", [])


class DefaultTableTests(SynchronousTestCase):
    def type_of(self, site, path):
        r = site.get(path)
        self.assertEqual(r.status, 200)
        return r.header("Content-Type")

    def test_css_without_any_include(self):
        # The new user's config: no Include of mime.conf, still text/css.
        site = site_for(self)
        self.assertEqual(self.type_of(site, "/a.css"), "text/css")
        self.assertEqual(self.type_of(site, "/a.JS"), "text/javascript")
        self.assertEqual(self.type_of(site, "/noext"), "application/octet-stream")

    def test_the_systems_table_first(self):
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        types = os.path.join(folder, "mime.types")
        with open(types, "w") as f:
            f.write("# a comment\ntext/x-sys foo\t bar # trailing\ntext/css css\n")
        system_table(self, types)
        site = site_for(self)
        self.assertEqual(self.type_of(site, "/a.foo"), "text/x-sys")
        self.assertEqual(self.type_of(site, "/a.bar"), "text/x-sys")
        self.assertEqual(self.type_of(site, "/a.JS"), "application/octet-stream")

    def test_the_bundled_table_without_one(self):
        system_table(self, "/nonexistent/mime.types")
        site = site_for(self)
        self.assertEqual(self.type_of(site, "/a.css"), "text/css")
        self.assertEqual(mime_map.default_table().filename, mime_map.BUNDLED_TYPES)


class TypesConfigTests(SynchronousTestCase):
    def setUp(self):
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        self.types = os.path.join(folder, "my.types")
        with open(self.types, "w") as f:
            f.write("application/x-mine foo css\n")

    def test_its_table_then_add_type(self):
        site = site_for(
            self,
            f"""
            TypesConfig {self.types}
            AddType text/x-added .bar
            <Location /a.css>
                AddType text/css .css
            </Location>
        """,
        )
        self.assertEqual(site.get("/a.foo").header("Content-Type"), "application/x-mine")
        self.assertEqual(site.get("/a.bar").header("Content-Type"), "text/x-added")
        # Not from the default table: only this file's.
        self.assertEqual(site.get("/a.JS").header("Content-Type"), "application/octet-stream")
        self.assertEqual(site.get("/a.css").header("Content-Type"), "text/css")

    def test_dump_config_names_the_file(self):
        config = load_config(f"Plugin mime_map\nTypesConfig {self.types}\n")
        self.assertRegex(dump_config_text(config), r"TypesConfig\s+" + self.types)

    def test_errors(self):
        e = self.assertRaises(
            ConfigErrors, load_config, "Plugin mime_map\nTypesConfig /nonexistent/x.types\n"
        )
        self.assertIn("<test config>:2: TypesConfig /nonexistent/x.types: No such file", str(e))
        e = self.assertRaises(
            ConfigErrors,
            load_config,
            f"Plugin mime_map\n<Location /x>\nTypesConfig {self.types}\n</Location>\n",
        )
        self.assertIn("TypesConfig is not allowed in <Location>", str(e))


class OverHTTPTests(TestCase):
    @defer.inlineCallbacks
    def test_css_over_a_socket(self):
        root = docroot(self)
        server = yield start_server(
            f"DocumentRoot {root}\nPlugin uri_to_file\nPlugin mime_map\nPlugin serve_file\n"
        )
        self.addCleanup(server.stop)
        response = yield treq.get(server.url("/a.css"), pool=http_pool(self))
        yield treq.content(response)
        self.assertEqual(response.headers.getRawHeaders("Content-Type"), ["text/css"])

    @defer.inlineCallbacks
    def test_types_config_over_a_socket(self):
        root = docroot(self)
        types = os.path.join(root, "my.types")
        with open(types, "w") as f:
            f.write("application/x-mine foo\n")
        server = yield start_server(
            f"DocumentRoot {root}\nPlugin uri_to_file\nPlugin mime_map\nPlugin serve_file\n"
            f"TypesConfig {types}\n"
        )
        self.addCleanup(server.stop)
        response = yield treq.get(server.url("/a.foo"), pool=http_pool(self))
        yield treq.content(response)
        self.assertEqual(response.headers.getRawHeaders("Content-Type"), ["application/x-mine"])
