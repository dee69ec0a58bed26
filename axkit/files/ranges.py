"""Byte ranges (RFC 9110 §14): parsing, the abuse policy, multipart framing.

``plan(value, size)`` answers what to send for a ``Range`` field:

* ``None`` -- ignore the field and send the whole representation (200):
  not a ``bytes=`` range, malformed, or abusive (more than MAX_RANGES
  ranges, ranges that overlap, or ranges adding up to more than the file);
* ``UNSATISFIABLE`` -- no range overlaps the file (416);
* a list of ``(first, last)`` inclusive byte positions (206).

Answering abusive sets with the whole file is what RFC 9110 §14.3 allows
("MAY ignore ... or reject") and what keeps a request from amplifying the
response: a client can never get more bytes than the file holds.
"""

import os

MAX_RANGES = 64

UNSATISFIABLE = "unsatisfiable"


def _digits(text):
    """1*DIGIT: ASCII digits only (str.isdigit() also takes '\xb2' and the like)."""
    return text.isdigit() and text.isascii()


def plan(value, size, max_ranges=MAX_RANGES):
    unit, sep, specs = value.partition("=")
    if not sep or unit.lower() != "bytes":
        return None
    ranges = []
    pieces = specs.split(",")
    if len(pieces) > max_ranges:
        return None
    seen_any = False
    for spec in pieces:
        spec = spec.strip(" \t")
        if not spec:
            continue  # empty list elements are allowed (RFC 9110 §5.6.1)
        first, dash, last = spec.partition("-")
        if not dash:
            return None
        if first:
            if not _digits(first) or (last and not _digits(last)):
                return None
            start = int(first)
            end = int(last) if last else size - 1
            if last and end < start:
                return None  # invalid range-spec: the whole field is ignored
            seen_any = True
            if start >= size:
                continue  # unsatisfiable on its own
            ranges.append((start, min(end, size - 1)))
        else:
            if not _digits(last):
                return None
            suffix = int(last)
            seen_any = True
            if suffix == 0 or size == 0:
                continue
            ranges.append((max(0, size - suffix), size - 1))
    if not seen_any:
        return None
    if not ranges:
        return UNSATISFIABLE
    if len(ranges) > 1:
        ordered = sorted(ranges)
        total = 0
        previous_end = -1
        for start, end in ordered:
            if start <= previous_end:
                return None  # overlapping ranges: send the file once instead
            previous_end = end
            total += end - start + 1
        if total > size:
            return None
    return ranges


def content_range(first, last, size):
    return f"bytes {first}-{last}/{size}"


def new_boundary():
    return os.urandom(12).hex()


def multipart_segments(ranges, size, content_type, boundary):
    """The body of a multipart/byteranges response as segments: bytes for the
    framing, ``(offset, length)`` for file data.  Returns (segments, length)."""
    segments = []
    length = 0
    type_line = f"Content-Type: {content_type}\r\n" if content_type else ""
    for first, last in ranges:
        head = (
            f"\r\n--{boundary}\r\n{type_line}Content-Range: bytes {first}-{last}/{size}\r\n\r\n"
        ).encode("latin-1")
        segments.append(head)
        segments.append((first, last - first + 1))
        length += len(head) + last - first + 1
    tail = f"\r\n--{boundary}--\r\n".encode("latin-1")
    segments.append(tail)
    length += len(tail)
    return segments, length
