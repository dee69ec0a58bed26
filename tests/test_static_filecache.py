"""The open-file cache (in memory): hits skip the open, and any
change to the file (even one that keeps size and mtime) is seen at once."""

import os

from twisted.internet import defer

from .static_support import StaticTestCase


class FileCacheTests(StaticTestCase):
    in_memory = True
    extra_config = """
        FileCacheSize 10K
    """

    @defer.inlineCallbacks
    def setUp(self):
        self.make_root()
        self.path = self.write("f.txt", "version 1\n", mtime=1700000000)
        yield self.start()
        self.plugin = self.site.holder.config.plugins["serve_file"]

    @defer.inlineCallbacks
    def test_hit_does_not_reopen(self):
        yield self.get("/f.txt")
        opened = []
        real_open = open
        import builtins

        def spy(name, *args, **kw):
            opened.append(name)
            return real_open(name, *args, **kw)

        self.patch(builtins, "open", spy)
        r = yield self.get("/f.txt")
        self.assertEqual(r.body, b"version 1\n")
        self.assertEqual([n for n in opened if str(n).endswith("f.txt")], [])

    @defer.inlineCallbacks
    def test_change_with_same_size_and_mtime_is_seen(self):
        r = yield self.get("/f.txt")
        self.assertEqual(r.body, b"version 1\n")
        with open(self.path, "w") as f:
            f.write("version 2\n")
        os.utime(self.path, (1700000000, 1700000000))  # same size, same mtime
        r = yield self.get("/f.txt")
        self.assertEqual(r.body, b"version 2\n")

    @defer.inlineCallbacks
    def test_replaced_and_deleted(self):
        yield self.get("/f.txt")
        tmp = self.write("f.tmp", "replacement\n")
        os.rename(tmp, self.path)
        r = yield self.get("/f.txt")
        self.assertEqual(r.body, b"replacement\n")
        os.unlink(self.path)
        r = yield self.get("/f.txt")
        self.assertEqual(r.status, 404)

    @defer.inlineCallbacks
    def test_bounded(self):
        for i in range(30):
            self.write(f"n{i}.bin", os.urandom(1000))
            r = yield self.get(f"/n{i}.bin")
            self.assertEqual(r.status, 200)
        self.assertLessEqual(self.plugin.cache.cached_bytes, 10 * 1024)
        self.assertEqual(
            self.plugin.cache.cached_bytes,
            sum(len(e.body) for e in self.plugin.cache.values() if e.body),
        )
