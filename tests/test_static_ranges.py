"""Byte ranges (RFC 9110 §14), over a real socket: small files (from the file
cache) and big ones (sendfile), single, suffix, open-ended, multipart,
If-Range, 416, malformed and abusive Range fields."""

import os
import re

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from axkit.files import ranges
from axkit.http.dates import http_date

from .static_support import StaticTestCase

MTIME = 1700000000
SMALL = bytes(range(256)) * 4  # 1 KiB, from the file cache
BIG = os.urandom(300 * 1024)  # past FileCacheMaxFileSize: sendfile


def parse_multipart(response):
    """[(content_range, content_type, data)] of a multipart/byteranges body."""
    ctype = response.header("Content-Type")
    m = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", ctype)
    assert m, ctype
    boundary = m.group(1).encode()
    body = response.body
    parts = []
    pieces = body.split(b"\r\n--" + boundary)
    assert pieces[0] == b"", pieces[0][:80]
    assert pieces[-1] == b"--\r\n", pieces[-1][:80]
    for piece in pieces[1:-1]:
        head, _, data = piece.partition(b"\r\n\r\n")
        fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n") if line)
        parts.append((fields.get("Content-Range"), fields.get("Content-Type"), data))
    return parts


class RangeTests(StaticTestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.make_root()
        self.write("small.bin", SMALL, mtime=MTIME)
        self.write("big.bin", BIG, mtime=MTIME)
        yield self.start()

    @defer.inlineCallbacks
    def check_single(self, name, data, spec, first, last):
        r = yield self.get(f"/{name}", [("Range", spec)])
        self.assertEqual(r.status, 206, r.raw_head)
        self.assertEqual(r.header("Content-Range"), f"bytes {first}-{last}/{len(data)}")
        self.assertEqual(int(r.header("Content-Length")), last - first + 1)
        self.assertEqual(r.body, data[first : last + 1])

    @defer.inlineCallbacks
    def test_single_ranges(self):
        for name, data in (("small.bin", SMALL), ("big.bin", BIG)):
            n = len(data)
            yield self.check_single(name, data, "bytes=0-99", 0, 99)
            yield self.check_single(name, data, "bytes=100-", 100, n - 1)  # open-ended
            yield self.check_single(name, data, "bytes=-10", n - 10, n - 1)  # suffix
            yield self.check_single(name, data, "bytes=5-999999999", 5, n - 1)  # clipped
            yield self.check_single(name, data, "bytes=-999999999", 0, n - 1)

    @defer.inlineCallbacks
    def test_accept_ranges_advertised(self):
        r = yield self.get("/small.bin")
        self.assertEqual(r.header("Accept-Ranges"), "bytes")
        r = yield self.get("/big.bin")
        self.assertEqual(r.header("Accept-Ranges"), "bytes")
        self.assertEqual(r.body, BIG)

    @defer.inlineCallbacks
    def test_multiple_ranges_multipart(self):
        for name, data in (("small.bin", SMALL), ("big.bin", BIG)):
            n = len(data)
            r = yield self.get(f"/{name}", [("Range", "bytes=0-9, 20-29,-5")])
            self.assertEqual(r.status, 206)
            # Content-Length is exact: the parser took exactly that many bytes
            # and the connection carried nothing more.
            self.assertEqual(int(r.header("Content-Length")), len(r.body))
            self.assertTrue(r.raw.endswith(r.body))
            parts = parse_multipart(r)
            self.assertEqual(
                [p[0] for p in parts],
                ["bytes 0-9/%d" % n, "bytes 20-29/%d" % n, "bytes %d-%d/%d" % (n - 5, n - 1, n)],
            )
            self.assertEqual([p[2] for p in parts], [data[0:10], data[20:30], data[-5:]])
            self.assertEqual({p[1] for p in parts}, {"application/octet-stream"})

    @defer.inlineCallbacks
    def test_unsatisfiable_416(self):
        r = yield self.get("/small.bin", [("Range", "bytes=5000-6000")])
        self.assertEqual(r.status, 416)
        self.assertEqual(r.header("Content-Range"), f"bytes */{len(SMALL)}")
        r = yield self.get("/big.bin", [("Range", "bytes=-0")])
        self.assertEqual(r.status, 416)
        self.assertEqual(r.header("Content-Range"), f"bytes */{len(BIG)}")

    @defer.inlineCallbacks
    def test_malformed_range_ignored(self):
        for spec in (
            "bytes=abc",
            "bytes=5-1",
            "items=0-5",
            "bytes=1-2-3",
            "bytes=",
            "bytes 0-5",
            "bytes=--5",
        ):
            r = yield self.get("/small.bin", [("Range", spec)])
            self.assertEqual(r.status, 200, spec)
            self.assertEqual(r.body, SMALL, spec)

    @defer.inlineCallbacks
    def test_non_ascii_digits_are_malformed(self):
        # Latin-1 superscripts are digits to str.isdigit() but not to the
        # grammar (1*DIGIT): the field is malformed and ignored, never a 500.
        for spec in ("bytes=\xb2-", "bytes=0-\xb9", "bytes=-\xb3", "bytes=\xb9\xb2-\xb3"):
            r = yield self.get("/small.bin", [("Range", spec)])
            self.assertEqual(r.status, 200, spec)
            self.assertEqual(r.body, SMALL, spec)

    @defer.inlineCallbacks
    def test_abusive_ranges_get_whole_file(self):
        many_small = "bytes=" + ",".join(f"{i}-{i}" for i in range(0, 400, 2))
        overlapping = "bytes=" + ",".join("0-500" for _ in range(20))
        for spec in (many_small, overlapping, "bytes=0-100,50-150"):
            for name, data in (("small.bin", SMALL), ("big.bin", BIG)):
                r = yield self.get(f"/{name}", [("Range", spec)])
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, data)  # the file once, not amplified

    @defer.inlineCallbacks
    def test_if_range_etag(self):
        etag = (yield self.get("/big.bin")).header("ETag")
        r = yield self.get("/big.bin", [("Range", "bytes=0-9"), ("If-Range", etag)])
        self.assertEqual(r.status, 206)
        self.assertEqual(r.body, BIG[:10])
        r = yield self.get("/big.bin", [("Range", "bytes=0-9"), ("If-Range", '"stale"')])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, BIG)
        # If-Range needs a strong match: a weak tag never matches.
        r = yield self.get("/small.bin", [("Range", "bytes=0-9"), ("If-Range", "W/" + etag)])
        self.assertEqual(r.status, 200)

    @defer.inlineCallbacks
    def test_if_range_date(self):
        r = yield self.get("/small.bin", [("Range", "bytes=0-9"), ("If-Range", http_date(MTIME))])
        self.assertEqual(r.status, 206)
        r = yield self.get(
            "/small.bin", [("Range", "bytes=0-9"), ("If-Range", http_date(MTIME - 60))]
        )
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, SMALL)

    @defer.inlineCallbacks
    def test_head_ignores_range(self):
        r = yield self.get("/small.bin", [("Range", "bytes=0-9")], method="HEAD")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Length"), str(len(SMALL)))

    @defer.inlineCallbacks
    def test_range_with_if_none_match_still_304(self):
        etag = (yield self.get("/small.bin")).header("ETag")
        r = yield self.get("/small.bin", [("Range", "bytes=0-9"), ("If-None-Match", etag)])
        self.assertEqual(r.status, 304)


class PlanTests(SynchronousTestCase):
    def test_plan(self):
        self.assertEqual(ranges.plan("bytes=0-0", 10), [(0, 0)])
        self.assertEqual(ranges.plan("bytes=9-", 10), [(9, 9)])
        self.assertEqual(ranges.plan("BYTES = 1-2", 10), None)  # no space allowed in unit
        self.assertEqual(ranges.plan("bytes=1-2, ,3-4", 10), [(1, 2), (3, 4)])
        self.assertIs(ranges.plan("bytes=10-", 10), ranges.UNSATISFIABLE)
        self.assertEqual(ranges.plan("bytes=5-,20-30", 10), [(5, 9)])
        self.assertIsNone(ranges.plan("bytes=" + ",".join(["0-0"] * 65), 1000))
