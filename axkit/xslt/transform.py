"""One request's transformation, run on a worker thread.

The source (a file, or XML a plugin handed over) is parsed safely, the
chain of stylesheets is chosen (the scope's processors, or the document's
``<?xml-stylesheet?>`` instructions), each stage is applied with the
request's string parameters, and the result is serialised as its last
stylesheet's ``xsl:output`` says.  Every file read is recorded with the
stat key it had before it was read: the output is valid while they all
still have it.
"""

import os
import re
import time

from lxml import etree

from . import debug
from .output import make_output
from .safety import Denied, document_parser, file_key, stat_key, url_to_path

_PSEUDO_ATTR = re.compile(r"""([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


class TransformError(Exception):
    """A document or stylesheet error: ``where`` is ``file:line`` as
    libxml2/libxslt report it."""

    def __init__(self, where, message):
        Exception.__init__(self, f"{where}: {message}")
        self.where = where
        self.message = message


class Job:
    """What a worker thread needs for one transformation."""

    __slots__ = (
        "source",
        "filename",
        "chain",
        "params",
        "document_root",
        "uri",
        "trace_dir",
        "error_stylesheet",
        "real_root",
        "key",
        "files",
        "data",
    )

    def __init__(self, source, filename, chain, params, document_root, uri="", trace_dir=None):
        self.source = source  # None (read filename), bytes, an lxml tree, or a callable
        self.filename = filename
        self.chain = chain  # stylesheet file names, or None: the document's PIs
        self.params = params  # {name: XSLT.strparam(value)}
        self.document_root = document_root
        self.uri = uri  # the request's path (for traces and error pages)
        self.trace_dir = trace_dir  # AxTraceIntermediate: each stage's output goes there
        self.error_stylesheet = None  # ErrorStylesheet: styles an error page
        self.real_root = None  # DocumentRoot's real path (document() stays under it)
        self.key = None  # the output cache's key (the ETag is derived from it)
        self.files = ()  # files handed-over XML is made from (its dependencies)
        self.data = None  # (stat key, bytes) of ``filename`` known on the reactor: not read


class Result:
    __slots__ = (
        "body",
        "media_type",
        "deps",
        "stages",
        "styled",
        "status",
        "error",
        "output",
        "read",
    )

    def __init__(self, body, media_type, deps, stages, styled=True):
        self.body = body
        self.media_type = media_type  # with its charset, ready for Content-Type
        self.deps = deps  # {file: stat key} of every input
        self.stages = stages  # [(stylesheet, seconds)]
        self.styled = styled  # False: no stylesheet applied (no PI found)
        self.status = 200  # 500: an error page made by ErrorStylesheet
        self.error = None  # ... and the error it shows (to be logged)
        self.output = None  # the Output entry of a file's styled page (see work)
        self.read = None  # (stat key, bytes) of the file read (for the source cache)


def stylesheet_pis(tree, base, document_root):
    """The hrefs of the document's text/xsl xml-stylesheet instructions,
    as file names (AxKit 1: a /href is under DocumentRoot)."""
    hrefs = []
    node = tree.getroot()
    if node is None:
        return hrefs
    for pi in node.itersiblings(preceding=True):
        if not isinstance(pi, etree._ProcessingInstruction) or pi.target != "xml-stylesheet":
            continue
        attrs = {
            m[1]: m[2] if m[2] is not None else m[3] for m in _PSEUDO_ATTR.finditer(pi.text or "")
        }
        if attrs.get("type", "").lower() not in ("text/xsl", "application/xslt+xml", "text/xml"):
            continue
        if attrs.get("alternate", "no").lower() == "yes" or not attrs.get("href"):
            continue
        href = attrs["href"]
        if href.startswith("/"):
            hrefs.append(os.path.normpath(document_root + href))
        else:
            path = url_to_path(href) if ":" in href.split("/", 1)[0] else None
            hrefs.append(path or os.path.normpath(os.path.join(os.path.dirname(base), href)))
    hrefs.reverse()  # itersiblings(preceding) walks backwards
    return hrefs


def _located(error):
    """A TransformError saying where libxml2/libxslt found the problem: the
    first entry of the error log that names a file and line, and the
    messages of all its entries.  A parse error carries its own position
    (its error_log may hold older entries of the thread's global log)."""
    if isinstance(error, etree.XMLSyntaxError) and error.filename:
        return TransformError(f"{error.filename}:{error.lineno}", error.msg)
    entries = list(getattr(error, "error_log", None) or ())
    if entries:
        placed = [e for e in entries if e.filename and not e.filename.startswith("<") and e.line]
        first = placed[0] if placed else entries[0]
        messages = []
        for e in entries:
            if e.message not in messages:
                messages.append(e.message)
        return TransformError(f"{first.filename or '?'}:{first.line}", "; ".join(messages))
    filename = getattr(error, "filename", None) or "?"
    line = getattr(error, "lineno", None) or 0
    return TransformError(f"{filename}:{line}", str(error))


def read_file(filename):
    """(stat key, bytes) of ``filename``: the stat taken before the read
    (the bytes are never older than the key says), in four system calls."""
    fd = os.open(filename, os.O_RDONLY | os.O_CLOEXEC)
    try:
        key = stat_key(os.fstat(fd))
        size = key[2]
        data = os.read(fd, size + 1)  # (short only at the end of a regular file)
        if len(data) > size:  # it grew meanwhile: the rest too
            chunks = [data]
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
            data = b"".join(chunks)
    finally:
        os.close(fd)
    return key, data


def parse_source(source, filename, deps, files=(), read=None):
    """Parse a file name or handed-over bytes/tree into an ElementTree;
    ``files`` (what handed-over XML is made from) are stat'ed first.  A
    file is read unless ``read`` is its (stat key, bytes) already."""
    for name in files:
        deps[name] = file_key(name)  # before the XML is built: never newer
    if hasattr(source, "getroottree"):
        return source.getroottree()
    if hasattr(source, "getroot"):
        return source
    if callable(source):
        source = source()  # built on this worker thread (a directory listing)
    try:
        if source is None:
            if read is None:
                read = read_file(filename)
            deps[filename] = read[0]
            source = read[1]
        tree = etree.fromstring(source, document_parser(), base_url=filename).getroottree()
    except etree.XMLSyntaxError as e:
        raise _located(e) from None
    refuse_external_entities(tree, filename)
    return tree


def refuse_external_entities(tree, filename):
    """An entity declared with a SYSTEM or PUBLIC id (XXE): refused, even
    though the parser would not have expanded it."""
    dtd = tree.docinfo.internalDTD
    if dtd is None:
        return
    for entity in dtd.iterentities():
        if entity.system_url is not None:
            raise TransformError(
                f"{filename or '(handed over)'}:0",
                f"external entity {entity.name!r} refused ({entity.system_url})",
            )


def work(job, stylesheets):
    """What a worker thread does for a request: ``run``, and for a file's
    styled page its Output entry too (the ETag's digest and the response's
    fields are made here, not on the reactor thread)."""
    result = run(job, stylesheets)
    if result.styled and result.status == 200:
        if job.filename is not None:
            output = result.output = make_output(job.key or (job.filename,), result)
        elif job.key is not None:  # handed over with a key: made now
            output = result.output = make_output(job.key, result, made_now=True)
        else:
            return result
        output.identity_fields(output.media_type)  # (made here too, not on the reactor)
    return result


def run(job, stylesheets):
    """Transform ``job``: a Result, or TransformError / OSError for the
    plugin to log and answer 500 (with ErrorStylesheet: a Result holding
    the styled error page, status 500)."""
    try:
        return transform(job, stylesheets)
    except (TransformError, OSError) as e:
        if job.error_stylesheet is None:
            raise
        return debug.error_page(job, e, stylesheets, transform)


def transform(job, stylesheets):
    deps = {}
    read = job.data
    fresh = None  # the file, read now (the plugin keeps it for the next request)
    if read is None and job.source is None and job.filename is not None:
        read = fresh = read_file(job.filename)
    tree = parse_source(job.source, job.filename, deps, job.files, read)
    if job.trace_dir:
        debug.trace(job, 0, tree)
    chain = job.chain
    if chain is None:
        chain = stylesheet_pis(tree, job.filename or job.document_root + "/", job.document_root)
    if not chain:
        body = None
        if job.source is not None:  # handed over: sent as it is
            body = etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
        result = Result(body, "application/xml", deps, [], styled=False)
        result.read = fresh
        return result
    stages = []
    compiled = None
    roots = (job.real_root or os.path.realpath(job.document_root),)
    for path in chain:
        started = time.perf_counter()
        try:
            compiled = stylesheets.get(path)
        except (etree.XSLTParseError, etree.XMLSyntaxError) as e:
            raise _located(e) from None
        deps.update(compiled.deps)
        resolver = compiled.resolver
        resolver.record = {}
        resolver.transforming = True
        resolver.roots = roots + compiled.folders
        try:
            tree = compiled.xslt(tree, **job.params)
        except Denied as e:
            raise TransformError(path + ":0", str(e)) from None
        except etree.XSLTApplyError as e:
            raise _located(e) from None
        finally:
            resolver.transforming = False
            for dep, key in resolver.record.items():
                deps.setdefault(dep, key)
            resolver.record = {}
        stages.append((path, time.perf_counter() - started))
        if job.trace_dir:
            debug.trace(job, len(stages), tree)
    result = Result(bytes(tree), compiled.media_type_of(tree), deps, stages)
    result.read = fresh
    return result
