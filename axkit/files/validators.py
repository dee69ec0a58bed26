"""Validators and conditional requests (RFC 9110 §8.8 and §13).

A file's strong ETag is built from its modification time (nanoseconds) and
size, as nginx and Apache do; an encoded representation (gzip, br) gets the
same tag with a suffix, so caches never mix up the variants.
"""

import time

from axkit.http.dates import parse_http_date

NOT_MODIFIED = 304
PRECONDITION_FAILED = 412

# The request fields the static path looks at, read in one pass.
CONDITIONAL_FIELDS = frozenset(
    {"if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "if-range", "range"}
)
# Those whose repeated lines join into one list (the others take one value).
LIST_FIELDS = frozenset({"if-match", "if-none-match", "range"})


def file_etag(st, suffix=""):
    """The strong ETag of a file's identity representation (or of an encoding)."""
    return f'"{st.st_mtime_ns:x}-{st.st_size:x}{suffix}"'


def encoded_etag(etag, coding):
    """The ETag of ``etag``'s representation compressed with ``coding``."""
    return f'{etag[:-1]}-{coding}"'


def parse_etags(value):
    """The entity-tags of an If-Match / If-None-Match value, as (weak, opaque) pairs;
    ``None`` for ``*``.  Malformed members are skipped."""
    value = value.strip()
    if value == "*":
        return None
    tags = []
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if c in " \t,":
            i += 1
            continue
        weak = False
        if value.startswith("W/", i):
            weak = True
            i += 2
        if i < n and value[i] == '"':
            end = value.find('"', i + 1)
            if end < 0:
                break
            tags.append((weak, value[i : end + 1]))
            i = end + 1
        else:
            # Not an entity-tag (a bare token some clients send): skip it.
            end = value.find(",", i)
            i = n if end < 0 else end + 1
    return tags


def _weak_match(tags, etag):
    if tags is None:
        return True
    opaque = etag[2:] if etag.startswith("W/") else etag
    return any(t == opaque for _, t in tags)


def _strong_match(tags, etag):
    if tags is None:
        return True
    if etag.startswith("W/"):
        return False
    return any(not weak and t == etag for weak, t in tags)


def evaluate(fields, method, etag, mtime):
    """The status a conditional request gets, or None to go on (RFC 9110 §13.2.2).

    ``fields`` maps lower-case field names to values; ``mtime`` is the
    Last-Modified time in whole seconds.
    """
    if_match = fields.get("if-match")
    if if_match is not None:
        # Step 1: If-Match (strong comparison).
        if not _strong_match(parse_etags(if_match), etag):
            return PRECONDITION_FAILED
    else:
        # Step 2: If-Unmodified-Since, only without If-Match.
        since = fields.get("if-unmodified-since")
        if since is not None:
            when = parse_http_date(since)
            if when is not None and mtime > when:
                return PRECONDITION_FAILED
    if_none_match = fields.get("if-none-match")
    if if_none_match is not None:
        # Step 3: If-None-Match (weak comparison).
        if _weak_match(parse_etags(if_none_match), etag):
            return NOT_MODIFIED if method in ("GET", "HEAD") else PRECONDITION_FAILED
    elif method in ("GET", "HEAD"):
        # Step 4: If-Modified-Since, only without If-None-Match.
        since = fields.get("if-modified-since")
        if since is not None:
            when = parse_http_date(since)
            # A date later than the server's clock is invalid (RFC 7232
            # §3.3; Apache ignores it too): the file is sent.
            if when is not None and mtime <= when <= time.time():
                return NOT_MODIFIED
    return None


def if_range_allows(value, etag, last_modified):
    """Whether a Range may be honoured under If-Range ``value`` (RFC 9110 §13.1.5).

    An entity-tag must match strongly; a date must equal Last-Modified exactly
    (``last_modified`` is the field value we send)."""
    value = value.strip()
    if value.startswith('"') or value.startswith("W/"):
        if value.startswith("W/") or etag.startswith("W/"):
            return False
        return value == etag
    when = parse_http_date(value)
    return when is not None and when == parse_http_date(last_modified)
