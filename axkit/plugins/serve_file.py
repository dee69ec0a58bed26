"""serve_file: answer GET and HEAD for a regular file.

Small files go out in one write; larger ones through a streaming producer
that reads a block at a time and pauses when the client does not keep up,
so a slow client never makes the server hold the file in memory.
"""

import os
import stat as statmod

from axkit.http.dates import http_date, parse_http_date
from axkit.http.producers import FileProducer
from axkit.hooks import DECLINED, DONE, OK

SMALL_FILE = 65536


class ServeFile:
    """Serves regular files (200/304/403/404, HEAD, Last-Modified)."""

    name = "serve_file"
    directives = []

    def hook_response(self, request, conf):
        filename = request.filename
        if filename is None:
            return DECLINED
        st = request.finfo
        if st is None:
            return 404
        if not statmod.S_ISREG(st.st_mode):
            return DECLINED
        if request.method not in ("GET", "HEAD"):
            request.response_headers.set("Allow", "GET, HEAD, OPTIONS")
            return 405
        try:
            f = open(filename, "rb", buffering=0)
        except FileNotFoundError:
            return 404
        except (PermissionError, IsADirectoryError):
            return 403
        st = os.fstat(f.fileno())
        mtime = int(st.st_mtime)
        headers = request.response_headers
        headers.set("Last-Modified", http_date(mtime))
        since = request.headers.get("if-modified-since")
        if since is not None and "if-none-match" not in request.headers:
            when = parse_http_date(since)
            if when is not None and mtime <= when:
                f.close()
                request.send(304)
                return DONE
        if request.mime_type:
            headers.set("Content-Type", request.mime_type)
        size = st.st_size
        if request.head_only:
            f.close()
            request.start_response(200, size)
            request.finish()
            return DONE
        if size <= SMALL_FILE:
            with f:
                data = f.read(size)
            if len(data) != size:
                # Changed under us: send what the stat promised or fail cleanly.
                return 500
            request.send(200, data)
            return DONE
        request.start_response(200, size)
        FileProducer(request, f, 0, size).start()
        return OK
