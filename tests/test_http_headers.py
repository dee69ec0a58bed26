"""axkit.http.headers.Headers: lookups, and add_missing's shortcuts."""

from twisted.trial import unittest

from axkit.http.headers import Headers

FIELDS = (("ETag", '"1"'), ("Content-Type", "text/plain"), ("Accept-Ranges", "bytes"))
NAMES = frozenset(("etag", "content-type", "accept-ranges"))


class AddMissingTests(unittest.TestCase):
    def test_into_empty(self):
        headers = Headers()
        headers.add_missing(FIELDS, NAMES)
        self.assertEqual(headers.items(), list(FIELDS))

    def test_unrelated_field_set_all_added_after_it(self):
        headers = Headers([("Vary", "Accept-Encoding")])
        headers.add_missing(FIELDS, NAMES)
        self.assertEqual(headers.items(), [("Vary", "Accept-Encoding"), *FIELDS])

    def test_field_already_set_is_kept_whatever_its_case(self):
        for names in (NAMES, None):
            headers = Headers([("Vary", "Accept-Encoding"), ("content-type", "text/html")])
            headers.add_missing(FIELDS, names)
            self.assertEqual(headers.get_all("Content-Type"), ["text/html"])
            self.assertEqual(headers.get("ETag"), '"1"')
            self.assertEqual(headers.get("accept-ranges"), "bytes")
            self.assertEqual(len(headers), 4)

    def test_lookups_see_added_fields(self):
        headers = Headers([("Vary", "Accept-Encoding")])
        self.assertNotIn("ETag", headers)
        headers.add_missing(FIELDS, NAMES)
        self.assertIn("etag", headers)

    def test_lowered_headers_store_lower_case_names(self):
        headers = Headers([("vary", "x")], lowered=True)
        self.assertIsNone(headers.get("etag"))  # builds the lookup index
        headers.add_missing(FIELDS, NAMES)
        self.assertEqual([k for k, _ in headers], ["vary", "etag", "content-type", "accept-ranges"])
        self.assertEqual(headers.get("ETag"), '"1"')


class FieldsByNameTests(unittest.TestCase):
    def test_lowered_fields_without_repeats(self):
        h = Headers([("host", "a"), ("accept-encoding", "gzip")], lowered=True)
        self.assertEqual(h.fields_by_name(), {"host": "a", "accept-encoding": "gzip"})

    def test_a_repeated_name_or_unlowered_fields_give_none(self):
        self.assertIsNone(Headers([("a", "1"), ("a", "2")], lowered=True).fields_by_name())
        self.assertIsNone(Headers([("Host", "a")]).fields_by_name())

    def test_a_change_is_seen(self):
        h = Headers([("host", "a")], lowered=True)
        self.assertNotIn("range", h.fields_by_name())
        h.add("Range", "bytes=0-1")
        self.assertEqual(h.fields_by_name()["range"], "bytes=0-1")
        h.add("range", "bytes=2-3")
        self.assertIsNone(h.fields_by_name())
