"""Transformed output, cached and never stale.

An entry is keyed by (document, chain, style, parameters) and holds the
bytes with every input's stat key (the document, each stylesheet and
everything it imported or included, each document() file).  It is used
only while a fresh stat of each input matches, so an edit anywhere shows
on the very next request.  Its ETag is derived from the key and those
stat keys, its Last-Modified is the newest input's; it is answered by
the static file code (axkit.files.respond), so 304/412, ranges and HEAD
behave exactly as for a file.
"""

import hashlib
import time
from collections import OrderedDict

from axkit.files.cache import CachedFile
from axkit.http.dates import http_date

from .safety import still_valid

_formatted = (None, "")  # the last (mtime, Last-Modified): pages per request share it


def _last_modified(mtime):
    global _formatted
    last = _formatted  # (one read: another thread may replace it meanwhile)
    if last[0] != mtime:
        last = _formatted = (mtime, http_date(mtime))
    return last[1]


class Output(CachedFile):
    """The transformed bytes, looking to the file responder like a file."""

    __slots__ = ("deps", "media_type")

    def __init__(self, key, body, media_type, deps, mtimes):
        digest = hashlib.sha1(repr((key, sorted(deps.items()))).encode()).hexdigest()
        self.key = digest
        self.etag = f'"x{digest[:24]}"'
        self.mtime = int(max(mtimes, default=0) // 1_000_000_000)
        self.last_modified = _last_modified(self.mtime)
        self.future = self.mtime > time.time()
        self.size = len(body)
        self.body = body
        self.gzipped = None
        self.fields = None
        self.file = None
        self.deps = deps
        self.media_type = media_type


class Unstyled:
    """A document with no stylesheet to apply (no processors, no
    xml-stylesheet instruction): sent as a plain file while it is unchanged,
    without being parsed again."""

    __slots__ = ("deps",)
    size = 0
    body = None

    def __init__(self, deps):
        self.deps = deps


def make_output(key, result, made_now=False):
    """The Output of ``result``: Last-Modified is its newest input's; with
    ``made_now`` (XML handed over by a plugin: its content may change with
    no file changing) never older than the second it was made in, so an
    older output's Last-Modified does not make it a 304 (to the second:
    the ETag is the exact validator)."""
    mtimes = [k[3] for k in result.deps.values() if k is not None]
    if made_now:
        mtimes.append(int(time.time()) * 1_000_000_000)
    return Output(key, result.body, result.media_type, result.deps, mtimes)


class SourceCache:
    """The bytes of the XML files transformed lately, by file name, each
    with the stat key it was read under.  One is used only while the
    request's own stat of the file (uri_to_file's) has that key -- never
    stale, as the output cache -- so a page transformed per request reads
    no file, as a small static file is sent from memory.  Files up to
    ``largest`` bytes, ``limit`` in all (past it, all are dropped)."""

    def __init__(self, limit=8 * 1024 * 1024, largest=256 * 1024):
        self.entries = {}
        self.bytes = 0
        self.limit = limit
        self.largest = largest

    def get(self, filename, key):
        """(stat key, bytes) of ``filename`` if read under ``key``, or None."""
        entry = self.entries.get(filename)
        if entry is not None and entry[0] == key:
            return entry
        return None

    def put(self, filename, entry):
        size = len(entry[1])
        if size > self.largest:
            return
        old = self.entries.pop(filename, None)
        if old is not None:
            self.bytes -= len(old[1])
        if self.bytes + size > self.limit:
            self.entries.clear()
            self.bytes = 0
        self.entries[filename] = entry
        self.bytes += size


class OutputCache:
    """Outputs by key, least recently used evicted past ``limit`` bytes."""

    def __init__(self):
        self.entries = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key, known=None, known_key=None):
        """The entry for ``key`` if every input still has its stat key
        (``known``, a file stat'ed already this request, has ``known_key``)."""
        entry = self.entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        if not still_valid(entry.deps, known, known_key):
            self._drop(key)
            self.misses += 1
            return None
        self.entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key, entry, limit):
        if entry.size > limit // 4:
            return
        if key in self.entries:
            self._drop(key)
        self.entries[key] = entry
        self.bytes += entry.size
        while self.bytes > limit and self.entries:
            self._drop(next(iter(self.entries)))

    def _drop(self, key):
        entry = self.entries.pop(key)
        self.bytes -= entry.size
