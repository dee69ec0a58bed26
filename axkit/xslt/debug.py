"""Seeing inside the pipeline: AxTraceIntermediate (each stage's output
written to a folder, AxKit 1's feature) and ErrorStylesheet (an error
shown as an XML document styled by a stylesheet, AxKit 2's error_xml)."""

import os
from urllib.parse import quote

from lxml import etree


def trace(job, stage, tree):
    """Write ``tree``, the output of ``stage`` (0: the source document), to
    ``job.trace_dir`` as the request path, escaped, plus ``.N``."""
    name = quote(job.uri or job.filename or "document", safe="") + f".{stage}"
    try:
        data = bytes(tree) if stage else etree.tostring(tree, xml_declaration=True)
        with open(os.path.join(job.trace_dir, name), "wb") as f:
            f.write(data)
    except OSError:
        pass  # a debugging aid never fails the request


def error_document(job, error):
    """<error><uri/><file/><line/><message/></error> for ``error``."""
    where = getattr(error, "where", None) or f"{getattr(error, 'filename', None) or '?'}:0"
    file, _, line = where.rpartition(":")
    root = etree.Element("error")
    for tag, text in (
        ("uri", job.uri),
        ("file", file),
        ("line", line),
        ("message", getattr(error, "message", None) or str(error)),
    ):
        etree.SubElement(root, tag).text = text
    return root.getroottree()


def error_page(job, error, stylesheets, transform):
    """The Result of styling ``error`` with ``job.error_stylesheet`` (status
    500); if that fails too, the original error is raised."""
    from .transform import Job

    page = Job(error_document(job, error), None, (job.error_stylesheet,), {}, job.document_root)
    page.uri = job.uri
    try:
        result = transform(page, stylesheets)
    except Exception:
        raise error from None
    result.status = 500
    result.error = error
    return result
