"""error_document: Apache's ErrorDocument -- the admin's own page for an error.

    ErrorDocument 404 /errors/404.html           a local page, any handler
    ErrorDocument 500 "Sorry, something broke."  text
    ErrorDocument 403 https://example.com/denied a 302 to that URL
    ErrorDocument 404 default                    the core's page again

It applies to every error page the core sends for a request, whatever sent
it: a hook's 403, the engine's 404/405/413, a CGI program's 502/504, an
application's 500.  How: the plugin leaves ``answer`` in the request's
notes (``axkit.error_document``) as the request starts, and the core's
``send_error`` calls it with the status once it has chosen the error
page's fields; ``answer`` looks the status up in the request's scope as it
is then.  What the value is, is Apache's rule: a word starting with ``/``
is a local URL, one with a scheme (``http:``) a URL, anything else (or any
text with a space) is the text of the page.

A local page is served by an internal redirect (a GET; HEAD stays HEAD)
through every phase, so a file, a CGI program or a WSGI application may
answer it; the response keeps the error's status when the page answers
200 (REDIRECT_STATUS and REDIRECT_URL tell a program which error it is
for), and keeps the error's WWW-Authenticate, Allow, Retry-After and
Set-Cookie fields.  Conditional and Range fields of the request are not
applied to the page (it is never a 304 or a 206).  An error while serving
the page is answered with the core's plain page for the first error (no
loop), as Apache does.
"""

import re

from axkit.config import MAP, NOT_FILES, ConfigError, Directive
from axkit.hooks import DECLINED
from axkit.http.headers import Headers
from axkit.http.status import error_body, reason
from axkit.log import PluginLogger
from axkit.notes import ERROR_DOCUMENT, ERROR_HEADERS, ERROR_STATUS

log = PluginLogger("error_document")

LOCAL, TEXT, URL, DEFAULT = "local", "text", "url", "default"

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")

# The error's response fields a local page keeps (Apache's err_headers_out
# holds these: a 401 page without its challenge would never prompt).
CARRIED = frozenset(("www-authenticate", "allow", "retry-after", "set-cookie"))

# Request fields the page's response must not act on (Apache: no 304 for
# an error document; the byte-range filter leaves a non-200 whole).
UNCONDITIONAL = frozenset(
    ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "if-range", "range")
)


class ErrorPage:
    """One ErrorDocument line's answer: kind (LOCAL, TEXT, URL, DEFAULT) and value."""

    __slots__ = ("kind", "value")

    def __init__(self, kind, value):
        self.kind = kind
        self.value = value

    def __eq__(self, other):
        return isinstance(other, ErrorPage) and (self.kind, self.value) == (other.kind, other.value)

    def __hash__(self):
        return hash((self.kind, self.value))

    def __str__(self):
        if self.kind == TEXT:
            return '"' + self.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return self.value

    __repr__ = __str__


def classify(value):
    """Apache's reading of ErrorDocument's second argument (core.c
    set_error_document): ``default``; text when it holds a space; a local
    URL when it starts with ``/``; a URL when it has a scheme; else text."""
    if value.lower() == "default":
        return ErrorPage(DEFAULT, "default")
    if " " in value:
        return ErrorPage(TEXT, value)
    if value.startswith("/"):
        return ErrorPage(LOCAL, value)
    if _SCHEME.match(value):
        return ErrorPage(URL, value)
    return ErrorPage(TEXT, value)


def _error_status(word, ctx):
    if not word.isdigit() or not 400 <= int(word) <= 599:
        raise ConfigError(f"ErrorDocument: expected an error status from 400 to 599, got {word!r}")
    return int(word)


_error_status.label = "CODE"


def _page(word, ctx):
    return classify(word)


_page.label = 'URL-PATH|"TEXT"|URL|default'


def _check(value):
    status, page = value
    if page.kind == URL and status == 401:
        # Apache ignores such a line with a notice: a redirect would lose
        # the challenge, and the browser would never ask for a password.
        raise ConfigError(
            "ErrorDocument 401 cannot be a full URL (a redirect loses the "
            "WWW-Authenticate challenge): use a local /path or text"
        )
    if page.kind == LOCAL and any(c in page.value for c in "\r\n\x00 "):
        raise ConfigError(f"ErrorDocument: {page.value!r} is not a local URL")


def answer(request, status, detail):
    """What the core's send_error calls (the ERROR_DOCUMENT note): answer
    ``status`` with the scope's page and return True, or return False."""
    notes = request.notes
    first = notes.get(ERROR_STATUS)
    if first is not None:
        # The page itself failed: the plain page of the first error, once.
        log.error(
            "ErrorDocument page for {first} failed with {status}: the plain page is sent",
            first=first,
            status=status,
            request=request,
        )
        notes.pop(ERROR_DOCUMENT, None)
        body = error_body(
            first,
            f"Additionally, a {status} {reason(status)} error was encountered "
            "while trying to use an ErrorDocument to handle the request.",
        )
        request.send(first, body, "text/html; charset=utf-8")
        return True
    pages = getattr(request.conf, "error_document", None)
    page = pages.get(status) if pages else None
    if page is None or page.kind == DEFAULT:
        return False
    if page.kind == TEXT:
        request.send(status, page.value, "text/html; charset=utf-8")
        return True
    if page.kind == URL:
        request.response_headers.set("Location", page.value)
        request.send(
            302,
            error_body(302, f"The document has moved to {page.value}."),
            "text/html; charset=utf-8",
        )
        return True
    notes[ERROR_STATUS] = status
    headers = request.headers
    if any(name in UNCONDITIONAL for name, _ in headers):
        request.headers = Headers(
            [(k, v) for k, v in headers if k not in UNCONDITIONAL], lowered=True
        )
    request.internal_redirect(page.value, _carried(request.response_headers, notes))
    return True


def _carried(fields, notes):
    """The error's fields a page keeps: CARRIED, and the ``Header always``
    ones (ERROR_HEADERS) applied over them."""
    kept = Headers([(k, v) for k, v in fields if k.lower() in CARRIED])
    decorate = notes.get(ERROR_HEADERS)
    if decorate is not None:
        decorate(kept)
    return kept


class ErrorDocument:
    """Serves the admin's page, text or redirect for an error status (ErrorDocument)."""

    name = "error_document"
    directives = [
        Directive(
            "ErrorDocument",
            (_error_status, _page),
            scopes=NOT_FILES,
            merge=MAP,
            check=_check,
            doc='ErrorDocument CODE /local/page | "text" | https://url | default: '
            "what the client gets instead of the core's page for an error status "
            "(Apache's): a local page served with the error's status, the text, "
            "or a 302 to the URL.",
        ),
    ]

    def wants_hook(self, hook, conf):
        """Only where some ErrorDocument applies."""
        return bool(conf.error_document)

    # pre_request: the <Server>'s pages, for errors before the request's
    # <Location>s are known (a bad path's 400, LimitRequestBody's 413);
    # post_read_request: a <Location>'s.  The pages themselves are looked up
    # when an error is sent, in the request's scope as it is then.
    def hook_pre_request(self, request, conf):
        request.notes[ERROR_DOCUMENT] = answer
        return DECLINED

    hook_post_read_request = hook_pre_request
