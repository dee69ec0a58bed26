"""A folder's entries as a listing shows them, and the listing's XML form
(``<filelist>``, AxKit's dir_to_xml): what serve_dir renders as HTML or XML
and what the xslt plugin's AxHandleDirs styles.

Entries whose name starts with a dot are left out unless AllowDotFiles is On;
so are, as in Apache's mod_autoindex, entries the server would refuse to
serve: symlinks leaving the root (unless AllowSymlinksOutsideRoot On), any
symlink where Options do not let it be followed, dangling symlinks,
anything that is neither a file nor a folder, and names that are not
UTF-8 (the engine answers 400 to a path that is not).  Scanning stats every
entry: call it off the reactor thread.
"""

import os
import stat as statmod
import time
from xml.sax.saxutils import quoteattr

from axkit.files.confine import is_inside
from axkit.files.symlinks import OWNER_MATCH, REFUSE, symlink_policy

# Characters XML 1.0 cannot hold at all (control characters but tab/LF/CR).
_NOT_XML = dict.fromkeys(i for i in range(32) if i not in (9, 10, 13))


def display_name(name):
    """A file name as text: undecodable bytes replaced, control characters as U+FFFD."""
    text = os.fsencode(name).decode("utf-8", "replace")
    return text.translate({i: "\ufffd" for i in _NOT_XML})


class Entry:
    __slots__ = ("name", "is_dir", "size", "mtime", "type")

    def __init__(self, name, is_dir, size, mtime, media_type):
        self.name = name
        self.is_dir = is_dir
        self.size = size
        self.mtime = mtime
        self.type = media_type


def symlink_filter(conf):
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


def scan(folder, show_dots, types, default_type, symlink_ok=None):
    """The entries of ``folder`` a listing shows (unsorted)."""
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
                found = types.get(name[dot + 1 :].lower()) if dot > 0 else None
                media_type = found or default_type
            entries.append(Entry(name, is_dir, st.st_size, st.st_mtime, media_type))
    return entries


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


def render_xml(url_path, entries):
    """The ``<filelist>`` document (text) of ``entries`` at ``url_path``."""
    lines = ['<?xml version="1.0" encoding="utf-8"?>', f"<filelist path={quoteattr(url_path)}>"]
    for e in sorted_entries(entries, "name", False):
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


def xml_listing(conf, folder, url_path):
    """``folder``'s listing as the XML ``<filelist>`` (UTF-8 bytes), with the
    entries serve_dir would show under ``conf``."""
    entries = scan(
        folder,
        getattr(conf, "allow_dot_files", False),
        getattr(conf, "add_type", None) or {},
        getattr(conf, "default_type", "application/octet-stream"),
        symlink_filter(conf),
    )
    return render_xml(url_path, entries).encode("utf-8")
