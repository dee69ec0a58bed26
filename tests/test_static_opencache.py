"""The file cache keeps mid-size files open (axkit/files/cache.py): a hit
reuses the descriptor, a changed file is opened again, an entry that goes
closes its descriptor, and a response sent over several turns takes a
descriptor of its own."""

import builtins
import os
import tempfile

from twisted.trial import unittest

from axkit.files import cache as cachemod
from axkit.files.cache import FileCache, SharedFile, owned


class Conf:
    file_cache = True
    file_cache_max_file_size = 1024
    file_cache_size = 1 << 20


class OpenFileCacheTests(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.cache = FileCache()
        self.addCleanup(self._empty)

    def _empty(self):
        for entry in list(self.cache.entries.values()):
            self.cache._forget(entry)

    def write(self, name, data):
        path = os.path.join(self.root, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def lookup(self, path):
        return self.cache.lookup(path, os.stat(path), Conf())

    def test_hit_reuses_the_descriptor_without_opening(self):
        path = self.write("mid.bin", b"m" * 5000)
        entry, f = self.lookup(path)
        self.assertIs(f.__class__, SharedFile)
        opened = []
        real_open = builtins.open

        def spy(name, *args, **kw):
            opened.append(name)
            return real_open(name, *args, **kw)

        self.patch(builtins, "open", spy)
        again, f2 = self.lookup(path)
        self.assertIs(again, entry)
        self.assertEqual(f2.fileno(), f.fileno())
        self.assertEqual(opened, [])
        self.assertEqual(os.pread(f2.fileno(), 5000, 0), b"m" * 5000)

    def test_close_leaves_the_cached_descriptor_open(self):
        path = self.write("mid.bin", b"m" * 5000)
        _, f = self.lookup(path)
        f.close()
        self.assertEqual(os.pread(f.fileno(), 3, 0), b"mmm")

    def test_replaced_file_is_opened_again_and_the_old_descriptor_closed(self):
        path = self.write("mid.bin", b"1" * 5000)
        old_entry, _ = self.lookup(path)
        old_file = old_entry.file
        tmp = self.write("mid.tmp", b"2" * 6000)
        os.rename(tmp, path)
        entry, f = self.lookup(path)
        self.assertIsNot(entry, old_entry)
        self.assertEqual(os.pread(f.fileno(), 6000, 0), b"2" * 6000)
        self.assertTrue(old_file.closed)
        self.assertEqual(self.cache.open_files, 1)

    def test_own_is_a_file_of_its_own(self):
        path = self.write("mid.bin", b"m" * 5000)
        entry, f = self.lookup(path)
        mine = owned(f)
        self.addCleanup(mine.close)
        self.assertNotEqual(mine.fileno(), f.fileno())
        self.cache._forget(entry)  # the cache closes its descriptor
        self.assertEqual(os.pread(mine.fileno(), 3, 0), b"mmm")

    def test_owned_leaves_a_plain_file_alone(self):
        path = self.write("small.bin", b"s")
        with open(path, "rb") as f:
            self.assertIs(owned(f), f)

    def test_small_and_big_files_keep_no_descriptor(self):
        small = self.write("small.bin", b"s" * 100)  # held in memory
        entry, f = self.lookup(small)
        self.assertIsNone(f)
        self.assertIsNone(entry.file)
        self.patch(cachemod, "MAX_OPEN_FILE_SIZE", 4000)
        big = self.write("big.bin", b"b" * 5000)
        entry, f = self.lookup(big)
        self.addCleanup(f.close)
        self.assertIsNone(entry.file)
        self.assertIsNot(f.__class__, SharedFile)
        self.assertEqual(self.cache.open_files, 0)

    def test_open_descriptors_are_bounded(self):
        self.patch(cachemod, "MAX_OPEN", 1)
        first, f1 = self.lookup(self.write("a.bin", b"a" * 5000))
        second, f2 = self.lookup(self.write("b.bin", b"b" * 5000))
        self.addCleanup(f2.close)
        self.assertIsNotNone(first.file)
        self.assertIsNone(second.file)
        self.assertEqual(self.cache.open_files, 1)

    def test_eviction_closes_the_descriptor(self):
        self.patch(cachemod, "MAX_ENTRIES", 1)
        first, _ = self.lookup(self.write("a.bin", b"a" * 5000))
        kept = first.file
        self.lookup(self.write("b.bin", b"b" * 5000))
        self.assertTrue(kept.closed)
        self.assertEqual(self.cache.open_files, 1)

    def test_file_cache_off_keeps_nothing_open(self):
        class Off(Conf):
            file_cache = False

        path = self.write("mid.bin", b"m" * 5000)
        entry, f = self.cache.lookup(path, os.stat(path), Off())
        self.addCleanup(f.close)
        self.assertIsNone(entry.file)
        self.assertEqual(self.cache.open_files, 0)
