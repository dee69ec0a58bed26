"""MIME in memory (MemorySite): the conf.d table, AddType, DefaultType,
AddDefaultCharset."""

from twisted.internet import defer

from .static_support import StaticTestCase


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
        for name in ("a.css", "a.js", "a.png", "a.json", "a.cust", "a.cus2", "noext",
                     "a.unknownext", "raw/a.css", "raw/noext", "raw/a.html"):
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
        self.assertEqual(got, ["text/css; charset=utf-8",
                               "text/javascript; charset=utf-8",
                               "image/png", "application/json"])

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
