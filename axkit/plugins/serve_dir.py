"""serve_dir: list a directory, where listings are enabled.

Enabled by ``Options +Indexes`` (Apache's spelling) or ``DirectoryListing
On``; elsewhere a directory without an index file is answered 403.

Two forms of the same listing:

* HTML, sortable by name, size or date: ``?sort=name|size|date`` and
  ``&order=asc|desc`` (the column headers link to them; Apache's ``?C=S;O=D``
  is understood too); names are escaped,
  sizes human-readable (1.5K, 3.2M);
* XML, for XML pipelines to transform: ``?format=xml``, or a request whose
  Accept prefers ``application/xml`` / ``text/xml`` over ``text/html``::

      <filelist path="/docs/">
        <directory name="img" size="4096" mtime="2026-01-01T10:00:00Z" type="directory"/>
        <file name="a.txt" size="12" mtime="2026-01-01T10:00:00Z" type="text/plain"/>
      </filelist>

Which entries are shown, and the XML form, are axkit/files/listing.py's
(the xslt plugin styles the same XML).
"""

import os
import time
from html import escape
from urllib.parse import parse_qsl, quote

from axkit.config import NOT_FILES, Directive, flag
from axkit.config.options import has_option
from axkit.files.listing import display_name, render_xml, scan, sorted_entries, symlink_filter
from axkit.hooks import DECLINED, DONE
from axkit.threads import defer_to_pool

SORT_KEYS = ("name", "size", "date")


def href_of(name, is_dir):
    """The percent-encoded link to an entry (bytes exactly as on disk)."""
    return quote(os.fsencode(name)) + ("/" if is_dir else "")


def human_size(n):
    for unit in ("B", "K", "M", "G", "T"):
        if n < 1024 or unit == "T":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024


_APACHE_COLUMNS = {"N": "name", "S": "size", "M": "date"}


def listing_params(query):
    """sort/order from ``?sort=size&order=desc``, or Apache's ``?C=S;O=D``."""
    if not query:
        return {}
    params = dict(parse_qsl(query))
    if "sort" not in params and "C=" in query:
        apache = dict(part.partition("=")[::2] for part in query.replace("&", ";").split(";"))
        column = _APACHE_COLUMNS.get(apache.get("C", "").upper())
        if column:
            params["sort"] = column
            params["order"] = "desc" if apache.get("O", "").upper() == "D" else "asc"
    return params


def wants_xml(request):
    """?format=xml, or Accept ranking an XML type above text/html."""
    query = request.query
    if query:
        fmt = dict(parse_qsl(query)).get("format")
        if fmt is not None:
            return fmt.lower() == "xml"
    accept = request.headers.get("accept")
    if not accept:
        return False
    best_xml = best_html = 0.0
    for item in accept.split(","):
        name, _, params = item.partition(";")
        name = name.strip().lower()
        q = 1.0
        for param in params.split(";"):
            key, _, val = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(val)
                except ValueError:
                    q = 0.0
        if name in ("application/xml", "text/xml"):
            best_xml = max(best_xml, q)
        elif name in ("text/html", "application/xhtml+xml", "text/*", "*/*"):
            best_html = max(best_html, q)
    return best_xml > best_html


class ServeDir:
    """Answers a URL naming a directory with a listing (HTML or XML)."""

    # What a listing shows (axkit/files/listing.py); an attribute, so a test
    # can see which thread scans.
    _entries = staticmethod(scan)

    name = "serve_dir"
    directives = [
        Directive(
            "DirectoryListing",
            flag,
            scopes=NOT_FILES,
            default=False,
            doc="On: a directory without an index file is listed (same as "
            "Options +Indexes); Off: 403 unless Options Indexes is on.",
        ),
    ]

    def hook_response(self, request, conf):
        st = request.finfo
        if (
            request.filename is None
            or st is None
            or st.st_mode & 0o170000 != 0o040000  # (not S_ISDIR)
            or request.handler is not None  # claimed by another handler (SetHandler)
        ):
            return DECLINED
        if request.method not in ("GET", "HEAD"):
            request.response_headers.set("Allow", "GET, HEAD, OPTIONS")
            if request.method == "OPTIONS":
                request.send(204)  # what Allow says is allowed (RFC 9110 §9.3.7)
                return DONE
            return 405
        if not (conf.directory_listing or has_option(conf, "Indexes")):
            return 403
        show_dots = getattr(conf, "allow_dot_files", False)
        types = getattr(conf, "add_type", None) or {}
        default_type = getattr(conf, "default_type", "application/octet-stream")
        symlink_ok = symlink_filter(conf)
        if wants_xml(request):
            form = ("xml",)
        else:
            params = listing_params(request.query)
            sort = params.get("sort", "name").lower()
            if sort not in SORT_KEYS:
                sort = "name"
            form = ("html", sort, params.get("order", "asc").lower() == "desc")
        folder, url_path = request.filename, request.path

        def build():
            # Off the reactor thread: a folder of 50,000 files takes a second
            # to stat and render, which must not hold up other connections.
            try:
                entries = self._entries(folder, show_dots, types, default_type, symlink_ok)
            except PermissionError:
                return 403
            except FileNotFoundError:
                return 404
            if form[0] == "xml":
                return (
                    render_xml(url_path, entries).encode("utf-8"),
                    "application/xml; charset=utf-8",
                )
            return (
                self.render_html(url_path, entries, form[1], form[2]).encode("utf-8"),
                "text/html; charset=utf-8",
            )

        def send(result):
            if request.finished:
                return DONE
            if result.__class__ is int:
                return result
            body, content_type = result
            headers = request.response_headers
            vary = headers.get("Vary")
            headers.set("Vary", "Accept" if not vary else f"{vary}, Accept")
            # A listing changes with its folder: revalidate (unless Header said otherwise).
            headers.setdefault("Cache-Control", "no-cache")
            request.send(200, body, content_type)
            return DONE

        return defer_to_pool(request.reactor, None, build).addCallback(send)

    def render_html(self, url_path, entries, sort="name", descending=False):
        title = escape(f"Index of {url_path}")
        rows = []
        if url_path != "/":
            rows.append('<tr><td><a href="../">../</a></td><td></td><td></td></tr>')
        for e in sorted_entries(entries, sort, descending):
            href = href_of(e.name, e.is_dir)
            label = escape(display_name(e.name)) + ("/" if e.is_dir else "")
            when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(e.mtime))
            rows.append(
                f'<tr><td><a href="{escape(href)}">{label}</a></td>'
                f"<td>{'-' if e.is_dir else human_size(e.size)}</td>"
                f"<td>{when}</td></tr>"
            )

        def header(key, label):
            order = "desc" if key == sort and not descending else "asc"
            arrow = (" &#9660;" if descending else " &#9650;") if key == sort else ""
            return f'<th><a href="?sort={key}&amp;order={order}">{label}</a>{arrow}</th>'

        return (
            f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title>'
            f"</head>\n<body><h1>{title}</h1>\n<table>\n<tr>"
            + header("name", "Name")
            + header("size", "Size")
            + header("date", "Modified (UTC)")
            + "</tr>\n"
            + "\n".join(rows)
            + "\n</table>\n</body></html>\n"
        )
