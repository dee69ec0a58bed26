"""The hop-by-hop table (RFC 9110 7.6.1): what end_to_end lets through."""

from twisted.trial.unittest import SynchronousTestCase

from axkit.proxy.hop import REQUEST_OWN, RESPONSE_OWN, end_to_end

# (fields in, own set, fields that must pass, names that must not)
CASES = [
    ([("Connection", "close")], (), [], ["connection"]),
    ([("Connection", "keep-alive"), ("Keep-Alive", "timeout=5")], (), [], ["keep-alive"]),
    ([("Proxy-Connection", "keep-alive")], (), [], ["proxy-connection"]),
    ([("TE", "trailers")], (), [], ["te"]),
    ([("Trailer", "X-Sum")], (), [], ["trailer"]),
    ([("Transfer-Encoding", "chunked")], (), [], ["transfer-encoding"]),
    ([("Upgrade", "websocket"), ("Connection", "Upgrade")], (), [], ["upgrade"]),
    ([("Connection", "X-Secret"), ("X-Secret", "1"), ("X-Open", "2")], (), [("X-Open", "2")], []),
    (
        [("Connection", "X-Forwarded-For"), ("X-Forwarded-For", "6.6.6.6")],
        (),
        [],
        ["x-forwarded-for"],
    ),
    ([("Connection", "Authorization"), ("Authorization", "Basic eA==")], (), [], ["authorization"]),
    (
        [("Connection", "a"), ("Connection", "b"), ("A", "1"), ("B", "2"), ("C", "3")],
        (),
        [("C", "3")],
        ["a", "b"],
    ),
    (
        [("Connection", "a, b ,,c"), ("A", "1"), ("B", "2"), ("C", "3"), ("D", "4")],
        (),
        [("D", "4")],
        [],
    ),
    ([("connection", "X-UPPER"), ("x-upper", "1")], (), [], ["x-upper"]),
    ([("CONNECTION", "close"), ("KEEP-ALIVE", "1")], (), [], ["connection", "keep-alive"]),
    ([("Connection", "Cookie"), ("Cookie", "a=b")], (), [], ["cookie"]),
    ([("Connection", ""), ("X-Keep", "1")], (), [("X-Keep", "1")], []),
    (
        [("Host", "evil"), ("Content-Length", "5"), ("Expect", "100-continue")],
        REQUEST_OWN,
        [],
        ["host", "content-length", "expect"],
    ),
    (
        [("Content-Length", "5"), ("Date", "x"), ("Server", "y"), ("ETag", '"1"')],
        RESPONSE_OWN,
        [("ETag", '"1"')],
        ["date", "server"],
    ),
    (
        [("Cache-Control", "max-age=60"), ("Last-Modified", "Tue, 01 Dec 2026 00:00:00 GMT")],
        RESPONSE_OWN,
        [("Cache-Control", "max-age=60"), ("Last-Modified", "Tue, 01 Dec 2026 00:00:00 GMT")],
        [],
    ),
    (
        [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")],
        RESPONSE_OWN,
        [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")],
        [],
    ),
    ([("X-Forwarded-For", "1.2.3.4")], REQUEST_OWN, [("X-Forwarded-For", "1.2.3.4")], []),
    (
        [("Connection", "te, trailers"), ("TE", "trailers"), ("Trailers", "x")],
        (),
        [],
        ["te", "trailers"],
    ),
    ([("Keep-Alive", "max=5"), ("X-A", "1")], (), [("X-A", "1")], ["keep-alive"]),
    (
        [("Transfer-Encoding", "gzip, chunked"), ("Content-Encoding", "gzip")],
        RESPONSE_OWN,
        [("Content-Encoding", "gzip")],
        [],
    ),
]


class HopByHopTable(SynchronousTestCase):
    def test_table(self):
        self.assertGreaterEqual(len(CASES), 20)
        for i, (fields, own, passed, dropped) in enumerate(CASES):
            out = end_to_end(fields, frozenset(own))
            names = {n.lower() for n, _ in out}
            for name in dropped:
                self.assertNotIn(name, names, f"case {i}: {fields}")
            for pair in passed:
                self.assertIn(pair, out, f"case {i}: {fields}")
            for name in names:
                self.assertNotIn(
                    name, ("connection", "transfer-encoding", "keep-alive"), f"case {i}"
                )
            self.assertEqual(len(out), len(passed), f"case {i}: {out}")

    def test_keep_upgrade_for_a_tunnel(self):
        fields = [("Upgrade", "websocket"), ("Connection", "Upgrade")]
        self.assertEqual(
            end_to_end(fields, keep=frozenset(("upgrade",))), [("Upgrade", "websocket")]
        )


class Confinement(SynchronousTestCase):
    """axkit.files.confine: the one "inside this folder" check."""

    def test_is_inside(self):
        from axkit.files.confine import inside_any, is_inside

        for path, root, expected in [
            ("/srv/www", "/srv/www", True),
            ("/srv/www", "/srv/www/", True),
            ("/srv/www/a/b", "/srv/www", True),
            ("/srv/www/a/b", "/srv/www/", True),
            ("/srv/www-evil/a", "/srv/www", False),
            ("/srv/wwwx", "/srv/www/", False),
            ("/srv", "/srv/www", False),
            ("/etc/passwd", "/", True),
        ]:
            self.assertEqual(is_inside(path, root), expected, (path, root))
        self.assertTrue(inside_any("/b/x", ["/a", "/b"]))
        self.assertFalse(inside_any("/c/x", ["/a", "/b"]))
