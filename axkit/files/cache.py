"""The file cache: per file name, validators and (for small files) content.

An entry is checked against the stat taken for the very request that uses
it: a file that changed (inode, size, mtime or ctime) is read again, so
the cache never serves stale bytes.
"""

import os
import stat as statmod
import time

from axkit.http.dates import http_date

from .validators import file_etag

MAX_ENTRIES = 10000
# What a scope without serve_file's FileCache* directives gets.
DEFAULT_MAX_FILE_SIZE = 65536
DEFAULT_SIZE = 32 * 1024 * 1024
# A file too big to hold in memory, up to this size, keeps its descriptor
# open in its entry (nginx's open_file_cache): a request for it costs no
# open, fstat and close.  At most MAX_OPEN such descriptors; a file deleted
# while cached keeps its disk space until its entry goes (a smaller bound
# keeps that small).
MAX_OPEN_FILE_SIZE = 1024 * 1024
MAX_OPEN = 256


class CachedFile:
    """What is known about one version of one file."""

    __slots__ = (
        "key",
        "etag",
        "last_modified",
        "mtime",
        "size",
        "body",
        "gzipped",
        "fields",
        "future",
        "file",
    )

    def __init__(self, st, body):
        self.key = file_key(st)
        self.etag = file_etag(st)
        self.mtime = int(st.st_mtime)
        self.last_modified = http_date(self.mtime)
        # An mtime ahead of the clock: Last-Modified is then each response's
        # Date (RFC 9110 §8.8.2.1), checked per request until the clock passes it.
        self.future = self.mtime > time.time()
        self.size = st.st_size
        self.body = body  # bytes, or None when not kept
        self.gzipped = None  # (level, bytes) of the gzip'd body, when made
        self.fields = None  # (media type, the identity response's fields, their names)
        self.file = None  # the open file, kept by the cache (see MAX_OPEN_FILE_SIZE)

    def as_of_now(self):
        """This entry, or while its mtime is still ahead of the clock, a copy
        (not cached) whose Last-Modified is now: RFC 9110 §8.8.2.1."""
        now = int(time.time())
        if self.mtime <= now:
            self.future = False
            return self
        cls = type(self)  # (subclasses too: the XSLT output cache's entries)
        copy = cls.__new__(cls)
        for klass in cls.__mro__:
            for name in getattr(klass, "__slots__", ()):
                # (A subclass may leave a slot unset: None in the copy.)
                setattr(copy, name, getattr(self, name, None))
        copy.mtime = now
        copy.last_modified = http_date(now)
        copy.fields = None
        copy.future = False
        return copy

    def identity_fields(self, mime_type):
        """The fields of a 200 of this file sent as is, and their names in
        lower case (for Headers.add_missing), made once per type."""
        fields = self.fields
        if fields is None or fields[0] != mime_type:
            items = [("ETag", self.etag), ("Last-Modified", self.last_modified)]
            if mime_type:
                items.append(("Content-Type", mime_type))
            items.append(("Accept-Ranges", "bytes"))
            fields = self.fields = (
                mime_type,
                tuple(items),
                frozenset(name.lower() for name, _ in items),
            )
        return fields[1], fields[2]


class SharedFile:
    """The cache's open file lent to one response: ``fileno()`` for a
    sendfile made at once; ``close()`` does nothing (the cache closes it);
    ``own()`` is a file of the response's own (a duplicate descriptor),
    for a response that sends later, when the cache may have closed it."""

    __slots__ = ("file", "name")

    def __init__(self, f):
        self.file = f
        self.name = f.name

    def fileno(self):
        return self.file.fileno()

    def close(self):
        pass

    def own(self):
        return os.fdopen(os.dup(self.file.fileno()), "rb", buffering=0)


def owned(f):
    """``f``, or a file of its own when ``f`` is the cache's (`SharedFile`)."""
    return f.own() if f.__class__ is SharedFile else f


