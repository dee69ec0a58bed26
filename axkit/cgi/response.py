"""The script's response head (RFC 3875 §6): parse it, decide what it is.

A script writes header lines, an empty line, then the body.  Lines may end
in CRLF or a bare LF (§6.3: the server must accept both).  ``Status``,
``Location`` and ``Content-Type`` are CGI fields; everything else is an
HTTP header passed on to the client, except hop-by-hop fields, which are
the server's business.
"""

import re

from axkit.http.headers import BAD_FIELD_VALUE, FIELD_NAME
from axkit.http.headers import HOP_BY_HOP as HEADERS_HOP_BY_HOP

# The biggest header block we read before calling the script broken.
MAX_HEAD = 65536

_TOKEN = FIELD_NAME
_STATUS = re.compile(r"([1-5][0-9][0-9])(?:[ \t]+([^\r\n\x00]*))?\Z")
_BAD_VALUE = BAD_FIELD_VALUE

# Fields the server owns (framing, connection management); a script's are dropped.
HOP_BY_HOP = HEADERS_HOP_BY_HOP | frozenset(("date", "server"))


# The largest Content-Length passed on (2**63 - 1: what a proxy in front can
# hold; RFC 9110 §8.6 asks recipients to guard against overflow).
_MAX_LENGTH = 2**63 - 1


class BadHead(Exception):
    """The script's header block is malformed (answered 502)."""


def find_head_end(buffer):
    """(end of the header block, start of the body) in ``buffer``, or None.

    Either a blank line (CRLF CRLF or LF LF, mixed endings allowed) ends it.
    """
    # A blank line is LF LF or LF CR LF (whatever ended the line before),
    # or the block's first line when it is empty.
    if buffer[:1] == b"\n":
        return 0, 1
    if buffer[:2] == b"\r\n":
        return 0, 2
    lf = buffer.find(b"\n\n")
    crlf = buffer.find(b"\n\r\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return crlf + 1, crlf + 3
    if lf >= 0:
        return lf + 1, lf + 2
    return None


class Head:
    """A parsed CGI response head (not changed once parse_head returns it:
    the same head may answer many requests, see parse_head)."""

    __slots__ = (
        "status",
        "reason",
        "headers",
        "location",
        "content_length",
        "has_status",
        "local_redirect",
    )

    def __init__(self):
        self.status = 200
        self.reason = None
        self.headers = []  # [(name, value)] to send, in order (then a tuple)
        self.location = None
        self.content_length = None
        self.has_status = False
        self.local_redirect = False


def _is_local_redirect(head):
    """§6.2.2: a Location that is a local path, with no Status of its own
    (or a 200): the server answers with that path instead."""
    return (
        head.location is not None
        and head.location.startswith("/")
        and not head.location.startswith("//")
        and (not head.has_status or head.status == 200)
    )


# Heads already parsed, by their bytes: a program sends the same head
# ("Content-Type: text/html") request after request.  Small heads only, a
# bounded number (emptied when full).
_HEADS = {}
_HEADS_MAX = 512
_HEAD_CACHED_BELOW = 1024


def parse_head(block):
    """Parse the header block (without its blank line); raises BadHead."""
    head = _HEADS.get(block)
    if head is None:
        head = _parse_head(block)
        if len(block) < _HEAD_CACHED_BELOW:
            if len(_HEADS) >= _HEADS_MAX:
                _HEADS.clear()
            _HEADS[block] = head
    return head


def _parse_head(block):
    head = Head()
    try:
        text = block.decode("latin-1")
    except Exception:  # pragma: no cover - latin-1 decodes anything
        raise BadHead("undecodable header block")
    lines = text.split("\n")
    fields = []
    for line in lines:
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            continue
        if line[0] in " \t":
            # obs-fold: a continuation of the previous field's value.
            if not fields:
                raise BadHead(f"header block starts with a continuation line: {line!r}")
            name, value = fields[-1]
            fields[-1] = (name, value + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.match(name):
            raise BadHead(f"malformed header line {_show(line)}")
        value = value.strip(" \t")
        if _BAD_VALUE.search(value):
            raise BadHead(f"control character in header {name!r}")
        fields.append((name, value))
    for name, value in fields:
        lname = name.lower()
        if lname == "status":
            if head.has_status:
                raise BadHead("more than one Status header")
            m = _STATUS.match(value)
            if m is None:
                raise BadHead(f"invalid Status {_show(value)}")
            head.status = int(m.group(1))
            if head.status < 200:
                raise BadHead(f"invalid Status {_show(value)} (1xx is not a final response)")
            head.reason = m.group(2) or None
            head.has_status = True
        elif lname == "location":
            if head.location is not None:
                raise BadHead("more than one Location header")
            if not value:
                raise BadHead("empty Location header")
            head.location = value
            head.headers.append(("Location", value))
        elif lname == "content-length":
            # ASCII digits only: str.isdigit() also takes '\xb2' ("²"), which
            # int() refuses.
            if not (value.isdigit() and value.isascii()) or (
                head.content_length is not None and int(value) != head.content_length
            ):
                raise BadHead(f"invalid Content-Length {_show(value)}")
            head.content_length = int(value)
            if head.content_length > _MAX_LENGTH:
                raise BadHead(f"Content-Length out of range {_show(value)}")
        elif lname in HOP_BY_HOP:
            continue
        elif lname == "content-type":
            # One field (RFC 9110 §8.3 has no list form): the last one counts,
            # as Apache's ap_scan_script_header does.
            head.headers = [(k, v) for k, v in head.headers if k.lower() != lname]
            head.headers.append((name, value))
        else:
            head.headers.append((name, value))
    head.local_redirect = _is_local_redirect(head)
    if head.location is not None and not head.has_status and not head.local_redirect:
        # §6.2.3: a client redirect; 302 unless the script said otherwise.
        head.status = 302
    head.headers = tuple(head.headers)
    return head


def nph_status(data):
    """The status code on an nph- script's status line, or None if absent."""
    m = re.match(rb"HTTP/\d\.\d ([1-5]\d\d)", data)
    return int(m.group(1)) if m else None


def _show(text, limit=80):
    return repr(text if len(text) <= limit else text[:limit] + "...")
