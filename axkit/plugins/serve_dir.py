"""serve_dir: list a directory as an HTML page (where DirectoryListing is On)."""

import os
import stat as statmod
import time
from html import escape
from urllib.parse import quote

from axkit.config import Directive, NOT_FILES, flag
from axkit.hooks import DECLINED, DONE


def human_size(n):
    for unit in ("B", "K", "M", "G", "T"):
        if n < 1024 or unit == "T":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024


class ServeDir:
    """Answers a URL naming a directory with a listing of its entries."""

    name = "serve_dir"
    directives = [
        Directive("DirectoryListing", flag, scopes=NOT_FILES, default=False,
                  doc="On: a directory without an index file is listed; Off: 403."),
    ]

    def hook_response(self, request, conf):
        st = request.finfo
        if request.filename is None or st is None or not statmod.S_ISDIR(st.st_mode):
            return DECLINED
        if request.method not in ("GET", "HEAD"):
            request.response_headers.set("Allow", "GET, HEAD, OPTIONS")
            return 405
        if not conf.directory_listing:
            return 403
        try:
            entries = self._entries(request.filename)
        except PermissionError:
            return 403
        except FileNotFoundError:
            return 404
        request.send(200, self.render(request.path, entries), "text/html; charset=utf-8")
        return DONE

    @staticmethod
    def _entries(folder):
        entries = []
        with os.scandir(folder) as it:
            for entry in it:
                if entry.name.startswith("."):
                    continue
                try:
                    st = entry.stat()
                except OSError:
                    continue
                entries.append((entry.name, statmod.S_ISDIR(st.st_mode), st.st_size,
                                st.st_mtime))
        entries.sort(key=lambda e: (not e[1], e[0].lower()))
        return entries

    @staticmethod
    def render(url_path, entries):
        title = escape(f"Index of {url_path}")
        rows = []
        if url_path != "/":
            rows.append('<tr><td><a href="../">../</a></td><td></td><td></td></tr>')
        for name, is_dir, size, mtime in entries:
            href = quote(name) + ("/" if is_dir else "")
            label = escape(name) + ("/" if is_dir else "")
            when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(mtime))
            rows.append(f'<tr><td><a href="{escape(href)}">{label}</a></td>'
                        f'<td>{"-" if is_dir else human_size(size)}</td><td>{when}</td></tr>')
        return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>"
                f"</head>\n<body><h1>{title}</h1>\n<table>\n"
                f"<tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr>\n"
                + "\n".join(rows) + "\n</table>\n</body></html>\n")
