"""Validators and conditional requests (RFC 9110 §13), in memory (MemorySite)."""

import os
import time

from twisted.internet import defer

from axkit.files.validators import parse_etags
from axkit.http.dates import http_date, parse_http_date

from .static_support import StaticTestCase

MTIME = 1700000000


class ConditionalTests(StaticTestCase):
    in_memory = True
    extra_config = """
        Plugin expires
        Plugin compress
        Precompressed On
        ExpiresActive On
        ExpiresDefault "access plus 1 hour"
    """

    @defer.inlineCallbacks
    def setUp(self):
        self.make_root()
        self.write("page.txt", "x" * 100, mtime=MTIME)
        yield self.start()
        first = yield self.get("/page.txt")
        self.etag = first.header("ETag")

    @defer.inlineCallbacks
    def test_validators_on_every_file(self):
        r = yield self.get("/page.txt")
        self.assertEqual(r.status, 200)
        self.assertRegex(r.header("ETag"), r'^"[0-9a-f]+-[0-9a-f]+"$')  # strong
        self.assertEqual(r.header("Last-Modified"), http_date(MTIME))

    @defer.inlineCallbacks
    def assertNotModified(self, headers, method="GET"):
        r = yield self.get("/page.txt", headers, method)
        self.assertEqual(r.status, 304, r.raw)
        self.assertEqual(r.body, b"")
        self.assertNotIn(b"Content-Length", r.raw_head.encode())
        # A 304 carries what the 200 would have for caches to update.
        self.assertEqual(r.header("ETag"), self.etag)
        self.assertEqual(r.header("Cache-Control"), "max-age=3600")
        self.assertIsNotNone(r.header("Expires"))
        self.assertEqual(r.header("Vary"), "Accept-Encoding")
        # Nothing after the head: the raw bytes end with the blank line.
        self.assertTrue(r.raw.endswith(b"\r\n\r\n"))

    def test_if_none_match_exact(self):
        return self.assertNotModified([("If-None-Match", self.etag)])

    def test_if_none_match_list(self):
        return self.assertNotModified([("If-None-Match", f'"nope", {self.etag}, "other"')])

    def test_if_none_match_star(self):
        return self.assertNotModified([("If-None-Match", "*")])

    def test_if_none_match_weak_comparison(self):
        return self.assertNotModified([("If-None-Match", "W/" + self.etag)])

    def test_head_not_modified(self):
        return self.assertNotModified([("If-None-Match", self.etag)], "HEAD")

    def test_if_modified_since(self):
        return self.assertNotModified([("If-Modified-Since", http_date(MTIME))])

    @defer.inlineCallbacks
    def test_if_modified_since_older_sends_file(self):
        r = yield self.get("/page.txt", [("If-Modified-Since", http_date(MTIME - 10))])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"x" * 100)

    @defer.inlineCallbacks
    def test_if_none_match_mismatch_sends_file(self):
        r = yield self.get("/page.txt", [("If-None-Match", '"other"')])
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body), 100)

    @defer.inlineCallbacks
    def test_if_none_match_takes_precedence_over_if_modified_since(self):
        # RFC 9110 §13.1.3: IMS is ignored when INM is present.
        r = yield self.get(
            "/page.txt",
            [("If-None-Match", '"other"'), ("If-Modified-Since", http_date(MTIME + 100))],
        )
        self.assertEqual(r.status, 200)

    @defer.inlineCallbacks
    def test_if_modified_since_garbage_ignored(self):
        r = yield self.get("/page.txt", [("If-Modified-Since", "yesterday-ish")])
        self.assertEqual(r.status, 200)

    @defer.inlineCallbacks
    def test_if_match_mismatch_412(self):
        r = yield self.get("/page.txt", [("If-Match", '"other"')])
        self.assertEqual(r.status, 412)
        self.assertEqual(r.header("ETag"), self.etag)

    @defer.inlineCallbacks
    def test_if_match_is_strong(self):
        r = yield self.get("/page.txt", [("If-Match", "W/" + self.etag)])
        self.assertEqual(r.status, 412)

    @defer.inlineCallbacks
    def test_if_match_match_and_star(self):
        r = yield self.get("/page.txt", [("If-Match", self.etag)])
        self.assertEqual(r.status, 200)
        r = yield self.get("/page.txt", [("If-Match", "*")])
        self.assertEqual(r.status, 200)

    @defer.inlineCallbacks
    def test_if_unmodified_since(self):
        r = yield self.get("/page.txt", [("If-Unmodified-Since", http_date(MTIME - 1))])
        self.assertEqual(r.status, 412)
        r = yield self.get("/page.txt", [("If-Unmodified-Since", http_date(MTIME))])
        self.assertEqual(r.status, 200)

    @defer.inlineCallbacks
    def test_if_match_overrides_if_unmodified_since(self):
        # Step 2 only runs without If-Match.
        r = yield self.get(
            "/page.txt", [("If-Match", self.etag), ("If-Unmodified-Since", http_date(MTIME - 100))]
        )
        self.assertEqual(r.status, 200)

    @defer.inlineCallbacks
    def test_if_match_checked_before_if_none_match(self):
        r = yield self.get("/page.txt", [("If-Match", '"other"'), ("If-None-Match", self.etag)])
        self.assertEqual(r.status, 412)

    @defer.inlineCallbacks
    def test_changed_file_gets_new_etag(self):
        self.write("page.txt", "y" * 100, mtime=MTIME + 5)
        r = yield self.get("/page.txt", [("If-None-Match", self.etag)])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"y" * 100)
        self.assertNotEqual(r.header("ETag"), self.etag)

    def test_repeated_if_none_match_fields_are_one_list(self):
        # RFC 9110 §5.3: two field lines are one comma-separated list.
        return self.assertNotModified([("If-None-Match", self.etag), ("If-None-Match", '"other"')])

    @defer.inlineCallbacks
    def test_repeated_if_match_fields_are_one_list(self):
        r = yield self.get("/page.txt", [("If-Match", self.etag), ("If-Match", '"other"')])
        self.assertEqual(r.status, 200)
        r = yield self.get("/page.txt", [("If-Match", '"x"'), ("If-Match", '"y"')])
        self.assertEqual(r.status, 412)

    @defer.inlineCallbacks
    def test_if_modified_since_in_the_future_ignored(self):
        # As Apache (and RFC 7232 §3.3): a date later than the server's
        # clock is invalid; the file is sent.
        r = yield self.get("/page.txt", [("If-Modified-Since", http_date(time.time() + 86400))])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"x" * 100)

    @defer.inlineCallbacks
    def test_if_modified_since_with_several_dates_ignored(self):
        # RFC 9110 §13.1.3: more than one member -> ignored.
        r = yield self.get(
            "/page.txt",
            [("If-Modified-Since", http_date(MTIME)), ("If-Modified-Since", http_date(MTIME))],
        )
        self.assertEqual(r.status, 200)

    @defer.inlineCallbacks
    def test_asctime_and_rfc850_dates_are_gmt_whatever_the_local_zone(self):
        # The obsolete forms carry no zone: HTTP dates are always GMT, not
        # the server's local time.
        old_tz = os.environ.get("TZ")

        def restore():
            if old_tz is None:
                os.environ.pop("TZ", None)
            else:
                os.environ["TZ"] = old_tz
            time.tzset()

        self.addCleanup(restore)
        os.environ["TZ"] = "Asia/Tokyo"
        time.tzset()
        asctime = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(MTIME))
        rfc850 = time.strftime("%A, %d-%b-%y %H:%M:%S GMT", time.gmtime(MTIME))
        self.assertEqual(parse_http_date(asctime), MTIME)
        self.assertEqual(parse_http_date(rfc850), MTIME)
        yield self.assertNotModified([("If-Modified-Since", asctime)])
        r = yield self.get("/page.txt", [("If-Unmodified-Since", asctime)])
        self.assertEqual(r.status, 200)

    @defer.inlineCallbacks
    def test_last_modified_in_the_future_is_the_response_date(self):
        # RFC 9110 §8.8.2.1: an mtime later than the server's clock MUST be
        # replaced by the message's Date (Apache does; a client would
        # otherwise send it back as an If-Modified-Since in the future).
        future = int(time.time()) + 86400
        self.write("future.txt", "f" * 10, mtime=future)
        for headers in ([], [("Accept-Encoding", "gzip")]):
            r = yield self.get("/future.txt", headers)
            self.assertEqual(r.status, 200)
            last_modified = parse_http_date(r.header("Last-Modified"))
            self.assertLessEqual(last_modified, parse_http_date(r.header("Date")))
            self.assertLess(last_modified, future)

    def test_parse_etags(self):
        self.assertIsNone(parse_etags(" * "))
        self.assertEqual(
            parse_etags('"a", W/"b",,"c"'), [(False, '"a"'), (True, '"b"'), (False, '"c"')]
        )
        self.assertEqual(parse_etags('bare, "ok"'), [(False, '"ok"')])
