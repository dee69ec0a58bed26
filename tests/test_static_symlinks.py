"""Options FollowSymLinks / SymLinksIfOwnerMatch over a real socket: symlinked
files and folders, DirectoryIndex and PATH_INFO through symlinks, per-<Location>
Options, and one log line per refusal.  Statuses as docs/static.md lists them."""

import os
import shutil

from twisted.internet import defer

from .cgi_support import CGI_BIN, LogCapture, plugin_name
from .static_support import STATIC_PLUGINS, StaticTestCase

NAMESPACE = "axkit.plugins.uri_to_file"
OTHER_UID = 4242  # an owner nobody else has, for SymLinksIfOwnerMatch


class SymlinkTree(StaticTestCase):
    """A root with a symlinked file, folder, index file and CGI program:

    sub/file.txt, sub/other.txt     regular files
    link.txt -> sub/file.txt        symlinked file
    linkdir -> sub                  symlinked folder
    d/index.html -> ../sub/file.txt symlinked DirectoryIndex
    bin/run.cgi                     a program (prints SCRIPT_NAME|PATH_INFO)
    run.cgi -> bin/run.cgi          symlinked program
    binlink -> bin                  symlinked folder holding the program
    dangling -> nowhere
    leak.txt -> OUTSIDE/secret.txt  leaves the root
    """

    plugins = STATIC_PLUGINS.replace(
        "Plugin uri_to_file", f"Plugin {plugin_name()}\nPlugin uri_to_file"
    )
    base_config = """
        AddHandler cgi-script .cgi
        Options +ExecCGI +Indexes
    """
    options = ""

    @defer.inlineCallbacks
    def setUp(self):
        self.make_root()
        self.make_outside()
        self.write("sub/file.txt", "inside\n")
        self.write("sub/other.txt", "other\n")
        os.makedirs(os.path.join(self.root, "d"))
        os.makedirs(os.path.join(self.root, "bin"))
        script = os.path.join(self.root, "bin", "run.cgi")
        shutil.copy(os.path.join(CGI_BIN, "sub", "deep.sh"), script)
        os.chmod(script, 0o755)
        self.link("sub/file.txt", "link.txt")
        self.link("sub", "linkdir")
        self.link("../sub/file.txt", "d/index.html")
        self.link("bin/run.cgi", "run.cgi")
        self.link("bin", "binlink")
        self.link("nowhere", "dangling")
        os.symlink(os.path.join(self.outside, "secret.txt"), os.path.join(self.root, "leak.txt"))
        self.logs = LogCapture()
        self.addCleanup(self.logs.stop)
        yield self.start(self.base_config + self.options)

    def link(self, target, name):
        os.symlink(target, os.path.join(self.root, name))
        return os.path.join(self.root, name)

    @defer.inlineCallbacks
    def check(self, path, status, body=None):
        r = yield self.get(path)
        self.assertEqual(r.status, status, f"{path}: {r.raw_head}")
        if body is not None:
            self.assertEqual(r.body, body, path)
        self.assertNotIn(b"outside secret", r.raw)
        return r

    def log_lines(self):
        return self.logs.lines(NAMESPACE)

    @defer.inlineCallbacks
    def assertRefused(self, path, names, why):
        """``path`` is 403, with exactly one new log line naming ``names``
        (a path below the root) and saying ``why``."""
        before = len(self.log_lines())
        r = yield self.check(path, 403)
        self.assertNotIn(b"inside\n", r.body)
        new = self.log_lines()[before:]
        self.assertEqual(len(new), 1, f"{path}: {new}")
        self.assertIn(os.path.join(self.root, names), new[0])
        self.assertIn(why, new[0])
        self.assertTrue(new[0].endswith("-> 403"), new[0])


