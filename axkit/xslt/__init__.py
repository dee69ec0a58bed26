"""The XML pipeline behind ``Plugin xslt``: stylesheets compiled and
cached per thread with their dependencies, transformed output cached and
validated by the stat of every input, and lxml set up safely.

A plugin hands XML to the pipeline with :func:`hand_over` (or by putting
bytes or an lxml tree in ``request.notes[XML_NOTE]``) in any phase up to
and including ``xmlresponse``; the scope's processors (or the document's
``<?xml-stylesheet?>``) then style it.  See docs/xml.md.
"""

XML_NOTE = "axkit.xml"  # bytes, or an lxml tree/element, to be styled


def hand_over(request, xml):
    """Give ``xml`` (bytes, or an lxml ElementTree or Element) to the xslt
    plugin of the request's scope: it is styled and sent as the response."""
    request.notes[XML_NOTE] = xml


def is_xml_type(media_type):
    """text/xml, application/xml or any */*+xml (parameters ignored) --
    except stylesheets themselves (application/xslt+xml), sent as they are."""
    if not media_type:
        return False
    base = media_type.split(";", 1)[0].strip().lower()
    if base == "application/xslt+xml":
        return False
    return base in ("text/xml", "application/xml") or base.endswith("+xml")
