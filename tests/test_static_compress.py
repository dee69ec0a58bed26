"""Compression: gzip on the fly, precompressed siblings, Vary, distinct ETags,
never on ranges (in memory); a big file streamed through gzip (over a socket)."""

import gzip
import os
import time

from twisted.internet import defer

from .static_support import StaticTestCase

TEXT = ("All work and no play makes Jack a dull boy.\n" * 200).encode()
BIG_TEXT = b"".join(
    b"line %d of a big text file that compresses well\n" % i for i in range(60000)
)  # ~3 MB: compressed by the producer


class CompressTests(StaticTestCase):
    in_memory = True
    extra_config = """
        Plugin compress
        Gzip On
        GzipMinLength 1K
        Precompressed On
        AddDefaultCharset utf-8
    """

    @defer.inlineCallbacks
    def setUp(self):
        self.make_root()
        self.write("page.html", TEXT)
        self.write("tiny.html", b"<p>tiny</p>")
        self.write("photo.png", os.urandom(5000))
        self.write("app.css", TEXT)
        self.write("app.css.gz", gzip.compress(b"precompressed gz"))
        self.write("app.css.br", b"precompressed br bytes")
        self.write("old.js", TEXT)
        self.write("old.js.gz", gzip.compress(b"stale"))
        past = time.time() - 3600
        os.utime(os.path.join(self.root, "old.js.gz"), (past, past))
        yield self.start()

    @defer.inlineCallbacks
    def test_gzip_on_the_fly_small(self):
        plain = yield self.get("/page.html")
        r = yield self.get("/page.html", [("Accept-Encoding", "gzip, deflate")])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(r.header("Vary"), "Accept-Encoding")
        self.assertEqual(plain.header("Vary"), "Accept-Encoding")
        self.assertEqual(gzip.decompress(r.body), TEXT)
        self.assertLess(len(r.body), len(TEXT) // 10)
        self.assertNotEqual(r.header("ETag"), plain.header("ETag"))
        self.assertEqual(r.header("ETag"), plain.header("ETag")[:-1] + '-gzip"')
        # The encoded representation revalidates with its own tag.
        again = yield self.get(
            "/page.html", [("Accept-Encoding", "gzip"), ("If-None-Match", r.header("ETag"))]
        )
        self.assertEqual(again.status, 304)
        self.assertEqual(again.header("Vary"), "Accept-Encoding")

    @defer.inlineCallbacks
    def test_not_below_threshold_nor_for_images_nor_refused(self):
        r = yield self.get("/tiny.html", [("Accept-Encoding", "gzip")])
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.body, b"<p>tiny</p>")
        r = yield self.get("/photo.png", [("Accept-Encoding", "gzip")])
        self.assertIsNone(r.header("Content-Encoding"))
        r = yield self.get("/page.html", [("Accept-Encoding", "gzip;q=0, br;q=0")])
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.body, TEXT)
        r = yield self.get("/page.html")
        self.assertIsNone(r.header("Content-Encoding"))

    @defer.inlineCallbacks
    def test_never_on_ranges(self):
        r = yield self.get("/page.html", [("Accept-Encoding", "gzip"), ("Range", "bytes=0-9")])
        self.assertEqual(r.status, 206)
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.body, TEXT[:10])
        r = yield self.get("/app.css", [("Accept-Encoding", "br, gzip"), ("Range", "bytes=0-9")])
        self.assertEqual(r.status, 206)
        self.assertEqual(r.body, TEXT[:10])

    @defer.inlineCallbacks
    def test_precompressed_siblings(self):
        r = yield self.get("/app.css", [("Accept-Encoding", "gzip, br")])
        self.assertEqual(r.header("Content-Encoding"), "br")
        self.assertEqual(r.body, b"precompressed br bytes")
        self.assertEqual(r.header("Content-Type"), "text/css; charset=utf-8")
        br_tag = r.header("ETag")
        r = yield self.get("/app.css", [("Accept-Encoding", "gzip")])
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(gzip.decompress(r.body), b"precompressed gz")
        gz_tag = r.header("ETag")
        r = yield self.get("/app.css")
        self.assertEqual(r.body, TEXT)
        self.assertEqual(len({br_tag, gz_tag, r.header("ETag")}), 3)
        self.assertTrue(br_tag.endswith('-br"'))

    @defer.inlineCallbacks
    def test_client_preference_by_q_value(self):
        # RFC 9110 §12.5.3: the client ranks codings; br wins only a tie.
        r = yield self.get("/app.css", [("Accept-Encoding", "br;q=0.5, gzip;q=1.0")])
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(gzip.decompress(r.body), b"precompressed gz")
        r = yield self.get("/app.css", [("Accept-Encoding", "gzip;q=0.8, br;q=0.9")])
        self.assertEqual(r.header("Content-Encoding"), "br")
        r = yield self.get("/app.css", [("Accept-Encoding", "gzip, br;q=0.9999")])
        self.assertEqual(r.header("Content-Encoding"), "gzip")

    @defer.inlineCallbacks
    def test_older_sibling_not_used(self):
        r = yield self.get("/old.js", [("Accept-Encoding", "gzip")])
        # Not the stale .gz: gzip'd on the fly from the current file instead.
        self.assertEqual(gzip.decompress(r.body), TEXT)

    @defer.inlineCallbacks
    def test_head_gzip(self):
        r = yield self.get("/page.html", [("Accept-Encoding", "gzip")], method="HEAD")
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(r.body, b"")


class CompressStreamTests(StaticTestCase):
    """A big file is gzipped by a producer stepping on the real reactor:
    over a socket."""

    extra_config = CompressTests.extra_config

    @defer.inlineCallbacks
    def setUp(self):
        self.make_root()
        self.write("big.txt", BIG_TEXT)
        yield self.start()

    @defer.inlineCallbacks
    def test_gzip_on_the_fly_big_streams(self):
        r = yield self.get("/big.txt", [("Accept-Encoding", "gzip")])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(r.header("Transfer-Encoding"), "chunked")
        self.assertEqual(gzip.decompress(r.body), BIG_TEXT)
