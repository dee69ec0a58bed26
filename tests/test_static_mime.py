"""MIME in memory (MemorySite): the conf.d table, AddType, DefaultType,
AddDefaultCharset."""

import os

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from axkit.config.loader import load_file, load_string
from axkit.tap import default_config_text

from .static_support import REPO, StaticTestCase


class MimeTests(StaticTestCase):
    in_memory = True
    extra_config = """
        AddDefaultCharset utf-8
        AddType text/x-custom .cust .CUS2
        <Location /raw>
            DefaultType text/plain
            AddDefaultCharset Off
            AddType application/x-override .css
        </Location>
    """

    @defer.inlineCallbacks
    def setUp(self):
        self.make_root()
        for name in (
            "a.css",
            "a.js",
            "a.png",
            "a.json",
            "a.cust",
            "a.cus2",
            "noext",
            "a.unknownext",
            "raw/a.css",
            "raw/noext",
            "raw/a.html",
        ):
            self.write(name, "x")
        yield self.start()

    @defer.inlineCallbacks
    def types(self, *paths):
        out = []
        for path in paths:
            r = yield self.get(path)
            self.assertEqual(r.status, 200)
            out.append(r.header("Content-Type"))
        return out

    @defer.inlineCallbacks
    def test_table_and_charset(self):
        got = yield self.types("/a.css", "/a.js", "/a.png", "/a.json")
        self.assertEqual(
            got,
            [
                "text/css; charset=utf-8",
                "text/javascript; charset=utf-8",
                "image/png",
                "application/json",
            ],
        )

    @defer.inlineCallbacks
    def test_add_type_case_insensitive(self):
        got = yield self.types("/a.cust", "/a.cus2")
        self.assertEqual(got, ["text/x-custom; charset=utf-8"] * 2)

    @defer.inlineCallbacks
    def test_default_type(self):
        got = yield self.types("/noext", "/a.unknownext")
        self.assertEqual(got, ["application/octet-stream"] * 2)

    @defer.inlineCallbacks
    def test_scoped_overrides(self):
        got = yield self.types("/raw/a.css", "/raw/noext", "/raw/a.html")
        self.assertEqual(got, ["application/x-override", "text/plain", "text/html"])


class OneTableTests(SynchronousTestCase):
    """One MIME table: the package's axkit/defaults/mime.conf (in the wheel,
    read by the built-in config); the example site's conf.d/mime.conf
    includes it instead of holding a copy that could fall behind."""

    def table(self, config):
        return dict(config.servers[0].base.conf.add_type)

    def test_conf_d_holds_no_table_of_its_own(self):
        path = os.path.join(REPO, "conf.d", "mime.conf")
        self.assertFalse(os.path.islink(path))  # a copied folder keeps working text
        with open(path, encoding="utf-8") as f:
            lines = [
                line.split() for line in f if line.strip() and not line.lstrip().startswith("#")
            ]
        self.assertEqual(lines, [["Include", "../axkit/defaults/mime.conf"]])

    def test_site_conf_and_the_built_in_config_see_the_same_table(self):
        site = self.table(load_file(os.path.join(REPO, "site.conf")))
        built_in = self.table(load_string(default_config_text(REPO), "<built-in config>"))
        self.assertGreater(len(site), 1000)
        self.assertEqual(site["css"], "text/css")
        self.assertEqual(site, built_in)
