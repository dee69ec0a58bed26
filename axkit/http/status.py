"""Reason phrases and the core's small error pages."""

import re
from html import escape
from http import HTTPStatus

REASONS = {s.value: s.phrase for s in HTTPStatus}
REASONS.update({418: "I'm a teapot", 421: "Misdirected Request", 425: "Too Early"})

STATUS_LINES = {
    code: f"HTTP/1.1 {code} {reason}\r\n".encode("latin-1") for code, reason in REASONS.items()
}


_REASON_TEXT = re.compile(r"[\t\x20-\x7e\x80-\xff]*\Z")


class InvalidStatus(ValueError):
    """A plugin asked for a status that is not a three-digit HTTP status."""


def status_line(code, reason_text=None):
    """The status line for ``code`` (with ``reason_text`` instead of the
    standard phrase when given).  Raises InvalidStatus for anything but an
    int from 100 to 599, or a reason with CR, LF or other controls."""
    if reason_text is None:
        line = STATUS_LINES.get(code)
        if line is not None:
            return line
    if type(code) is not int or not 100 <= code <= 599:
        raise InvalidStatus(f"invalid HTTP status {code!r}")
    if reason_text is None:
        reason_text = REASONS.get(code, "Unknown")
    elif _REASON_TEXT.match(reason_text) is None:
        raise InvalidStatus(f"invalid reason phrase {reason_text!r}")
    return f"HTTP/1.1 {code} {reason_text}\r\n".encode("latin-1")


def reason(code):
    return REASONS.get(code, "Unknown")


def error_body(code, detail=None):
    """A short HTML page for an error status."""
    title = f"{code} {reason(code)}"
    text = f"<p>{escape(detail)}</p>\n" if detail else ""
    return (
        f"<!DOCTYPE html>\n<html><head><title>{escape(title)}</title></head>\n"
        f"<body><h1>{escape(title)}</h1>\n{text}</body></html>\n"
    ).encode()


def has_no_body(code):
    """1xx, 204 and 304 responses never carry a body (RFC 9110 §6.4.1)."""
    return code < 200 or code == 204 or code == 304
