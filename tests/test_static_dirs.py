"""Directories (in memory): DirectoryIndex, the trailing-slash 301,
listings only where enabled, HTML sorting/escaping/sizes, the XML filelist;
listings built off the reactor thread (over a socket)."""

import os
import re
from xml.etree import ElementTree

from twisted.internet import defer

from .static_support import StaticTestCase


class DirectoryTests(StaticTestCase):
    in_memory = True
    extra_config = """
        DirectoryIndex index.html index.htm default.txt
        <Location /open>
            Options +Indexes
        </Location>
        <Location /legacy>
            DirectoryListing On
        </Location>
    """

    @defer.inlineCallbacks
    def setUp(self):
        self.make_root()
        self.write("first/index.html", "html index\n")
        self.write("first/index.htm", "htm index\n")
        self.write("second/index.htm", "htm index\n")
        self.write("third/default.txt", "txt index\n")
        self.write("closed/a.txt", "a\n")
        self.write("legacy/a.txt", "a\n")
        self.write("open/small.txt", "x" * 10, mtime=1700000300)
        self.write("open/medium.bin", b"m" * 1536, mtime=1700000100)
        self.write("open/large.bin", b"l" * (3 * 1024 * 1024 + 200), mtime=1700000200)
        self.write('open/<b>&"quote".txt', "esc\n", mtime=1700000000)
        self.write("open/.hidden", "dot\n")
        os.makedirs(os.path.join(self.root, "open", "zdir"))
        yield self.start()

    @defer.inlineCallbacks
    def test_directory_index_names_in_order(self):
        r = yield self.get("/first/")
        self.assertEqual(r.body, b"html index\n")
        r = yield self.get("/second/")
        self.assertEqual(r.body, b"htm index\n")
        r = yield self.get("/third/")
        self.assertEqual(r.body, b"txt index\n")
        self.assertEqual(r.header("Content-Type"), "text/plain")

    @defer.inlineCallbacks
    def test_trailing_slash_redirect_keeps_query(self):
        r = yield self.get("/first?a=1&b=%20x")
        self.assertEqual(r.status, 301)
        self.assertEqual(r.header("Location"), "/first/?a=1&b=%20x")
        r = yield self.get("/open")
        self.assertEqual((r.status, r.header("Location")), (301, "/open/"))

    @defer.inlineCallbacks
    def test_options_on_a_file_and_a_folder(self):
        # Allow says OPTIONS is allowed: it is answered (RFC 9110 §9.3.7),
        # not refused with a 405 naming it.
        for path in ("/open/small.txt", "/open/", "/first/"):
            r = yield self.get(path, method="OPTIONS")
            self.assertEqual(r.status, 204, path)
            self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS", path)
            self.assertEqual(r.body, b"", path)
        r = yield self.get("/open/small.txt", method="DELETE")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")

    @defer.inlineCallbacks
    def test_listing_only_where_enabled(self):
        r = yield self.get("/closed/")
        self.assertEqual(r.status, 403)
        self.assertNotIn(b"a.txt", r.body)
        r = yield self.get("/legacy/")
        self.assertEqual(r.status, 200)
        self.assertIn(b"a.txt", r.body)

    def names(self, body):
        return re.findall(r'<tr><td><a href="[^"]*">([^<]*(?:&[^<]*)*)</a>', body.decode())

    @defer.inlineCallbacks
    def test_html_listing_escaped_human_sizes_no_dotfiles(self):
        r = yield self.get("/open/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
        page = r.body.decode()
        self.assertIn("&lt;b&gt;&amp;&quot;quote&quot;.txt", page)
        self.assertIn('href="%3Cb%3E%26%22quote%22.txt"', page)
        self.assertNotIn("<b>&", page)
        self.assertIn("<td>3.0M</td>", page)
        self.assertIn("<td>1.5K</td>", page)
        self.assertIn("<td>10B</td>", page)
        self.assertNotIn(".hidden", page)
        self.assertIn('href="?sort=size&amp;order=asc"', page)

    @defer.inlineCallbacks
    def test_names_not_in_utf8_are_not_listed(self):
        # The engine refuses a path that is not UTF-8 (400): a link to such
        # a file could never be followed, so the listing leaves it out.
        with open(os.path.join(os.fsencode(self.root), b"open", b"latin\xe9.txt"), "w") as f:
            f.write("x")
        for query in ("", "?format=xml"):
            r = yield self.get("/open/" + query)
            self.assertEqual(r.status, 200)
            self.assertNotIn(b"latin", r.body, query)
            self.assertIn(b"small.txt", r.body, query)
        r = yield self.get("/open/latin%E9.txt")
        self.assertEqual(r.status, 400)

    @defer.inlineCallbacks
    def test_html_sorting(self):
        r = yield self.get("/open/?sort=size&order=desc")
        names = self.names(r.body)
        self.assertEqual(
            names,
            [
                "../",
                "zdir/",
                "large.bin",
                "medium.bin",
                "small.txt",
                "&lt;b&gt;&amp;&quot;quote&quot;.txt",
            ],
        )
        r = yield self.get("/open/?C=S;O=D")  # Apache's spelling
        self.assertEqual(self.names(r.body)[2:4], ["large.bin", "medium.bin"])
        r = yield self.get("/open/?sort=date")
        names = self.names(r.body)
        self.assertEqual(
            names[2:],
            ["&lt;b&gt;&amp;&quot;quote&quot;.txt", "medium.bin", "large.bin", "small.txt"],
        )
        r = yield self.get("/open/?sort=name&order=desc")
        self.assertEqual(
            self.names(r.body)[2:],
            ["small.txt", "medium.bin", "large.bin", "&lt;b&gt;&amp;&quot;quote&quot;.txt"],
        )

    @defer.inlineCallbacks
    def check_xml(self, path, headers=()):
        r = yield self.get(path, headers)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "application/xml; charset=utf-8")
        root = ElementTree.fromstring(r.body)
        self.assertEqual(root.tag, "filelist")
        self.assertEqual(root.get("path"), "/open/")
        entries = {e.get("name"): e for e in root}
        self.assertNotIn(".hidden", entries)
        small = entries["small.txt"]
        self.assertEqual(small.tag, "file")
        self.assertEqual(small.get("size"), "10")
        self.assertEqual(small.get("type"), "text/plain")
        self.assertEqual(small.get("mtime"), "2023-11-14T22:18:20Z")
        self.assertEqual(entries['<b>&"quote".txt'].get("size"), "4")
        self.assertEqual(entries["zdir"].tag, "directory")
        self.assertEqual(entries["zdir"].get("type"), "directory")
        # Every entry has name, size, mtime and type (the issue; AxKit 1's
        # filelist gave folders their size too): a folder's is its st_size.
        zdir = os.stat(os.path.join(self.root, "open", "zdir"))
        self.assertEqual(entries["zdir"].get("size"), str(zdir.st_size))
        for name, entry in entries.items():
            for attribute in ("name", "size", "mtime", "type"):
                self.assertIsNotNone(entry.get(attribute), (name, attribute))

    def test_xml_by_query(self):
        return self.check_xml("/open/?format=xml")

    def test_xml_by_accept(self):
        return self.check_xml("/open/", [("Accept", "application/xml")])

    @defer.inlineCallbacks
    def test_browser_accept_gets_html(self):
        r = yield self.get(
            "/open/",
            [("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")],
        )
        self.assertTrue(r.header("Content-Type").startswith("text/html"))
        self.assertEqual(r.header("Vary"), "Accept")


