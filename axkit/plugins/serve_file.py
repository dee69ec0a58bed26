"""serve_file: answer GET and HEAD for a regular file, as nginx would.

Per response: a strong ETag and Last-Modified; conditional requests
answered 304 or 412; byte ranges answered 206 or 416; the body from the
file cache (small files), or zero-copy with sendfile (or a bounded producer
on TLS) for the rest.  When the compress plugin chose an encoding (a
.gz/.br sibling, or gzip on the fly) the encoded representation is sent,
with its own ETag.  The sending itself is axkit.files' (the same code as
``request.send_file``); this plugin decides which requests it answers.
"""

from axkit.config import SERVER_ONLY, Directive, flag, size
from axkit.files.cache import CACHE, file_key
from axkit.files.respond import respond_file
from axkit.hooks import DECLINED, DONE
from axkit.notes import ENCODING


class ServeFile:
    """Serves regular files (validators, 304/412, ranges, sendfile, file cache)."""

    name = "serve_file"
    directives = [
        Directive(
            "FileCache",
            flag,
            scopes=SERVER_ONLY,
            default=True,
            doc="On: keep validators and small files' content in memory, "
            "checked against a fresh stat on every request.",
        ),
        Directive(
            "FileCacheMaxFileSize",
            size,
            scopes=SERVER_ONLY,
            default=65536,
            doc="Largest file whose content the file cache keeps.",
        ),
        Directive(
            "FileCacheSize",
            size,
            scopes=SERVER_ONLY,
            default=32 * 1024 * 1024,
            doc="Total bytes of file content the file cache may hold.",
        ),
    ]

    def __init__(self):
        # The process's file cache (shared with request.send_file).
        self.cache = CACHE
        self.entries = CACHE.entries

    # -- the response ---------------------------------------------------------

    def hook_response(self, request, conf):
        filename = request.filename
        if filename is None or request.handler is not None:
            # (A request another handler claimed -- SetHandler, a CGI
            # program, an application -- is not a file to send.)
            return DECLINED
        st = request.finfo
        if st is None:
            # Gone: a descriptor the cache kept for it goes too.
            if filename in self.entries:
                self.cache.discard(filename)
            return 404
        if st.st_mode & 0o170000 != 0o100000:  # not a regular file
            return DECLINED
        if request.path_info:
            # /file.html/more: a static file takes no PATH_INFO (Apache's default).
            return 404
        method = request.method
        if method != "GET" and method != "HEAD":
            request.response_headers.set("Allow", "GET, HEAD, OPTIONS")
            if method == "OPTIONS":
                request.send(204)  # what Allow says is allowed (RFC 9110 §9.3.7)
                return DONE
            return 405
        notes = request.notes
        encoding = notes.get(ENCODING) if notes else None
        if encoding is None:
            # The common case first: a small file whose content is cached.
            entry = self.entries.get(filename)
            if entry is not None and entry.body is not None and entry.key == file_key(st):
                return respond_file(request, entry, None)
        coding = None
        if encoding is not None:
            coding, sibling, detail = encoding
            if sibling is not None:
                filename, st = sibling, detail
        try:
            entry, f = self.cache.lookup(filename, st, conf)
        except (FileNotFoundError, NotADirectoryError):
            return 404
        except (PermissionError, IsADirectoryError):
            return 403
        try:
            return respond_file(request, entry, f, coding, encoding)
        except BaseException:
            if f is not None:
                f.close()
            raise