class FollowSymLinksDefaultTests(SymlinkTree):
    """No Options line about symlinks: FollowSymLinks is on (Apache 2.4)."""

    @defer.inlineCallbacks
    def test_symlinked_file_and_folder_200(self):
        yield self.check("/link.txt", 200, b"inside\n")
        yield self.check("/linkdir/file.txt", 200, b"inside\n")
        yield self.check("/linkdir/other.txt", 200, b"other\n")
        self.assertEqual(self.log_lines(), [])

    @defer.inlineCallbacks
    def test_directory_index_symlink_200(self):
        yield self.check("/d/", 200, b"inside\n")

    @defer.inlineCallbacks
    def test_path_info_below_symlinked_program_200(self):
        yield self.check("/run.cgi/a/b", 200, b"/run.cgi|/a/b\n")
        yield self.check("/binlink/run.cgi/x", 200, b"/binlink/run.cgi|/x\n")

    @defer.inlineCallbacks
    def test_containment_unchanged(self):
        yield self.check("/dangling", 404)
        yield self.assertRefused("/leak.txt", "leak.txt", "outside DocumentRoot")

    @defer.inlineCallbacks
    def test_listing_leaves_out_what_it_would_refuse(self):
        # As Apache's mod_autoindex: an entry the server would not serve
        # (a symlink leaving the root, a dangling one) is not listed, so
        # nothing of the outside file (its size, its date) shows.
        for query in ("", "?format=xml"):
            r = yield self.check("/" + query, 200)
            self.assertIn(b"link.txt", r.body)
            self.assertIn(b"linkdir", r.body)
            self.assertNotIn(b"leak.txt", r.body, query)
            self.assertNotIn(b"dangling", r.body, query)
        self.assertEqual(self.log_lines(), [])


class FollowSymLinksOffTests(SymlinkTree):
    options = "Options -FollowSymLinks\n"

    @defer.inlineCallbacks
    def test_regular_files_still_served(self):
        yield self.check("/sub/file.txt", 200, b"inside\n")
        yield self.check("/bin/run.cgi/p", 200, b"/bin/run.cgi|/p\n")
        self.assertEqual(self.log_lines(), [])

    @defer.inlineCallbacks
    def test_symlinked_file_403(self):
        yield self.assertRefused("/link.txt", "link.txt", "FollowSymLinks is off")

    @defer.inlineCallbacks
    def test_listing_leaves_symlinks_out(self):
        for query in ("", "?format=xml"):
            r = yield self.check("/" + query, 200)
            self.assertIn(b"sub", r.body)
            for name in (b"link.txt", b"linkdir", b"leak.txt", b"dangling", b"binlink"):
                self.assertNotIn(name, r.body, query)
        self.assertEqual(self.log_lines(), [])

    @defer.inlineCallbacks
    def test_file_in_symlinked_folder_403(self):
        yield self.assertRefused("/linkdir/file.txt", "linkdir", "FollowSymLinks is off")
        # Cached now: still refused, still one line per request.
        yield self.assertRefused("/linkdir/other.txt", "linkdir", "FollowSymLinks is off")

    @defer.inlineCallbacks
    def test_symlinked_folder_itself_403(self):
        yield self.assertRefused("/linkdir/", "linkdir", "FollowSymLinks is off")
        yield self.assertRefused("/linkdir", "linkdir", "FollowSymLinks is off")

    @defer.inlineCallbacks
    def test_missing_name_below_symlinked_folder_403(self):
        yield self.assertRefused("/linkdir/missing.txt", "linkdir", "FollowSymLinks is off")

    @defer.inlineCallbacks
    def test_directory_index_symlink_403_not_a_listing(self):
        # Indexes is on, but the index file is a refused symlink: 403, as
        # Apache's mod_dir does, never a listing that would show it.
        r = yield self.check("/d/", 403)
        self.assertNotIn(b"index.html", r.body)
        lines = self.log_lines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn(os.path.join(self.root, "d", "index.html"), lines[0])

    @defer.inlineCallbacks
    def test_path_info_below_symlinked_program_403(self):
        yield self.assertRefused("/run.cgi/a/b", "run.cgi", "FollowSymLinks is off")
        yield self.assertRefused("/binlink/run.cgi/x", "binlink", "FollowSymLinks is off")

    @defer.inlineCallbacks
    def test_dangling_and_outside_symlinks_403(self):
        yield self.assertRefused("/dangling", "dangling", "FollowSymLinks is off")
        yield self.assertRefused("/leak.txt", "leak.txt", "FollowSymLinks is off")


class AllOptionsOffTests(SymlinkTree):
    """A bare Options list replaces the set: FollowSymLinks goes with it."""

    options = "Options Indexes ExecCGI\n"

    def test_bare_list_turns_following_off(self):
        return self.assertRefused("/link.txt", "link.txt", "FollowSymLinks is off")


