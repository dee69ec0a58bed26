"""The RFC 9112 request-head rules of axkit.http.framing, as plain functions
(no connection).  tests/test_http_framing.py checks the same rules end to
end, through the parser and a socket."""

from httptools import HttpParserError
from twisted.trial.unittest import SynchronousTestCase

from axkit.http.framing import (
    ProtocolError,
    check_transfer_coding,
    good_host,
    read_head,
    split_tokens,
    status_for_invalid_method,
    status_for_parser_error,
    target_form,
)

HOST = [("host", "example.com")]


class RefusalMixin:
    def assertRefused(self, status, fn, *args):
        e = self.assertRaises(ProtocolError, fn, *args)
        self.assertEqual(e.status, status, e.detail)
        return e


class SplitTokensTests(SynchronousTestCase):
    def test_one_token_lower_cased_and_stripped(self):
        self.assertEqual(split_tokens(" Close "), ["close"])

    def test_list_drops_empty_elements(self):
        self.assertEqual(split_tokens("a, ,B,,c "), ["a", "b", "c"])

    def test_empty(self):
        self.assertEqual(split_tokens("  "), [])
        self.assertEqual(split_tokens(" , "), [])


class HostTests(RefusalMixin, SynchronousTestCase):
    def test_good_hosts(self):
        for host in ("example.com", "example.com:8080", "127.0.0.1", "[::1]:80", ""):
            self.assertTrue(good_host(host), host)

    def test_bad_hosts(self):
        for host in ("a b", "a/b", "a\\b", "user@a", "a?b", "a#b", "a,b", "a\tb"):
            self.assertFalse(good_host(host), host)

    def test_http_1_1_needs_exactly_one_host(self):
        self.assertRefused(400, read_head, "1.1", [])
        self.assertRefused(400, read_head, "1.1", HOST + HOST)

    def test_http_1_0_may_omit_host_but_not_repeat_it(self):
        self.assertEqual(read_head("1.0", [])[0], False)
        self.assertRefused(400, read_head, "1.0", HOST + HOST)

    def test_malformed_host_refused(self):
        e = self.assertRefused(400, read_head, "1.1", [("host", "a@b")])
        self.assertIn("Host", e.detail)


class VersionTests(RefusalMixin, SynchronousTestCase):
    def test_supported(self):
        read_head("1.1", HOST)
        read_head("1.0", [])

    def test_http_0_x_is_a_malformed_line(self):
        self.assertRefused(400, read_head, "0.9", HOST)

    def test_other_versions_not_supported(self):
        self.assertRefused(505, read_head, "2.0", HOST)
        self.assertRefused(505, read_head, "1.2", HOST)


class KeepAliveTests(SynchronousTestCase):
    def keep_alive(self, version, *connection):
        fields = HOST + [("connection", value) for value in connection]
        return read_head(version, fields)[0]

    def test_defaults(self):
        self.assertTrue(self.keep_alive("1.1"))
        self.assertFalse(self.keep_alive("1.0"))

    def test_close_anywhere_in_any_field(self):
        self.assertFalse(self.keep_alive("1.1", "Close"))
        self.assertFalse(self.keep_alive("1.1", "foo, close"))
        self.assertFalse(self.keep_alive("1.1", "foo", "close"))
        self.assertTrue(self.keep_alive("1.1", "foo, upgrade"))

    def test_http_1_0_keep_alive_token(self):
        self.assertTrue(self.keep_alive("1.0", "Keep-Alive"))
        self.assertTrue(self.keep_alive("1.0", "te", "keep-alive"))
        self.assertFalse(self.keep_alive("1.0", "keep-alive, close"))
        self.assertFalse(self.keep_alive("1.0", "keep-alives"))


class FramingFieldsTests(SynchronousTestCase):
    def test_values_returned_raw(self):
        fields = HOST + [("content-length", "5"), ("expect", "100-continue"), ("x-other", "1")]
        self.assertEqual(read_head("1.1", fields), (True, "5", None, "100-continue"))

    def test_transfer_encoding_fields_joined(self):
        fields = HOST + [("transfer-encoding", "gzip"), ("transfer-encoding", "chunked")]
        self.assertEqual(read_head("1.1", fields)[2], "gzip,chunked")


