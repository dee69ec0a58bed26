"""headers: set, add, append, merge or unset response headers per scope.

Apache's mod_headers spelling::

    Header set Cache-Control "public, max-age=60"
    Header append Cache-Control stale-while-revalidate=30
    Header unset X-Powered-By
    <Location /private>
        Header set Cache-Control no-store
    </Location>

Every Header line of the request's scopes applies, outer scopes first, in
the fixup phase: before the response is produced, so a 304 carries the
same Cache-Control as the 200 it stands for.  A header the response
plugin sets itself (Content-Type, ETag ...) is not overridden by serve_file
(it keeps the configured one).  As in Apache, ``Header set`` is for the
document and ``Header always set`` for every response: the core's error
pages keep the ``always`` fields (and, below 500, Cache-Control, Expires
and Vary), and drop the others.
"""

import re
import weakref

from axkit.config import ANY, APPEND, RAW, ConfigError, Directive
from axkit.hooks import DECLINED
from axkit.http.headers import Headers
from axkit.notes import ERROR_HEADERS, HANDLER_FIELDS, HEADER_OPS

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
ACTIONS = ("set", "add", "append", "merge", "unset", "setifempty")


# A callable the core calls with the fields of each error page it makes for
# the request (Request.send_error): it applies the `Header always ...` lines
# (Apache's err_headers_out), whichever phase the error came from.
ALWAYS_NOTE = ERROR_HEADERS


class AlwaysFields:
    """The `Header always` operations of a scope, applied to an error page."""

    __slots__ = ("ops", "names")

    def __init__(self, ops):
        self.ops = ops
        self.names = {name.lower() for _, name, _, _ in ops}

    def __call__(self, headers):
        for name in self.names:
            headers.remove(name)  # the page's own copy, if it kept one
        for action, name, value, _ in self.ops:
            apply(headers, action, name, value)


# The Header operations applied to this request, for a handler whose fields
# arrive after the fixup phase (a CGI program's head): see add_handler_fields.
OPS_NOTE = HEADER_OPS


def add_handler_fields(request, fields):
    """(What ``request.add_handler_fields`` calls where this scope has
    Header operations.)  Add ``fields`` (name, value pairs a handler produced after the fixup
    phase, e.g. a CGI program's head) to the response, with the scope's
    Header operations applied on top of them, as Apache runs mod_headers
    after the handler: ``set`` replaces the handler's field, ``setifempty``
    keeps it, ``unset`` removes it, ``add``/``append`` add to it."""
    headers = request.response_headers
    ops = request.notes.get(OPS_NOTE) if request.notes else None
    if not ops:
        for name, value in fields:
            headers.add(name, value)
        return
    touched = {name.lower() for _, name, _, _ in ops}
    merged = Headers([(k, v) for k, v in headers if k.lower() not in touched])
    for name, value in fields:
        merged.add(name, value)
    for action, name, value, _ in ops:
        apply(merged, action, name, value)
    request.response_headers = merged


class HeaderOp(tuple):
    """One Header line: ``(action, name, value, always)``, spelled as it is
    written (--dump-config shows it so)."""

    __slots__ = ()

    def __str__(self):
        action, name, value, always = self
        words = ["always"] if always else []
        words += [action, name]
        if value is not None:
            words.append(f'"{value}"' if (" " in value or not value) else value)
        return " ".join(words)


def _check(words):
    always = bool(words) and words[0].lower() == "always"
    if always:
        words = words[1:]
    if words and words[0].lower() == "onsuccess":
        words = words[1:]  # Apache's default condition, spelled out
    if len(words) < 2:
        raise ConfigError(
            "usage: Header [always] set|add|append|merge|setifempty NAME "
            "VALUE, or Header unset NAME"
        )
    action = words[0].lower()
    if action not in ACTIONS:
        raise ConfigError(f"unknown Header action {words[0]!r} (use one of {', '.join(ACTIONS)})")
    name = words[1]
    if not _TOKEN.match(name):
        raise ConfigError(f"{name!r} is not a valid header name")
    if action == "unset":
        if len(words) != 2:
            raise ConfigError("Header unset takes only a header name")
        return HeaderOp((action, name, None, always))
    if len(words) != 3:
        raise ConfigError(
            f"Header {action} takes a header name and one value (quote a value with spaces)"
        )
    value = words[2]
    if any(c in value for c in "\r\n\x00"):
        raise ConfigError("a header value cannot hold CR, LF or NUL")
    return HeaderOp((action, name, value, always))


class _HeaderDirective(Directive):
    def parse(self, words, ctx):
        return _check(list(words))


def apply(headers, action, name, value):
    if action == "set":
        headers.set(name, value)
    elif action == "add":
        headers.add(name, value)
    elif action == "unset":
        headers.remove(name)
    elif action == "setifempty":
        headers.setdefault(name, value)
    else:
        current = headers.get(name)
        if current is None:
            headers.set(name, value)
        elif action == "append":
            headers.set(name, f"{current}, {value}")
        elif value.lower() not in (v.strip().lower() for v in current.split(",")):
            headers.set(name, f"{current}, {value}")  # merge: only if absent


class HeadersPlugin:
    """Adds, replaces or removes response headers (the Header directive)."""

    name = "headers"
    directives = [
        _HeaderDirective(
            "Header",
            RAW,
            scopes=ANY,
            merge=APPEND,
            doc="Header set|add|append|merge|setifempty NAME VALUE, or "
            "Header unset NAME: change response headers in this scope "
            "(Apache mod_headers).",
        ),
    ]

    def __init__(self):
        self._always = weakref.WeakKeyDictionary()  # Conf -> AlwaysFields | None

    def hook_post_read_request(self, request, conf):
        # Before any phase can answer with an error page (uri_to_file's 301,
        # 403, 404 come before the fixup phase).
        if conf.header:
            always = self._always.get(conf, False)
            if always is False:
                ops = tuple(op for op in conf.header if op[3])
                always = self._always[conf] = AlwaysFields(ops) if ops else None
            if always is not None:
                request.notes[ALWAYS_NOTE] = always
        return DECLINED

    def hook_fixup(self, request, conf):
        ops = conf.header
        if ops:
            headers = request.response_headers
            for action, name, value, _ in ops:
                apply(headers, action, name, value)
            notes = request.notes
            notes[OPS_NOTE] = ops
            notes[HANDLER_FIELDS] = add_handler_fields
        elif OPS_NOTE in request.notes:
            # A local redirect into a scope without Header lines.
            del request.notes[OPS_NOTE]
            request.notes.pop(HANDLER_FIELDS, None)
        return DECLINED
