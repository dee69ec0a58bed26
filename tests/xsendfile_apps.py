"""Handlers that answer with X-Sendfile (the target in the query string),
for tests/test_xsendfile.py: a WSGI app, an ASGI app, a CGI program and a
Twisted backend for the proxy, each with a body that must never be sent."""

from urllib.parse import unquote

from twisted.web import resource

DECOY = b"never sent " * 100


def wsgi_app(environ, start_response):
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/x-report"),
            ("X-Sendfile", unquote(environ["QUERY_STRING"])),
            ("ETag", '"the-app-s-own"'),
            ("Content-Length", str(len(DECOY))),
        ],
    )
    # (Streamed in pieces: every one of them is dropped.)
    yield DECOY[:10]
    yield DECOY[10:]


async def asgi_app(scope, receive, send):
    if scope["type"] != "http":
        return
    target = unquote(scope["query_string"].decode("latin-1"))
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/x-report"),
                (b"x-sendfile", target.encode("latin-1")),
                (b"etag", b'"the-app-s-own"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": DECOY[:10], "more_body": True})
    await send({"type": "http.response.body", "body": DECOY[10:]})


CGI_PROGRAM = """#!/bin/sh
printf 'Content-Type: text/x-report\\r\\nX-Sendfile: %s\\r\\n' "$QUERY_STRING"
printf 'ETag: "the-program-s-own"\\r\\n\\r\\n'
i=0
while [ $i -lt 100 ]; do printf 'never sent '; i=$((i+1)); done
"""


class Backend(resource.Resource):
    isLeaf = True

    def render(self, req):
        req.setHeader(b"content-type", b"text/x-report")
        req.setHeader(b"x-sendfile", unquote(req.uri.decode().partition("?")[2]).encode())
        req.setHeader(b"etag", b'"the-backend-s-own"')
        return DECOY
