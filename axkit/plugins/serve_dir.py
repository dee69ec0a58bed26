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

Entries whose name starts with a dot are left out unless AllowDotFiles is On;
so are, as in Apache's mod_autoindex, entries the server would refuse to
serve: symlinks leaving the root (unless AllowSymlinksOutsideRoot On), any
symlink where Options do not let it be followed, dangling symlinks,
anything that is neither a file nor a folder, and names that are not
UTF-8 (the engine answers 400 to a path that is not).
"""

import os
import stat as statmod
import time
from html import escape
from urllib.parse import parse_qsl, quote
from xml.sax.saxutils import quoteattr

from axkit.config import NOT_FILES, Directive, flag
from axkit.config.options import has_option
from axkit.files.confine import is_inside
from axkit.hooks import DECLINED, DONE
from axkit.plugins.uri_to_file import OWNER_MATCH, REFUSE, symlink_policy
from axkit.threads import defer_to_pool

SORT_KEYS = ("name", "size", "date")

# Characters XML 1.0 cannot hold at all (control characters but tab/LF/CR).
_NOT_XML = dict.fromkeys(i for i in range(32) if i not in (9, 10, 13))


def display_name(name):
    """A file name as text: undecodable bytes replaced, control characters as U+FFFD."""
    text = os.fsencode(name).decode("utf-8", "replace")
    return text.translate({i: "\ufffd" for i in _NOT_XML})


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


def xml_listing(conf, folder, url_path):
    """``folder``'s listing as serve_dir's XML ``<filelist>`` (UTF-8 bytes),
    with the entries serve_dir would show under ``conf``; it stats every
    entry, so call it off the reactor thread (the xslt plugin's AxHandleDirs
    styles it)."""
    entries = ServeDir._entries(
        folder,
        getattr(conf, "allow_dot_files", False),
        getattr(conf, "add_type", None) or {},
        getattr(conf, "default_type", "application/octet-stream"),
        ServeDir._symlink_filter(conf),
    )
    return ServeDir().render_xml(url_path, entries).encode("utf-8")


class Entry:
    __slots__ = ("name", "is_dir", "size", "mtime", "type")

    def __init__(self, name, is_dir, size, mtime, media_type):
        self.name = name
        self.is_dir = is_dir
        self.size = size
        self.mtime = mtime
        self.type = media_type


class ServeDir:
    """Answers a URL naming a directory with a listing (HTML or XML)."""

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
        symlink_ok = self._symlink_filter(conf)
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
                    self.render_xml(url_path, entries).encode("utf-8"),
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

    @staticmethod
    def _symlink_filter(conf):
        """A function telling whether a symlink entry may be listed: only
        those uri_to_file would follow (Options, owner, inside the root)."""
        policy = symlink_policy(conf)
        outside_ok = getattr(conf, "allow_symlinks_outside_root", False)
        real_root = os.path.realpath(conf.document_root).rstrip("/") + "/"

        def allowed(entry, st):
            if policy == REFUSE:
                return False
            if policy == OWNER_MATCH and entry.stat(follow_symlinks=False).st_uid != st.st_uid:
                return False
            if outside_ok:
                return True
            real = os.path.realpath(entry.path)
            return is_inside(real, real_root)

        return allowed

    @staticmethod
    def _entries(folder, show_dots, types, default_type, symlink_ok=None):
        entries = []
        with os.scandir(folder) as it:
            for entry in it:
                name = entry.name
                if name.startswith(".") and not show_dots:
                    continue
                if not name.isascii():
                    try:
                        name.encode("utf-8")
                    except UnicodeEncodeError:
                        continue  # not UTF-8 on disk: no URL reaches it (400)
                try:
                    st = entry.stat()
                    # As Apache's mod_autoindex: what would be refused is
                    # not listed (nothing of a file outside the root shows).
                    if symlink_ok is not None and entry.is_symlink() and not symlink_ok(entry, st):
                        continue
                except OSError:
                    continue  # a dangling symlink, or vanished meanwhile
                is_dir = statmod.S_ISDIR(st.st_mode)
                if not is_dir and not statmod.S_ISREG(st.st_mode):
                    continue  # FIFOs, sockets, devices: never served, not listed
                if is_dir:
                    media_type = "directory"
                else:
                    dot = name.rfind(".")
                    media_type = (
                        types.get(name[dot + 1 :].lower()) if dot > 0 else None
                    ) or default_type
                entries.append(Entry(name, is_dir, st.st_size, st.st_mtime, media_type))
        return entries

    @staticmethod
    def sorted_entries(entries, sort, descending):
        if sort == "size":
            key = lambda e: (e.size, e.name.lower())
        elif sort == "date":
            key = lambda e: (e.mtime, e.name.lower())
        else:
            key = lambda e: e.name.lower()
        ordered = sorted(entries, key=key, reverse=descending)
        # Folders first, as Apache's FoldersFirst does; stable within each group.
        return [e for e in ordered if e.is_dir] + [e for e in ordered if not e.is_dir]

    def render_html(self, url_path, entries, sort="name", descending=False):
        title = escape(f"Index of {url_path}")
        rows = []
        if url_path != "/":
            rows.append('<tr><td><a href="../">../</a></td><td></td><td></td></tr>')
        for e in self.sorted_entries(entries, sort, descending):
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

    def render_xml(self, url_path, entries):
        lines = ['<?xml version="1.0" encoding="utf-8"?>', f"<filelist path={quoteattr(url_path)}>"]
        for e in self.sorted_entries(entries, "name", False):
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e.mtime))
            if e.is_dir:
                lines.append(
                    f"  <directory name={quoteattr(display_name(e.name))} "
                    f'size="{e.size}" mtime="{when}" type="directory"/>'
                )
            else:
                lines.append(
                    f'  <file name={quoteattr(display_name(e.name))} size="{e.size}" '
                    f'mtime="{when}" type={quoteattr(e.type)}/>'
                )
        lines.append("</filelist>")
        return "\n".join(lines) + "\n"
