"""lxml, secure by default: parsers that resolve no external entity and
touch no network, XSLT access control that forbids writes and network
reads, and a resolver that records every file a stylesheet pulls in
(xsl:import, xsl:include, document()) and confines document() reads.

The recorded files are the stylesheet's dependency list (AxKit 1 kept
one too): a compiled stylesheet or a cached output is used again only
while every file in it has the same stat.
"""

import os
import threading
from urllib.parse import unquote, urlsplit

from lxml import etree

from axkit.files.confine import is_inside

ACCESS = etree.XSLTAccessControl(
    read_file=True,
    write_file=False,
    create_dir=False,
    read_network=False,
    write_network=False,
)


class Denied(Exception):
    """A stylesheet or document() asked for something it may not read."""


def stat_key(st):
    """What makes two stats of a file the same version of it."""
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)


def file_key(path):
    """The stat key of ``path`` now, or None if it cannot be stat'ed."""
    try:
        return stat_key(os.stat(path))
    except OSError:
        return None


def safe_parser(resolver=None):
    """An XML parser that expands no entity, loads no DTD, uses no network."""
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_blank_text=False,
    )
    if resolver is not None:
        parser.resolvers.add(resolver)
    return parser


_local = threading.local()


def document_parser():
    """This thread's safe_parser(), made once: a parser is reused for one
    parse after another on its thread (never shared between threads)."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = safe_parser()
    return parser


def stylesheet_parser(resolver):
    """The parser for stylesheets: they are the admin's, so their DTD and
    entities are read (DocBook's use both), from local files only -- the
    resolver sees and records each one; no network."""
    parser = etree.XMLParser(resolve_entities=True, load_dtd=True, no_network=True)
    parser.resolvers.add(resolver)
    return parser


def url_to_path(url):
    """A local file name for ``url`` (a path or a file: URL); None for any
    other scheme (network reads are refused)."""
    if url.startswith("/"):
        return os.path.normpath(url)
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.netloc in ("", "localhost"):
        return os.path.normpath(unquote(parts.path))
    return None


def inside(path, roots):
    for root in roots:
        if is_inside(path, root):
            return True
    return False


class RecordingResolver(etree.Resolver):
    """Loads local files only, recording each one's stat key.

    While compiling (``transforming`` False) the stylesheet's own imports
    and includes may come from anywhere local (the admin chose the
    stylesheet); while transforming, document() may read only under
    ``roots`` (DocumentRoot and the stylesheets' folders)."""

    def __init__(self):
        super().__init__()
        self.record = {}
        self.transforming = False
        self.roots = ()

    def resolve(self, url, pubid, context):
        path = url_to_path(url)
        if path is None:
            raise Denied(f"network access refused: {url}")
        if self.transforming and not inside(os.path.realpath(path), self.roots):
            raise Denied(f"document() outside DocumentRoot and the stylesheets' folders: {path}")
        if path not in self.record:
            self.record[path] = file_key(path)  # stat first: never newer than the bytes
        return self.resolve_filename(path, context)


def still_valid(deps, known=None, known_key=None):
    """True while every file in ``deps`` has the stat key recorded.  The
    file ``known`` has ``known_key`` now (a stat this request made already,
    the document's): it is not stat'ed again."""
    for dep, key in deps.items():
        if (known_key if dep == known else file_key(dep)) != key:
            return False
    return True
