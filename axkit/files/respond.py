"""One file as a response: what ``serve_file`` and ``request.send_file`` send.

``respond_file`` answers from a cache entry (and the open file, when its
bytes are not cached): conditional requests (If-Match, If-Unmodified-Since,
If-None-Match, If-Modified-Since, in RFC 9110 §13.2.2's order) as 304 or
412; byte ranges (single, suffix, open-ended, several as
multipart/byteranges, If-Range) as 206 or 416; HEAD; the body from the
cache, or zero-copy with sendfile (a bounded producer on TLS).  With an
encoding chosen by the compress plugin (a .gz/.br sibling, or gzip on the
fly) the encoded representation is sent, with its own ETag.

Its result is a hook result: DONE (answered), OK (a producer is sending),
or a status for the core's error page.
"""

import os
import stat as statmod

from twisted.internet.defer import Deferred

from axkit.hooks import DONE, OK

from . import ranges
from .cache import CACHE, CachedFile
from .producers import GzipProducer, gzip_bytes, send_segments
from .validators import (
    CONDITIONAL_FIELDS,
    LIST_FIELDS,
    NOT_MODIFIED,
    encoded_etag,
    evaluate,
    if_range_allows,
)


def respond_file(request, entry, f, coding=None, encoding=None, cache=CACHE):
    """Answer ``request`` with the file ``entry`` describes; ``f`` is the
    open file (owned from here on) or None when ``entry`` holds its bytes.
    ``coding``/``encoding``: the compress plugin's choice, if any."""
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
    for name, value in request.headers:  # (lower-case names)
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
    if fields is not None and coding is None and "range" in fields and request.method == "GET":
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
                    segments, _ = ranges.multipart_segments(plan, size, mime_type, boundary)
                    headers.set("Content-Type", f"multipart/byteranges; boundary={boundary}")
    if gzip_level is not None:
        return _send_gzip(request, entry, f, gzip_level, cache)
    body = entry.body
    if body is not None:
        if segments is not None:
            body = b"".join(
                s if s.__class__ is bytes else body[s[0] : s[0] + s[1]] for s in segments
            )
        request.send(status, body)
        return DONE
    if segments is None:
        segments = [(0, size)]
    return _send_segments(request, status, f, segments)


def _send_segments(request, status, f, segments):
    length = sum(len(s) if s.__class__ is bytes else s[1] for s in segments)
    if request.head_only or length == 0:
        request.start_response(status, length)
        f.close()
        request.finish()
        return DONE
    send_segments(request, status, length, f, segments)
    return OK


def _send_gzip(request, entry, f, level, cache):
    if entry.body is not None:
        request.send(200, cache.gzipped(request.filename, entry, level, gzip_bytes))
        return DONE
    request.start_response(200, None)
    if request.head_only:
        f.close()
        request.finish()
        return DONE
    GzipProducer(request, f, entry.size, level).start()
    return OK


def send_file(request, source, conditional=True, offset=0, length=None):
    """``request.send_file``: see its docstring.  Returns a Deferred firing
    with True when the response completed, False when it was cut."""
    done = Deferred()
    request.when_ended(lambda: done.callback(not request.aborted))
    try:
        result = _send_file(request, source, conditional, offset, length)
    except BaseException:
        if not request.finished:
            request.send_error(500)
        raise
    if result.__class__ is int:
        request.send_error(result)
    return done


def _send_file(request, source, conditional, offset, length):
    own = isinstance(source, (str, bytes, os.PathLike))
    if own:
        try:
            st = os.stat(source)
        except (FileNotFoundError, NotADirectoryError):
            return 404
        except PermissionError:
            return 403
        if not statmod.S_ISREG(st.st_mode):
            return 403
        if conditional and request.status == 200 and offset == 0 and length is None:
            try:
                entry, f = CACHE.lookup(os.fsdecode(source), st, request.conf)
            except (FileNotFoundError, NotADirectoryError):
                return 404
            except (PermissionError, IsADirectoryError):
                return 403
            return respond_file(request, entry, f)
        try:
            f = open(source, "rb", buffering=0)
        except (FileNotFoundError, NotADirectoryError):
            return 404
        except (PermissionError, IsADirectoryError):
            return 403
    else:
        # A file object handed in stays its owner's: a duplicate descriptor
        # is sent (and closed) here.
        f = os.fdopen(os.dup(source.fileno()), "rb", buffering=0)
        if offset == 0:
            try:
                offset = source.tell()
            except (OSError, ValueError):
                offset = 0
    try:
        st = os.fstat(f.fileno())
        if (
            conditional
            and request.status == 200
            and offset == 0
            and length is None
            and statmod.S_ISREG(st.st_mode)
        ):
            return respond_file(request, CachedFile(st, None), f)
        size = max(0, st.st_size - offset)
        if length is None or length > size:
            length = size
        return _send_segments(request, request.status, f, [(offset, length)])
    except BaseException:
        f.close()
        raise
