"""Handlers written only against the public handler API (docs/hooks.md,
"Writing a handler"): the tests of that API load them by dotted path."""

import os

from twisted.protocols.basic import FileSender

from axkit.config import Directive, string
from axkit.hooks import DECLINED, DONE, OK

# What the handlers saw, for the tests to look at.
seen = {}


class SendPath:
    """GET /send/NAME: request.send_file of NAME under SendRoot (conditional)."""

    name = "send_path"
    directives = [Directive("SendRoot", string, default=".")]

    def hook_response(self, request, conf):
        if not request.path.startswith("/send/"):
            return DECLINED
        path = os.path.join(conf.send_root, request.path[len("/send/") :])
        request.response_headers.set("Content-Type", "text/plain")
        request.response_headers.set("Cache-Control", "max-age=60")
        d = request.send_file(path)
        d.addCallback(lambda completed: seen.__setitem__("completed", completed))
        return OK


class SendObject:
    """GET /object/NAME?OFFSET: an open file, sent unconditionally from
    OFFSET with status 203; the file is left open for its owner."""

    name = "send_object"
    directives = [Directive("SendRoot", string, default=".")]

    def hook_response(self, request, conf):
        if not request.path.startswith("/object/"):
            return DECLINED
        f = open(os.path.join(conf.send_root, request.path[len("/object/") :]), "rb")
        f.seek(int(request.query or 0))
        seen["file"] = f
        request.status = 203
        request.response_headers.set("X-Handler", "object")
        request.send_file(f, conditional=False)
        return OK


class Fields:
    """A handler's own fields, added after fixup (as a CGI head is)."""

    name = "fields"

    def hook_response(self, request, conf):
        request.add_handler_fields([("X-Mine", "handler"), ("X-Other", "kept")])
        request.send(200, b"fields")
        return DONE


class Raw:
    """Speaks HTTP itself (an nph- program's way)."""

    name = "raw"

    def hook_response(self, request, conf):
        request.write_raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        request.write_raw(b"raw body")
        request.finish()
        return DONE


class Timed:
    """Answers 504 when its deadline (TimedSeconds) passes; each body piece
    moves it on."""

    name = "timed"
    directives = [Directive("TimedSeconds", string, default="5")]

    def hook_response(self, request, conf):
        seconds = float(conf.timed_seconds)
        deadline = request.deadline(lambda: request.send_error(504))
        deadline.after(seconds)
        seen["deadline"] = deadline
        request.stream_body(lambda data: deadline.extend(seconds), lambda: None)
        return OK


class Consumer:
    """Twisted's FileSender writes straight into the request (IConsumer)."""

    name = "consumer"
    directives = [Directive("SendRoot", string, default=".")]

    def hook_response(self, request, conf):
        f = open(os.path.join(conf.send_root, "big.txt"), "rb")
        request.start_response(200, os.fstat(f.fileno()).st_size)

        def done(_):
            f.close()
            request.finish()

        FileSender().beginFileTransfer(f, request).addCallback(done)
        return OK


class Redirector:
    """GET /go?PATH: answered as PATH through the phases again."""

    name = "redirector"

    def hook_response(self, request, conf):
        if request.path != "/go":
            return DECLINED
        request.internal_redirect(request.query)
        return DONE


class BodyRecorder:
    """Streams the request body into seen["body"] and answers at its end."""

    name = "body_recorder"

    def hook_response(self, request, conf):
        pieces = seen["body"] = []
        request.stream_body(pieces.append, lambda: request.send(200, b"ok"))
        return OK