class ListingThreadTests(StaticTestCase):
    """Over a socket: the real reactor's thread pool builds the listing."""

    extra_config = DirectoryTests.extra_config
    setUp = DirectoryTests.setUp

    @defer.inlineCallbacks
    def test_listing_is_built_off_the_reactor_thread(self):
        # A folder of 50,000 files takes a second to stat and render: that
        # must not hold up every other connection (Keep the reactor free).
        import threading

        from axkit.plugins.serve_dir import ServeDir

        seen = []
        real = ServeDir.__dict__["_entries"]  # the staticmethod itself

        def recording(*args, **kw):
            seen.append(threading.current_thread() is threading.main_thread())
            return real.__func__(*args, **kw)

        # Not self.patch: it would put back the bare function, not the staticmethod.
        ServeDir._entries = staticmethod(recording)
        self.addCleanup(setattr, ServeDir, "_entries", real)
        for query in ("", "?format=xml"):
            r = yield self.get("/open/" + query)
            self.assertEqual(r.status, 200)
            self.assertIn(b"small.txt", r.body)
        self.assertEqual(seen, [False, False])
        r = yield self.get("/open/", method="HEAD")
        self.assertEqual((r.status, r.body), (200, b""))
        self.assertGreater(int(r.header("Content-Length")), 0)
