"""Containment and privacy (in memory): traversal tricks, symlinks
leaving the root, dotfiles.  The statuses are the ones docs/static.md lists."""

import os
import shutil
import tempfile

from twisted.internet import defer

from .static_support import StaticTestCase


class ContainmentTests(StaticTestCase):
    in_memory = True

    @defer.inlineCallbacks
    def setUp(self):
        self.make_root()
        self.make_outside()
        self.write("sub/file.txt", "inside\n")
        self.write(".env", "SECRET=1\n")
        self.write(".git/config", "[core]\n")
        self.write("sub/.htaccess", "Deny from all\n")
        self.write(".well-known/security.txt", "Contact: x\n")
        os.symlink(os.path.join(self.outside, "secret.txt"), os.path.join(self.root, "leak.txt"))
        os.symlink(self.outside, os.path.join(self.root, "leakdir"))
        os.symlink(
            os.path.join(self.root, "sub", "file.txt"), os.path.join(self.root, "inside-link.txt")
        )
        os.symlink(os.path.join(self.root, "sub"), os.path.join(self.root, "subdir-link"))
        os.symlink(os.path.join(self.root, "nowhere"), os.path.join(self.root, "dangling"))
        yield self.start()

    @defer.inlineCallbacks
    def assertStatus(self, path, status):
        r = yield self.get(path)
        self.assertEqual(r.status, status, f"{path}: {r.raw_head}")
        self.assertNotIn(b"outside secret", r.raw)
        self.assertNotIn(b"SECRET=1", r.raw)
        self.assertNotIn(b"root:", r.raw)

    @defer.inlineCallbacks
    def test_dot_segments_above_root_400(self):
        for path in (
            "/../etc/passwd",
            "/%2e%2e/%2e%2e/etc/passwd",
            "/%2E%2E/etc/passwd",
            "/sub/..%2f..%2f..%2fetc/passwd",
            "/sub/../../etc/passwd",
            "/.%2e/etc/passwd",
        ):
            yield self.assertStatus(path, 400)

    @defer.inlineCallbacks
    def test_nul_and_bad_utf8_400(self):
        for path in (
            "/sub/file.txt%00.html",
            "/%00",
            "/%c0%ae%c0%ae/etc/passwd",
            "/%c0%af",
            "/%e0%80%ae%e0%80%ae/etc/passwd",
            "/%ff",
        ):
            yield self.assertStatus(path, 400)

    @defer.inlineCallbacks
    def test_malformed_percent_encoding_400(self):
        # '%' not followed by two hex digits is not a URI (RFC 3986 §2.1):
        # Apache and nginx answer 400, not a 404 for a name with a '%'.
        for path in ("/%ZZ", "/%", "/sub/%2", "/%G0/x", "/sub/file.txt%"):
            yield self.assertStatus(path, 400)

    @defer.inlineCallbacks
    def test_double_encoding_and_backslash_are_literal_names_404(self):
        for path in (
            "/%252e%252e/%252e%252e/etc/passwd",
            "/sub%252f..%252f..%252fetc",
            "/..%5c..%5cetc%5cpasswd",
            "/sub%5c..%5c..%5c.env",
        ):
            yield self.assertStatus(path, 404)

    @defer.inlineCallbacks
    def test_harmless_dot_segments_resolve(self):
        r = yield self.get("/./sub/./../sub/file.txt")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"inside\n")

    @defer.inlineCallbacks
    def test_symlinks_leaving_root_403(self):
        yield self.assertStatus("/leak.txt", 403)
        yield self.assertStatus("/leakdir/secret.txt", 403)
        yield self.assertStatus("/leakdir/", 403)
        yield self.assertStatus("/leakdir/secret.txt/extra", 403)

    @defer.inlineCallbacks
    def test_symlinks_inside_root_served(self):
        r = yield self.get("/inside-link.txt")
        self.assertEqual((r.status, r.body), (200, b"inside\n"))
        r = yield self.get("/subdir-link/file.txt")
        self.assertEqual((r.status, r.body), (200, b"inside\n"))

    def test_dangling_symlink_404(self):
        return self.assertStatus("/dangling", 404)

    @defer.inlineCallbacks
    def test_dotfiles_hidden_404(self):
        for path in (
            "/.env",
            "/.git/config",
            "/.git/",
            "/sub/.htaccess",
            "/%2eenv",
            "/sub/%2ehtaccess",
        ):
            yield self.assertStatus(path, 404)

    @defer.inlineCallbacks
    def test_well_known_served(self):
        r = yield self.get("/.well-known/security.txt")
        self.assertEqual((r.status, r.body), (200, b"Contact: x\n"))

    @defer.inlineCallbacks
    def test_symlink_repointed_outside_is_refused(self):
        # A folder symlink that later points outside: refused once re-checked.
        r = yield self.get("/subdir-link/file.txt")
        self.assertEqual(r.status, 200)
        link = os.path.join(self.root, "subdir-link")
        os.unlink(link)
        os.makedirs(os.path.join(self.outside, "sub"))
        with open(os.path.join(self.outside, "sub", "file.txt"), "w") as f:
            f.write("outside secret\n")
        os.symlink(os.path.join(self.outside, "sub"), link)
        from twisted.internet import reactor, task

        from axkit.plugins import uri_to_file

        yield task.deferLater(reactor, uri_to_file.SYMLINK_RECHECK + 0.1, lambda: None)
        yield self.assertStatus("/subdir-link/file.txt", 403)


