"""serve_file: answer GET and HEAD for a regular file, as nginx would.

Per response: a strong ETag and Last-Modified; conditional requests
(If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since, in the
order RFC 9110 §13.2.2 gives) answered 304 or 412; byte ranges (single,
suffix, open-ended, several as multipart/byteranges, If-Range) answered
206 or 416; the body from the file cache (small files), or zero-copy with
sendfile (or a bounded producer on TLS) for the rest.  When the compress
plugin chose an encoding (a .gz/.br sibling, or gzip on the fly) the
encoded representation is sent, with its own ETag.

The file cache keeps, per file name, the validators and (for files up to
FileCacheMaxFileSize) the content, checked against the stat taken for
this very request: a file that changed (inode, size, mtime or ctime) is
read again, so the cache never serves stale bytes.
"""

import os
import stat as statmod
import time

from axkit.config import Directive, SERVER_ONLY, flag, size
from axkit.hooks import DECLINED, DONE, OK
from axkit.http import ranges
from axkit.http.dates import http_date
from axkit.http.producers import GzipProducer, gzip_bytes, send_file
from axkit.http.validators import (CONDITIONAL_FIELDS, LIST_FIELDS, NOT_MODIFIED,
                                   encoded_etag, evaluate, file_etag, if_range_allows)

# Set by the compress plugin: (coding, sibling path or None, sibling stat or gzip level).
ENCODING_NOTE = "axkit.encoding"

MAX_ENTRIES = 10000


class CachedFile:
    """What is known about one version of one file."""

    __slots__ = ("key", "etag", "last_modified", "mtime", "size", "body", "gzipped",
                 "fields", "future")

    def __init__(self, st, body):
        self.key = file_key(st)
        self.etag = file_etag(st)
        self.mtime = int(st.st_mtime)
        self.last_modified = http_date(self.mtime)
        # An mtime ahead of the clock: Last-Modified is then each response's
        # Date (RFC 9110 §8.8.2.1), checked per request until the clock passes it.
        self.future = self.mtime > time.time()
        self.size = st.st_size
        self.body = body            # bytes, or None when not kept
        self.gzipped = None         # (level, bytes) of the gzip'd body, when made
        self.fields = None          # (media type, the identity response's fields, their names)

    def as_of_now(self):
        """This entry, or while its mtime is still ahead of the clock, a copy
        (not cached) whose Last-Modified is now: RFC 9110 §8.8.2.1."""
        now = int(time.time())
        if self.mtime <= now:
            self.future = False
            return self
        copy = CachedFile.__new__(CachedFile)
        for name in CachedFile.__slots__:
            setattr(copy, name, getattr(self, name))
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
            fields = self.fields = (mime_type, tuple(items),
                                    frozenset(name.lower() for name, _ in items))
        return fields[1], fields[2]