def file_key(st):
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class FileCache:
    """Entries by file name, oldest evicted first, bounded in count and bytes
    (``FileCacheSize``, ``FileCacheMaxFileSize`` of the scope storing)."""

    __slots__ = ("entries", "cached_bytes", "open_files")

    def __init__(self):
        self.entries = {}
        self.cached_bytes = 0
        self.open_files = 0

    def get(self, filename):
        return self.entries.get(filename)

    def values(self):
        return self.entries.values()

    def fresh(self, filename, st):
        """The entry for ``filename`` when it holds the content of the file
        whose stat is ``st``, else None (the fast path of small files)."""
        entry = self.entries.get(filename)
        if entry is not None and entry.body is not None and entry.key == file_key(st):
            return entry
        return None

    def lookup(self, filename, st, conf):
        """(entry, open file or None) for ``filename`` whose stat is ``st``.

        The file is opened only when its content is not in the cache; the
        entry then reflects the opened file's own fstat.  Raises OSError
        (FileNotFoundError, PermissionError, IsADirectoryError ...)."""
        entry = self.entries.get(filename)
        if entry is not None and entry.key == file_key(st):
            if entry.body is not None:
                return entry, None
            if entry.file is not None:
                # Same inode, size and times as the stat just taken: the
                # descriptor reads this very file.
                return entry, SharedFile(entry.file)
        f = open(filename, "rb", buffering=0)
        try:
            fst = os.fstat(f.fileno())
            if not statmod.S_ISREG(fst.st_mode):
                raise IsADirectoryError(filename)
            if entry is not None and entry.key == file_key(fst):
                return entry, f
            body = None
            keep = fst.st_size <= getattr(conf, "file_cache_max_file_size", DEFAULT_MAX_FILE_SIZE)
            if keep:
                body = f.read(fst.st_size)
                if len(body) != fst.st_size or file_key(os.fstat(f.fileno())) != file_key(fst):
                    # Changing while we read: serve from the descriptor, cache nothing.
                    f.seek(0)
                    return CachedFile(fst, None), f
            entry = CachedFile(fst, body)
        except BaseException:
            f.close()
            raise
        if getattr(conf, "file_cache", True):
            if (
                body is None
                and fst.st_size <= MAX_OPEN_FILE_SIZE
                and self.open_files < MAX_OPEN
                and file_key(fst) == file_key(st)
            ):
                entry.file = f
                self.open_files += 1
                f = SharedFile(f)
            self.store(filename, entry, conf)
        if body is not None:
            f.close()
            f = None
        return entry, f

    def discard(self, filename):
        """Drop ``filename``'s entry (the file is gone): its bytes, and the
        descriptor it keeps open, which would hold a deleted file's space."""
        old = self.entries.pop(filename, None)
        if old is not None:
            self._forget(old)
            if old.body is not None:
                self.cached_bytes -= len(old.body) + (len(old.gzipped[1]) if old.gzipped else 0)

    def _forget(self, entry):
        """``entry`` leaves the cache: close the file it keeps open."""
        if entry.file is not None:
            entry.file.close()
            entry.file = None
            self.open_files -= 1

    def store(self, filename, entry, conf):
        entries = self.entries
        self.discard(filename)
        added = len(entry.body) if entry.body is not None else 0
        limit = getattr(conf, "file_cache_size", DEFAULT_SIZE)
        while entries and (len(entries) >= MAX_ENTRIES or self.cached_bytes + added > limit):
            # Oldest first (dicts keep insertion order).
            victim = entries.pop(next(iter(entries)))
            self._forget(victim)
            if victim.body is not None:
                self.cached_bytes -= len(victim.body) + (
                    len(victim.gzipped[1]) if victim.gzipped else 0
                )
        if added > limit:
            self._forget(entry)
            return
        entries[filename] = entry
        self.cached_bytes += added

    def gzipped(self, filename, entry, level, compress):
        """The gzip'd body of cached ``entry`` at ``level`` (made once with
        ``compress(body, level)`` and kept while the entry is cached)."""
        gzipped = entry.gzipped
        if gzipped is None or gzipped[0] != level:
            gzipped = (level, compress(entry.body, level))
            if self.entries.get(filename) is entry:
                self.cached_bytes += len(gzipped[1]) - (
                    len(entry.gzipped[1]) if entry.gzipped else 0
                )
                entry.gzipped = gzipped
        return gzipped[1]


# The process's file cache: serve_file and request.send_file share it (an
# entry is valid only for the stat it was made from, so sharing is safe).
CACHE = FileCache()
