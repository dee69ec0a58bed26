"""Compiled stylesheets, cached and never stale.

Each compiled stylesheet remembers the stat key of every file it was
built from (itself, and each xsl:import / xsl:include at any depth, as
the recording resolver saw them) and is recompiled as soon as any of them
changes.  lxml recompiles a stylesheet used from another thread than the
one that compiled it, so each worker thread keeps its own copies.
"""

import os
import threading
from urllib.parse import urljoin

from lxml import etree

from .safety import (
    ACCESS,
    RecordingResolver,
    stat_key,
    still_valid,
    stylesheet_parser,
    url_to_path,
)

XSL_NS = "http://www.w3.org/1999/XSL/Transform"
DEFAULT_TYPES = {"xml": "text/xml", "html": "text/html", "text": "text/plain"}


class Compiled:
    """One compiled stylesheet of one thread, with its dependencies."""

    __slots__ = ("path", "xslt", "resolver", "deps", "folders", "media_type", "method", "encoding")

    def __init__(self, path, xslt, resolver, deps, media_type, method, encoding=None):
        self.path = path
        self.xslt = xslt
        self.resolver = resolver
        self.deps = deps  # {file: stat key} of the stylesheet and what it pulled in
        self.folders = tuple(sorted({os.path.dirname(os.path.realpath(p)) for p in deps}))
        self.media_type = media_type
        self.method = method
        self.encoding = encoding  # xsl:output encoding (the text method's charset)

    def fresh(self):
        return still_valid(self.deps)

    def media_type_of(self, result):
        """The Content-Type of ``result`` (a result tree of this stylesheet):
        xsl:output's media-type, else its method's (XSLT 1.0 §16: with no
        method, html when the result's root element is an <html> in no
        namespace), with its charset for text and XML types."""
        method = self.method
        if method is None:
            root = result.getroot()
            method = "html" if root is not None and root.tag in ("html", "HTML") else "xml"
        media_type = self.media_type or DEFAULT_TYPES.get(method, "text/xml")
        encoding = self.encoding
        if method != "text" and result.getroot() is not None:
            encoding = result.docinfo.encoding  # (a result of text only has no docinfo)
        if media_type.startswith("text/") or media_type.endswith("xml"):
            return f"{media_type}; charset={encoding or 'UTF-8'}"
        return media_type


_OUTPUT = f"{{{XSL_NS}}}output"
_IMPORT = f"{{{XSL_NS}}}import"
_INCLUDE = f"{{{XSL_NS}}}include"
_ATTRIBUTES = ("method", "media-type", "encoding")


def output_of(tree, parser=None):
    """(method, media-type, encoding) of the stylesheet's effective
    xsl:output (XSLT 1.0 §16): its own xsl:output elements and those of
    what it includes (the last one wins), then, for what they leave unset,
    its imports from the last to the first, each with its own imports --
    the import precedence libxslt serialises with.  A value missing
    everywhere is None."""
    found = _effective(tree, parser or stylesheet_parser(RecordingResolver()), 0)
    return found.get("method"), found.get("media-type"), found.get("encoding")


def _effective(tree, parser, depth):
    own, imports = {}, []
    _own(tree, own, imports, parser, depth)
    for imported in reversed(imports):
        for name, value in _effective(imported, parser, depth + 1).items():
            own.setdefault(name, value)
    return own


def _own(tree, own, imports, parser, depth):
    """The xsl:output values of ``tree`` and its includes, in document
    order; its imports' (and its includes' imports') trees into ``imports``."""
    root = tree.getroot()
    if depth > 64 or root is None or root.tag not in _STYLESHEET_TAGS:
        return  # a loop libxslt would refuse, or a literal result element
    for el in root.iterchildren(_OUTPUT, _IMPORT, _INCLUDE):
        if el.tag == _OUTPUT:
            for name in _ATTRIBUTES:
                value = el.get(name)
                if value:
                    own[name] = value
            continue
        other = _load(tree, el.get("href"), parser)
        if other is None:
            continue
        if el.tag == _IMPORT:
            imports.append(other)
        else:
            _own(other, own, imports, parser, depth + 1)


def _load(tree, href, parser):
    """The stylesheet ``href`` names relative to ``tree`` (a local file, as
    libxslt loaded it when compiling), or None."""
    if not href:
        return None
    path = url_to_path(urljoin(tree.docinfo.URL or "", href))
    if path is None:
        return None
    try:
        return etree.parse(path, parser)
    except (OSError, etree.XMLSyntaxError):
        return None


_STYLESHEET_TAGS = (f"{{{XSL_NS}}}stylesheet", f"{{{XSL_NS}}}transform")


def compile_stylesheet(path):
    """Parse and compile ``path``; raises OSError, XMLSyntaxError or
    XSLTParseError (with libxslt's file and line in its error_log)."""
    resolver = RecordingResolver()
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        data = f.read()
    tree = etree.fromstring(data, stylesheet_parser(resolver), base_url=path).getroottree()
    xslt = etree.XSLT(tree, access_control=ACCESS)
    deps = {path: stat_key(st)}
    for dep, key in resolver.record.items():
        deps.setdefault(dep, key)
    resolver.record = {}
    method, media_type, encoding = output_of(tree)
    # (No method: XSLT 1.0 §16's default, html when the result's root is
    # <html>, else xml -- known per result; see media_type_of.)
    return Compiled(path, xslt, resolver, deps, media_type, method, encoding)


class Stylesheets:
    """Compiled stylesheets by file name, one set per thread."""

    def __init__(self):
        self._local = threading.local()
        self.compiles = 0  # how many compilations (for tests and stats)

    def get(self, path):
        cache = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = {}
        compiled = cache.get(path)
        if compiled is None or not compiled.fresh():
            compiled = compile_stylesheet(path)
            self.compiles += 1
            if len(cache) >= 256:
                cache.clear()
            cache[path] = compiled
        return compiled
