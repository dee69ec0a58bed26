"""The compiled LogFormat renderer (axkit/plugins/access_log.py) writes the
same line as the field-by-field one, whatever the format's literal text."""

import time

from twisted.trial import unittest

from axkit.http.headers import Headers
from axkit.plugins.access_log import (
    COMBINED,
    _generic_renderer,
    _parse_format,
    clf_time,
    compile_format,
)


class FakeRequest:
    client_address = "127.0.0.1"
    user = None
    method = "GET"
    target = "/a?b=c"
    version = "1.1"
    status = 200
    bytes_sent = 1024
    path = "/a"
    raw_path = "/a"
    query = "b=c"
    filename = "/srv/a"
    notes = {"n": 0}

    def __init__(self, started, headers=()):
        self.started = started
        self.headers = Headers(headers, lowered=True)
        self.response_headers = Headers()


FORMATS = [
    COMBINED,
    "%h {literal} {{x}} }{ \"%r\" %>s %b %% %q \\ 'q' %{n}n %U %m %H %f",
    "%t %{%Y-%m-%d}t %B",
    "no escapes at all",
]


class CompiledFormatTests(unittest.TestCase):
    def both(self, fmt, request, now):
        return compile_format(fmt)(request, now), _generic_renderer(_parse_format(fmt))(
            request, now
        )

    def test_same_line_as_the_generic_renderer(self):
        started = 1_800_000_000.25
        for headers in ((), [("referer", "http://x/"), ("user-agent", 'a "quoted" \\ agent\x01')]):
            request = FakeRequest(started, headers)
            for fmt in FORMATS:
                compiled, generic = self.both(fmt, request, started + 0.5)
                self.assertEqual(compiled, generic, fmt)
                self.assertTrue(compiled.endswith("\n"))

    def test_literal_braces_are_kept(self):
        line = compile_format("{%s} {{x}}")(FakeRequest(time.time()), time.time())
        self.assertEqual(line, "{200} {{x}}\n")

    def test_time_follows_each_request_second(self):
        render = compile_format("%t")
        first = render(FakeRequest(1_800_000_000.9), 0)
        second = render(FakeRequest(1_800_000_001.1), 0)
        again = render(FakeRequest(1_800_000_000.1), 0)
        self.assertEqual(first, clf_time(1_800_000_000) + "\n")
        self.assertEqual(second, clf_time(1_800_000_001) + "\n")
        self.assertEqual(again, first)
        self.assertNotEqual(first, second)

    def test_repeated_and_unlowered_fields_read_as_headers_get(self):
        # A repeated field (Headers keeps no index: its values joined) and a
        # Headers made without lowered=True (an internal redirect's) read
        # the same as the generic renderer's Headers.get.
        started = 1_800_000_000.25
        cases = [
            Headers([("user-agent", "a"), ("referer", "r"), ("user-agent", "b")], lowered=True),
            Headers([("User-Agent", "c"), ("Referer", "r2")]),
        ]
        for headers in cases:
            request = FakeRequest(started)
            request.headers = headers
            compiled, generic = self.both(COMBINED, request, started)
            self.assertEqual(compiled, generic)
        request = FakeRequest(started)
        request.headers = cases[0]
        self.assertIn('"r" "a, b"', self.both(COMBINED, request, started)[0])

    def test_only_duration_formats_read_the_end_time(self):
        self.assertFalse(compile_format(COMBINED).uses_now)
        self.assertTrue(compile_format("%h %D").uses_now)
        self.assertTrue(compile_format("%T").uses_now)
