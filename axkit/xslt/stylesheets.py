"""Compiled stylesheets, cached and never stale.

Each compiled stylesheet remembers the stat key of every file it was
built from (itself, and each xsl:import / xsl:include at any depth, as
the recording resolver saw them) and is recompiled as soon as any of them
changes.  lxml recompiles a stylesheet used from another thread than the
one that compiled it, so each worker thread keeps its own copies.
"""

import os
import threading

from lxml import etree

from .safety import ACCESS, RecordingResolver, stat_key, still_valid, stylesheet_parser

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


def output_of(tree):
    """(method, media-type, encoding) from the stylesheet's xsl:output."""
    method = media_type = encoding = None
    for el in tree.getroot().iterchildren(f"{{{XSL_NS}}}output"):
        method = el.get("method") or method
        media_type = el.get("media-type") or media_type
        encoding = el.get("encoding") or encoding
    return method, media_type, encoding


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
    if method is None:
        # XSLT 1.0 §16: html when the result's root element is <html>; the
        # stylesheet's literal root usually says so.
        method = "xml"
    return Compiled(
        path, xslt, resolver, deps, media_type or DEFAULT_TYPES.get(method), method, encoding
    )


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
