"""The request-head rules of RFC 9112 that llhttp leaves to us, as plain
functions of what was parsed: no connection, no request object needed.

llhttp already refuses CL+TE conflicts it can see, duplicate or signed
Content-Length, bad chunk syntax, bare CR/LF, control characters,
whitespace before a colon and obs-fold (its leniencies stay off: see
``axkit.http.parsing.new_parser``).  What is checked here:

* the version (1.0 and 1.1 only) and Host (exactly one on 1.1, well formed);
* the Connection token list, which decides keep-alive;
* transfer codings (chunked last, once; nothing else implemented);
* the four request-target forms;
* what status an llhttp error is answered with.

A refusal raises `ProtocolError`; the connection answers it once and closes.
"""

import re
from urllib.parse import urlsplit


class ProtocolError(Exception):
    """Bad input detected by our own checks: answer ``status`` and close."""

    def __init__(self, status, detail):
        Exception.__init__(self, status, detail)
        self.status = status
        self.detail = detail


def split_tokens(value):
    """A comma-separated token list, lower-cased, empty elements dropped."""
    if "," not in value:
        token = value.strip().lower()
        return [token] if token else []
    return [t for t in (t.strip().lower() for t in value.split(",")) if t]


# The fields that frame a request or decide its answer before any plugin.
FRAMING_FIELDS = frozenset(("host", "connection", "content-length", "transfer-encoding", "expect"))

# Characters a Host value (uri-host [":" port]) cannot hold.
_BAD_HOST = re.compile(r"[\s/\\@?#,]")
# Host values already found well formed (a server sees the same few).
_GOOD_HOSTS = set()


def good_host(host):
    """Whether a Host value is well formed (remembered when it is)."""
    if host in _GOOD_HOSTS:
        return True
    if _BAD_HOST.search(host) is not None:
        return False
    if len(_GOOD_HOSTS) >= 1024:
        _GOOD_HOSTS.clear()
    _GOOD_HOSTS.add(host)
    return True


def read_head(version, fields):
    """Check a request head (its version, Host) and read the fields that
    frame it, in one pass over ``fields`` ((lower-case name, value) pairs).

    Returns ``(keep_alive, content_length, transfer_encoding, expect)``:
    whether the connection may stay open after the answer (RFC 9112 §9.3),
    and the raw values of those fields (several Transfer-Encoding fields
    joined; None when absent).  Raises `ProtocolError`."""
    if version != "1.1" and version != "1.0":
        if version.startswith("0."):
            raise ProtocolError(400, "malformed request line")
        raise ProtocolError(505, f"HTTP/{version} is not supported")
    host = connection = transfer_encoding = length = expect = None
    hosts = 0
    framing = FRAMING_FIELDS
    for name, value in fields:
        if name not in framing:
            continue
        if name == "host":
            hosts += 1
            host = value
        elif name == "connection":
            connection = value if connection is None else f"{connection},{value}"
        elif name == "content-length":
            length = value
        elif name == "transfer-encoding":
            transfer_encoding = (
                value if transfer_encoding is None else f"{transfer_encoding},{value}"
            )
        else:
            expect = value
    # Connection is a token list (RFC 9110 §7.6.1), over every field.
    if connection is None:
        keep_alive = version == "1.1"
    else:
        tokens = split_tokens(connection)
        if version == "1.1":
            keep_alive = "close" not in tokens
        else:
            keep_alive = "keep-alive" in tokens and "close" not in tokens
    # RFC 9112 §3.2: a 1.1 request without Host, or with several, is a 400.
    if hosts != 1:
        if hosts:
            raise ProtocolError(400, "more than one Host header")
        if version == "1.1":
            raise ProtocolError(400, "HTTP/1.1 request without Host")
    elif host not in _GOOD_HOSTS and not good_host(host):
        raise ProtocolError(400, "malformed Host header")
    return keep_alive, length, transfer_encoding, expect


def check_transfer_coding(version, transfer_encoding, length):
    """Refuse a Transfer-Encoding we cannot frame (RFC 9112 §6.1, §6.3):
    chunked must come last and once; no other coding is implemented."""
    if version == "1.0":
        # §6.1: a 1.0 message with Transfer-Encoding has faulty framing.
        raise ProtocolError(400, "Transfer-Encoding in an HTTP/1.0 request")
    if length is not None:
        raise ProtocolError(400, "both Content-Length and Transfer-Encoding")
    codings = split_tokens(transfer_encoding)
    if not codings or codings[-1] != "chunked":
        raise ProtocolError(400, "the last transfer coding is not chunked")
    if len(codings) > 1:
        if "chunked" in codings[:-1]:
            raise ProtocolError(400, "chunked applied more than once")
        raise ProtocolError(501, f"transfer coding {codings[0]!r} is not implemented")


def target_form(method, target):
    """The four request-target forms (RFC 9112 §3.2).

    None for origin-form ("/path?query", as a Request reads it itself);
    otherwise ``(raw_path, query, authority)``: authority is the absolute
    form's host[:port], which replaces the Host header (§3.2.2), else None.
    Raises `ProtocolError` for a target no form allows."""
    if "#" in target:
        # No form has a fragment: it is the client's own business (as
        # Apache answers; a '#' taken into the path or query would name
        # something else).
        raise ProtocolError(400, "a fragment (#) is not part of a request target")
    if target[:1] == "/":
        return None  # origin-form
    if target == "*":
        if method != "OPTIONS":
            raise ProtocolError(400, "'*' is only a target for OPTIONS")
        return "*", None, None
    if "://" in target:  # absolute-form
        try:
            parts = urlsplit(target)
        except ValueError:
            raise ProtocolError(400, "malformed absolute-form target")
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ProtocolError(400, "malformed absolute-form target")
        if method == "CONNECT":
            raise ProtocolError(400, "CONNECT needs an authority-form target")
        return (
            parts.path or "/",
            parts.query if "?" in target else None,
            parts.netloc.rpartition("@")[2],
        )
    if method == "CONNECT":  # authority-form
        # (The query stays what the Request made of the target.)
        _, sep, query = target.partition("?")
        return "*", query if sep else None, None
    raise ProtocolError(400, "malformed request target")


# A request line whose method llhttp does not know but which is well formed:
# such a method is "not implemented" (501), anything else is garbage (400).
_UNKNOWN_METHOD_LINE = re.compile(
    rb"(?:^|\n)[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32} [\x21-\x7e]+ HTTP/1\.[01]\r\n"
)


def status_for_invalid_method(data):
    """(status, detail) for llhttp's invalid-method error, given the bytes
    it was parsing: a well-formed line with an unknown method is a 501."""
    if _UNKNOWN_METHOD_LINE.search(bytes(data)) is not None:
        return 501, "request method not implemented"
    return 400, "malformed request line"


def status_for_parser_error(e):
    """(status, detail) for any other llhttp error."""
    detail = str(e) or type(e).__name__
    text = detail.lower()
    if "pri/upgrade" in text:
        return 505, "HTTP/2 connection preface: this server speaks HTTP/1.1 only"
    if "transfer-encoding" in text and "invalid" in text and "header value" not in text:
        return 501, "unsupported transfer coding"
    return 400, detail