class OwnerMatchTests(SymlinkTree):
    options = "Options -FollowSymLinks +SymLinksIfOwnerMatch\n"

    def chown_link(self, name):
        if os.geteuid() != 0:
            raise self.skipTest("needs root to give a symlink another owner (os.lchown)")
        os.lchown(os.path.join(self.root, name), OTHER_UID, -1)

    @defer.inlineCallbacks
    def test_same_owner_followed_200(self):
        yield self.check("/link.txt", 200, b"inside\n")
        yield self.check("/linkdir/file.txt", 200, b"inside\n")
        yield self.check("/d/", 200, b"inside\n")
        yield self.check("/run.cgi/a", 200, b"/run.cgi|/a\n")
        self.assertEqual(self.log_lines(), [])

    @defer.inlineCallbacks
    def test_other_owner_file_403(self):
        self.chown_link("link.txt")
        yield self.assertRefused("/link.txt", "link.txt", f"its owner (uid {OTHER_UID})")

    @defer.inlineCallbacks
    def test_other_owner_folder_403(self):
        self.chown_link("linkdir")
        yield self.assertRefused("/linkdir/file.txt", "linkdir", f"(uid {OTHER_UID})")

    @defer.inlineCallbacks
    def test_other_owner_program_403(self):
        self.chown_link("run.cgi")
        yield self.assertRefused("/run.cgi/a", "run.cgi", f"(uid {OTHER_UID})")

    @defer.inlineCallbacks
    def test_other_owner_index_403(self):
        self.chown_link("d/index.html")
        yield self.check("/d/", 403)

    def test_dangling_403(self):
        # No target to compare owners with: refused, as Apache does.
        return self.assertRefused("/dangling", "dangling", "does not exist")

    def test_outside_root_still_403(self):
        return self.assertRefused("/leak.txt", "leak.txt", "outside DocumentRoot")


class FollowSymLinksWinsTests(SymlinkTree):
    """With FollowSymLinks on, SymLinksIfOwnerMatch does not matter (Apache)."""

    options = "Options +SymLinksIfOwnerMatch\n"

    @defer.inlineCallbacks
    def test_other_owner_followed(self):
        if os.geteuid() != 0:
            raise self.skipTest("needs root for os.lchown")
        os.lchown(os.path.join(self.root, "link.txt"), OTHER_UID, -1)
        yield self.check("/link.txt", 200, b"inside\n")


class PerLocationTests(SymlinkTree):
    """Options are the request URL's scope's: the folder cache holds facts,
    each request's Options are applied to them."""

    options = """
        Options -FollowSymLinks
        <Location /linkdir/file.txt>
            Options +FollowSymLinks
        </Location>
        <Location /run.cgi>
            Options +FollowSymLinks
        </Location>
    """

    @defer.inlineCallbacks
    def test_location_turns_following_on(self):
        yield self.check("/linkdir/file.txt", 200, b"inside\n")
        # Same folder, another URL outside that <Location>: refused...
        yield self.assertRefused("/linkdir/other.txt", "linkdir", "FollowSymLinks is off")
        # ...and the first one still served from the same cached folder.
        yield self.check("/linkdir/file.txt", 200, b"inside\n")
        yield self.check("/run.cgi/pi", 200, b"/run.cgi|/pi\n")
        yield self.assertRefused("/link.txt", "link.txt", "FollowSymLinks is off")


class PerLocationOffTests(SymlinkTree):
    options = """
        <Location /linkdir>
            Options -FollowSymLinks
        </Location>
    """

    @defer.inlineCallbacks
    def test_location_turns_following_off(self):
        yield self.check("/link.txt", 200, b"inside\n")
        yield self.assertRefused("/linkdir/file.txt", "linkdir", "FollowSymLinks is off")
        yield self.check("/d/", 200, b"inside\n")


class OutsideAllowedTests(SymlinkTree):
    """AllowSymlinksOutsideRoot allows leaving the root, not following
    symlinks where FollowSymLinks is off."""

    options = """
        AllowSymlinksOutsideRoot On
        <Location /off>
            Options -FollowSymLinks
        </Location>
    """

    @defer.inlineCallbacks
    def test_outside_follows_options(self):
        self.link(os.path.join(self.outside, "secret.txt"), "off")
        yield self.assertRefused("/off", "off", "FollowSymLinks is off")
        r = yield self.get("/leak.txt")
        self.assertEqual((r.status, r.body), (200, b"outside secret\n"))
