"""Serialising a response head: a pure function of the response's state.

``head_bytes`` returns the status line, the fields (each checked once:
a name that is not a token, or a value with CR, LF or NUL, raises
HeaderInjection -- never sent), Date and Server, and the framing the
engine decides (Content-Length, chunked, Connection).  Lines and whole
blocks of fields are cached: the same fields (Content-Type, a file's ETag
...) recur response after response.
"""

import re
from time import time as _time
from typing import Any

from axkit import SERVER_SOFTWARE

from .dates import http_date
from .status import STATUS_LINES, status_line

SERVER_HEADER = b"Server: " + SERVER_SOFTWARE.encode("ascii") + b"\r\n"

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
# Headers the engine writes from the response's own state, never a plugin's.
_FRAMING = frozenset(("content-length", "transfer-encoding", "connection"))


class HeaderInjection(Exception):
    """A plugin set a header name or value that would break framing."""


# Encoded and checked header lines, by (name, value): the same few lines
# (Content-Type, Cache-Control, a file's ETag...) recur response after response.
_LINES: dict[tuple[str, object], bytes] = {}
_LINES_MAX = 4096
# The lines of a whole set of fields, by the fields (a tuple of pairs).
_BLOCKS: dict[Any, bytes] = {}
# Content-Length lines by length (the same files are sent again and again).
_LENGTHS: dict[int, bytes] = {}
# The Date and Server lines, and the time (a whole second) they change.
_DATE_LINE: list = [0, b""]


def _header_line(item):
    """``Name: value\r\n`` for a response header, checked once: a name
    that is not a token or a value with CR, LF or NUL raises
    HeaderInjection (never sent); framing headers give b"" (the engine
    writes those from the response's own state)."""
    name, value = item
    value = str(value)
    if _BAD_VALUE.search(value) is not None or _HEADER_NAME.match(name) is None:
        raise HeaderInjection(f"refusing to send header {name!r}: {value!r}")
    if name.lower() in _FRAMING:
        line = b""
    else:
        line = f"{name}: {value}\r\n".encode("latin-1")
    try:
        if len(_LINES) >= _LINES_MAX:
            _LINES.clear()
        _LINES[item] = line
    except TypeError:
        pass  # an unhashable value: not cached
    return line


def _header_block(items, key):
    """The lines of all ``items`` (each checked and encoded once, see
    _header_line), kept under ``key`` when it is not None: the same fields
    (a file's ETag, Last-Modified, type...) recur response after response."""
    lines = []
    cache = _LINES
    for item in items:
        try:
            line = cache.get(item)
        except TypeError:  # an unhashable value
            line = None
        if line is None:
            line = _header_line(item)
        lines.append(line)
    block = b"".join(lines)
    if key is not None:
        if len(_BLOCKS) >= _LINES_MAX:
            _BLOCKS.clear()
        _BLOCKS[key] = block
    return block


def head_bytes(status, reason_text, items, length, head_only, version, keep_alive):
    """The head of a response: ``(bytes, chunked, keep_alive)``.

    ``items``: the response fields (name, value); ``length``: the body's
    length or None (then chunked on HTTP/1.1, close-delimited on 1.0, and
    for a HEAD no framing at all); ``keep_alive``: whether the connection
    may stay open, as far as the caller knows (close-delimiting turns it
    off)."""
    line = STATUS_LINES.get(status) if reason_text is None else None
    if line is None:
        line = status_line(status, reason_text)
    key: tuple | None = tuple(items)
    try:
        block = _BLOCKS.get(key)
    except TypeError:  # an unhashable value
        block = None
        key = None
    if block is None:
        block = _header_block(items, key)
    if _time() >= _DATE_LINE[0]:
        # A new second: the Date (and Server) line again.
        now = _time()
        _DATE_LINE[0] = int(now) + 1
        _DATE_LINE[1] = b"Date: " + http_date(now).encode("ascii") + b"\r\n" + SERVER_HEADER
    # (Concatenation, not a list and a join: fewer steps for these few parts.)
    framing = b""
    chunked = False
    if status >= 200 and status != 204 and status != 304:  # may have a body
        if length is not None:
            cached = _LENGTHS.get(length)
            if cached is None:
                cached = b"Content-Length: %d\r\n" % length
                if len(_LENGTHS) >= _LINES_MAX:
                    _LENGTHS.clear()
                _LENGTHS[length] = cached
            framing = cached
        elif head_only:
            # A HEAD whose GET length is unknown: no framing at all (a
            # Content-Length: 0 would be a lie a cache keeps; nginx and
            # Apache send neither header).
            pass
        elif version == "1.1":
            chunked = True
            framing = b"Transfer-Encoding: chunked\r\n"
        else:
            keep_alive = False  # the body is delimited by closing
    if not keep_alive:
        framing += b"Connection: close\r\n"
    elif version == "1.0":
        framing += b"Connection: keep-alive\r\n"
    return line + block + _DATE_LINE[1] + framing + b"\r\n", chunked, keep_alive