class TransferCodingTests(RefusalMixin, SynchronousTestCase):
    def test_chunked_accepted(self):
        check_transfer_coding("1.1", "chunked", None)
        check_transfer_coding("1.1", " Chunked ", None)

    def test_http_1_0(self):
        self.assertRefused(400, check_transfer_coding, "1.0", "chunked", None)

    def test_with_content_length(self):
        self.assertRefused(400, check_transfer_coding, "1.1", "chunked", "5")

    def test_chunked_must_be_last(self):
        self.assertRefused(400, check_transfer_coding, "1.1", "gzip", None)
        self.assertRefused(400, check_transfer_coding, "1.1", "chunked, gzip", None)
        self.assertRefused(400, check_transfer_coding, "1.1", ",", None)

    def test_chunked_twice(self):
        self.assertRefused(400, check_transfer_coding, "1.1", "chunked,chunked", None)

    def test_other_codings_not_implemented(self):
        e = self.assertRefused(501, check_transfer_coding, "1.1", "gzip, chunked", None)
        self.assertIn("gzip", e.detail)


class TargetFormTests(RefusalMixin, SynchronousTestCase):
    def test_origin_form(self):
        self.assertIsNone(target_form("GET", "/a?b"))

    def test_fragment_refused_in_every_form(self):
        for target in ("/a#b", "http://h/a#b", "*#"):
            self.assertRefused(400, target_form, "GET", target)

    def test_asterisk_only_for_options(self):
        self.assertEqual(target_form("OPTIONS", "*"), ("*", None, None))
        self.assertRefused(400, target_form, "GET", "*")

    def test_absolute_form(self):
        self.assertEqual(
            target_form("GET", "http://Example.com:8080/a/b?x=1"),
            ("/a/b", "x=1", "Example.com:8080"),
        )
        self.assertEqual(target_form("GET", "https://h"), ("/", None, "h"))
        self.assertEqual(target_form("GET", "http://h/?"), ("/", "", "h"))
        self.assertEqual(target_form("GET", "http://user@h/a"), ("/a", None, "h"))

    def test_absolute_form_refusals(self):
        for target in ("ftp://h/a", "http:///a", "http://[::1/a"):
            self.assertRefused(400, target_form, "GET", target)
        self.assertRefused(400, target_form, "CONNECT", "http://h/")

    def test_authority_form_only_for_connect(self):
        self.assertEqual(target_form("CONNECT", "h:443"), ("*", None, None))
        self.assertEqual(target_form("CONNECT", "h:443?x"), ("*", "x", None))
        self.assertRefused(400, target_form, "GET", "h:443")


class ParserErrorStatusTests(SynchronousTestCase):
    def test_http2_preface(self):
        status, _ = status_for_parser_error(HttpParserError("Pause on PRI/Upgrade"))
        self.assertEqual(status, 505)

    def test_invalid_transfer_encoding(self):
        e = HttpParserError("Invalid `Transfer-Encoding` header value")
        self.assertEqual(status_for_parser_error(e)[0], 400)
        e = HttpParserError("Request has invalid `Transfer-Encoding`")
        self.assertEqual(status_for_parser_error(e), (501, "unsupported transfer coding"))

    def test_anything_else_is_a_400_with_its_text(self):
        self.assertEqual(
            status_for_parser_error(HttpParserError("Invalid header")), (400, "Invalid header")
        )
        self.assertEqual(status_for_parser_error(HttpParserError()), (400, "HttpParserError"))

    def test_unknown_method_on_a_well_formed_line_is_501(self):
        self.assertEqual(
            status_for_invalid_method(b"BREW /pot HTTP/1.1\r\nHost: x\r\n"),
            (501, "request method not implemented"),
        )
        self.assertEqual(
            status_for_invalid_method(memoryview(b"GET / HTTP/1.1\r\n\r\nBREW / HTTP/1.0\r\n"))[0],
            501,
        )

    def test_garbage_is_400(self):
        self.assertEqual(
            status_for_invalid_method(b"\x16\x03\x01\x02\x00"), (400, "malformed request line")
        )
        self.assertEqual(status_for_invalid_method(b"BREW /pot HTTP/2.0\r\n")[0], 400)