class AllowingTests(StaticTestCase):
    in_memory = True
    extra_config = """
        AllowDotFiles On
        AllowSymlinksOutsideRoot On
    """

    @defer.inlineCallbacks
    def setUp(self):
        self.make_root()
        self.outside = tempfile.mkdtemp(prefix="axkit-outside-")
        self.addCleanup(shutil.rmtree, self.outside, True)
        with open(os.path.join(self.outside, "shared.txt"), "w") as f:
            f.write("shared\n")
        os.symlink(os.path.join(self.outside, "shared.txt"), os.path.join(self.root, "s.txt"))
        os.symlink(self.outside, os.path.join(self.root, "d"))
        self.write(".hidden", "dot\n")
        yield self.start()

    @defer.inlineCallbacks
    def test_directives_allow(self):
        r = yield self.get("/s.txt")
        self.assertEqual((r.status, r.body), (200, b"shared\n"))
        r = yield self.get("/d/shared.txt")
        self.assertEqual((r.status, r.body), (200, b"shared\n"))
        r = yield self.get("/.hidden")
        self.assertEqual((r.status, r.body), (200, b"dot\n"))


class SwappedRootTests(StaticTestCase):
    in_memory = True
    """DocumentRoot under a symlink that a deploy re-points (current -> release)."""

    @defer.inlineCallbacks
    def setUp(self):
        self.make_root()
        for release in ("r1", "r2"):
            os.makedirs(os.path.join(self.root, release, "htdocs"))
            with open(os.path.join(self.root, release, "htdocs", "v.txt"), "w") as f:
                f.write(release + "\n")
        self.current = os.path.join(self.root, "current")
        os.symlink(os.path.join(self.root, "r1"), self.current)
        yield self.start(root=os.path.join(self.current, "htdocs"))

    @defer.inlineCallbacks
    def test_deploy_swap_followed(self):
        r = yield self.get("/v.txt")
        self.assertEqual((r.status, r.body), (200, b"r1\n"))
        tmp = self.current + ".new"
        os.symlink(os.path.join(self.root, "r2"), tmp)
        os.rename(tmp, self.current)
        from twisted.internet import reactor, task

        from axkit.plugins import uri_to_file

        yield task.deferLater(reactor, uri_to_file.SYMLINK_RECHECK + 0.1, lambda: None)
        r = yield self.get("/v.txt")
        self.assertEqual((r.status, r.body), (200, b"r2\n"))


class NestedRootsTests(StaticTestCase):
    """Two servers, one root inside the other: a symlink inside the inner
    root pointing elsewhere in the outer one is inside for the outer server
    only; the containment cache must not mix them up."""

    @defer.inlineCallbacks
    def setUp(self):
        self.make_root()
        self.write("other/secret.txt", "outer only\n")
        self.write("inner/ok.txt", "inner\n")
        os.symlink(os.path.join(self.root, "other"), os.path.join(self.root, "inner", "link"))
        from .static_support import REPO, STATIC_PLUGINS

        inner = os.path.join(self.root, "inner")
        text = (
            STATIC_PLUGINS.format(repo=REPO)
            + f"""
            <Server outer>
                ServerName outer
                DocumentRoot "{self.root}"
            </Server>
            <Server inner>
                ServerName inner
                DocumentRoot "{inner}"
            </Server>
        """
        )
        from axkit.testing import start_server

        self.server = yield start_server(text)
        self.addCleanup(self.server.stop)

    @defer.inlineCallbacks
    def fetch(self, host, path):
        from axkit.testing import parse_responses

        from .rawclient import exchange

        data = yield exchange(
            self.server.port,
            (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").encode(),
        )
        return parse_responses(data)[0]

    @defer.inlineCallbacks
    def test_cache_is_per_root(self):
        r = yield self.fetch("outer", "/inner/link/secret.txt")
        self.assertEqual((r.status, r.body), (200, b"outer only\n"))
        r = yield self.fetch("inner", "/link/secret.txt")
        self.assertEqual(r.status, 403)
        self.assertNotIn(b"outer only", r.body)