def file_key(st):
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class ServeFile:
    """Serves regular files (validators, 304/412, ranges, sendfile, file cache)."""

    name = "serve_file"
    directives = [
        Directive("FileCache", flag, scopes=SERVER_ONLY, default=True,
                  doc="On: keep validators and small files' content in memory, "
                      "checked against a fresh stat on every request."),
        Directive("FileCacheMaxFileSize", size, scopes=SERVER_ONLY, default=65536,
                  doc="Largest file whose content the file cache keeps."),
        Directive("FileCacheSize", size, scopes=SERVER_ONLY, default=32 * 1024 * 1024,
                  doc="Total bytes of file content the file cache may hold."),
    ]

    def __init__(self):
        self.cache = {}
        self.cached_bytes = 0

    # -- the file cache -------------------------------------------------------

    def _lookup(self, filename, st, conf):
        """(entry, open file or None) for ``filename`` whose stat is ``st``.

        The file is opened only when its content is not in the cache; the
        entry then reflects the opened file's own fstat."""
        entry = self.cache.get(filename)
        if entry is not None and entry.key == file_key(st) and entry.body is not None:
            return entry, None
        f = open(filename, "rb", buffering=0)
        try:
            fst = os.fstat(f.fileno())
            if not statmod.S_ISREG(fst.st_mode):
                raise IsADirectoryError(filename)
            if entry is not None and entry.key == file_key(fst):
                return entry, f
            body = None
            keep = fst.st_size <= conf.file_cache_max_file_size
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
        if conf.file_cache:
            self._store(filename, entry, conf)
        if body is not None:
            f.close()
            f = None
        return entry, f

    def _store(self, filename, entry, conf):
        cache = self.cache
        old = cache.pop(filename, None)
        if old is not None and old.body is not None:
            self.cached_bytes -= len(old.body) + (len(old.gzipped[1]) if old.gzipped else 0)
        added = len(entry.body) if entry.body is not None else 0
        limit = conf.file_cache_size
        while cache and (len(cache) >= MAX_ENTRIES or self.cached_bytes + added > limit):
            # Oldest first (dicts keep insertion order).
            victim = cache.pop(next(iter(cache)))
            if victim.body is not None:
                self.cached_bytes -= len(victim.body) + (
                    len(victim.gzipped[1]) if victim.gzipped else 0)
        if added > limit:
            return
        cache[filename] = entry
        self.cached_bytes += added

    # -- the response ---------------------------------------------------------

    def hook_response(self, request, conf):
        filename = request.filename
        if filename is None:
            return DECLINED
        st = request.finfo
        if st is None:
            return 404
        if st.st_mode & 0o170000 != 0o100000:      # not a regular file
            return DECLINED
        if request.path_info:
            # /file.html/more: a static file takes no PATH_INFO (Apache's default).
            return 404
        method = request.method
        if method != "GET" and method != "HEAD":
            request.response_headers.set("Allow", "GET, HEAD, OPTIONS")
            if method == "OPTIONS":
                request.send(204)       # what Allow says is allowed (RFC 9110 §9.3.7)
                return DONE
            return 405
        notes = request.notes
        encoding = notes.get(ENCODING_NOTE) if notes else None
        if encoding is None:
            # The common case first: a small file whose content is cached.
            entry = self.cache.get(filename)
            if entry is not None and entry.body is not None and entry.key == file_key(st):
                return self._respond(request, conf, entry, None, None, None)
        coding = None
        if encoding is not None:
            coding, sibling, detail = encoding
            if sibling is not None:
                filename, st = sibling, detail
        try:
            entry, f = self._lookup(filename, st, conf)
        except (FileNotFoundError, NotADirectoryError):
            return 404
        except (PermissionError, IsADirectoryError):
            return 403
        try:
            return self._respond(request, conf, entry, f, coding, encoding)
        except BaseException:
            if f is not None:
                f.close()
            raise

    def _respond(self, request, conf, entry, f, coding, encoding):
        if entry.future:
            entry = entry.as_of_now()
        etag = entry.etag
        gzip_level = None
        if coding is not None:
            etag = encoded_etag(etag, coding)
            if encoding[1] is None:
                gzip_level = encoding[2]
        headers = request.response_headers
        fields = None
        for name, value in request.headers:
            if name in CONDITIONAL_FIELDS:
                if fields is None:
                    fields = {}
                elif name in fields:
                    # Repeated: the lines of a list field are one list (RFC
                    # 9110 §5.3); a date field with several values is invalid.
                    value = fields[name] + ", " + value if name in LIST_FIELDS else ""
                fields[name] = value
        if fields is not None:
            status = evaluate(fields, request.method, etag, entry.mtime)
            if status is not None:
                if f is not None:
                    f.close()
                headers.setdefault("ETag", etag)
                headers.setdefault("Last-Modified", entry.last_modified)
                if status == NOT_MODIFIED:
                    request.send(NOT_MODIFIED)
                    return DONE
                return status
        mime_type = request.mime_type
        # Fields a fixup plugin (Header, Expires ...) already set are kept.
        if coding is None:
            headers.add_missing(*entry.identity_fields(mime_type))
        else:
            put = headers.add if not len(headers) else headers.setdefault
            put("ETag", etag)
            put("Last-Modified", entry.last_modified)
            if mime_type:
                put("Content-Type", mime_type)
            headers.set("Content-Encoding", coding)
        size = entry.size
        status = 200
        segments = None
        if (fields is not None and coding is None and "range" in fields
                and request.method == "GET"):
            if_range = fields.get("if-range")
            if if_range is None or if_range_allows(if_range, etag, entry.last_modified):
                plan = ranges.plan(fields["range"], size)
                if plan is ranges.UNSATISFIABLE:
                    if f is not None:
                        f.close()
                    headers.set("Content-Range", f"bytes */{size}")
                    return 416
                if plan is not None:
                    status = 206
                    if len(plan) == 1:
                        first, last = plan[0]
                        headers.set("Content-Range", ranges.content_range(first, last, size))
                        segments = [(first, last - first + 1)]
                    else:
                        boundary = ranges.new_boundary()
                        segments, _ = ranges.multipart_segments(
                            plan, size, mime_type, boundary)
                        headers.set("Content-Type",
                                    f"multipart/byteranges; boundary={boundary}")
        if gzip_level is not None:
            return self._send_gzip(request, entry, f, gzip_level)
        body = entry.body
        if body is not None:
            if segments is not None:
                body = b"".join(s if s.__class__ is bytes else body[s[0]:s[0] + s[1]]
                                for s in segments)
            request.send(status, body)
            return DONE
        if segments is None:
            segments = [(0, size)]
        length = sum(len(s) if s.__class__ is bytes else s[1] for s in segments)
        request.start_response(status, length)
        if request.head_only or length == 0:
            f.close()
            request.finish()
            return DONE
        send_file(request, f, segments)
        return OK

    def _send_gzip(self, request, entry, f, level):
        body = entry.body
        if body is not None:
            gzipped = entry.gzipped
            if gzipped is None or gzipped[0] != level:
                gzipped = (level, gzip_bytes(body, level))
                if self.cache.get(request.filename) is entry:
                    self.cached_bytes += len(gzipped[1]) - (
                        len(entry.gzipped[1]) if entry.gzipped else 0)
                    entry.gzipped = gzipped
            request.send(200, gzipped[1])
            return DONE
        request.start_response(200, None)
        if request.head_only:
            f.close()
            request.finish()
            return DONE
        GzipProducer(request, f, entry.size, level).start()
        return OK
