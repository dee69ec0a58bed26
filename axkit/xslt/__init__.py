"""The XML pipeline behind ``Plugin xslt``: stylesheets compiled and
cached per thread with their dependencies, transformed output cached and
validated by the stat of every input, and lxml set up safely.

A plugin hands XML to the pipeline with :func:`hand_over` (or by putting
bytes or an lxml tree in ``request.notes[XML_NOTE]``) in any phase up to
and including ``xmlresponse``; the scope's processors (or the document's
``<?xml-stylesheet?>``) then style it.  See docs/xml.md.
"""

XML_NOTE = "axkit.xml"  # bytes, an lxml tree/element, or a callable making one
XML_KEY_NOTE = "axkit.xml.key"  # what names this XML's content (cache key)
XML_FILES_NOTE = "axkit.xml.files"  # files the XML is made from


def hand_over(request, xml, key=None, files=()):
    """Give ``xml`` to the xslt plugin of the request's scope: it is styled
    and sent as the response.

    ``xml``: bytes, an lxml ElementTree or Element, or a function of no
    arguments returning one (called on a transformation thread, and only
    when the output is not cached).  ``key``: a hashable naming this
    content -- a different key whenever the XML would differ (a row's
    version, a digest of the inputs); with it the styled output is cached
    under (key, chain, style, parameters), with a strong ETag, and a
    request answered from it does not build the XML.  ``files``: paths the
    XML is made from; the output is used only while their stat is the
    one recorded before the XML was built (as for the stylesheets)."""
    notes = request.notes
    notes[XML_NOTE] = xml
    if key is not None:
        notes[XML_KEY_NOTE] = key
    if files:
        notes[XML_FILES_NOTE] = tuple(files)


def is_xml_type(media_type):
    """text/xml, application/xml or any */*+xml (parameters ignored) --
    except stylesheets themselves (application/xslt+xml), sent as they are."""
    if not media_type:
        return False
    base = media_type.split(";", 1)[0].strip().lower()
    if base == "application/xslt+xml":
        return False
    return base in ("text/xml", "application/xml") or base.endswith("+xml")
