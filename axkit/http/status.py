"""Reason phrases and the core's small error pages."""

from html import escape
from http import HTTPStatus

REASONS = {s.value: s.phrase for s in HTTPStatus}
REASONS.update({418: "I'm a teapot", 421: "Misdirected Request", 425: "Too Early"})

STATUS_LINES = {code: f"HTTP/1.1 {code} {reason}\r\n".encode("latin-1")
                for code, reason in REASONS.items()}


def status_line(code):
    line = STATUS_LINES.get(code)
    if line is None:
        line = f"HTTP/1.1 {code} {REASONS.get(code, 'Unknown')}\r\n".encode("latin-1")
    return line


def reason(code):
    return REASONS.get(code, "Unknown")


def error_body(code, detail=None):
    """A short HTML page for an error status."""
    title = f"{code} {reason(code)}"
    text = f"<p>{escape(detail)}</p>\n" if detail else ""
    return (f"<!DOCTYPE html>\n<html><head><title>{escape(title)}</title></head>\n"
            f"<body><h1>{escape(title)}</h1>\n{text}</body></html>\n").encode("utf-8")


def has_no_body(code):
    """1xx, 204 and 304 responses never carry a body (RFC 9110 §6.4.1)."""
    return code < 200 or code == 204 or code == 304
