"""Plugins the HTTP engine tests load by dotted path (Plugin tests.httpplugins.X)."""

from twisted.internet.defer import Deferred

from axkit.hooks import DECLINED, DONE, OK

# Deferreds handed out by Slow, for the test to fire.
pending = []
# Body pieces seen by the body_data hook of BodyWatcher: (path, bytes).
pieces = []


class Echo:
    """Answers with what it saw: method, path, host, body and trailers.

    GET and HEAD never ask for the body; other methods read it whole.
    """

    name = "echo"

    def hook_response(self, request, conf):
        if request.path.startswith("/slow"):
            d = Deferred()
            pending.append(d)
            d.addCallback(lambda _: self._answer(request, b""))
            return d
        if request.path.startswith("/noread"):
            request.send(200, b"not reading your body", "text/plain")
            return DONE
        if request.path.startswith("/stream"):
            # A response of unknown length: chunked on 1.1, close on 1.0.
            request.start_response(200)
            request.write(b"part one,")
            request.write(b"part two")
            request.finish()
            return DONE
        if request.method in ("GET", "HEAD", "OPTIONS", "DELETE"):
            self._answer(request, b"")
            return DONE
        d = request.read_body()
        d.addCallback(lambda body: self._answer(request, body))
        return OK

    def _answer(self, request, body):
        trailers = dict(request.trailers or ())
        text = (
            f"{request.method} {request.path} host={request.host} "
            f"len={len(body)} body={body.decode('latin-1')} "
            f"trailers={trailers}"
        )
        request.send(200, text, "text/plain")
        return DONE


class Status:
    """/status/NNN answers NNN and tries hard to send a body with it."""

    name = "status"

    def hook_response(self, request, conf):
        if not request.path.startswith("/status/"):
            return DECLINED
        code = request.path.rsplit("/", 1)[1]
        if not (code.isdigit() and len(code) == 3):
            return 404
        code = int(code)
        request.response_headers.set("Content-Length", "5")
        request.start_response(code, 5)
        request.write(b"BODY!")
        request.finish()
        return DONE


class Inject:
    """Sets a response header carrying CR LF (header injection)."""

    name = "inject"

    def hook_fixup(self, request, conf):
        if request.path == "/inject-value":
            request.response_headers.set("X-Evil", "a\r\nSet-Cookie: pwned=1")
        elif request.path == "/inject-name":
            request.response_headers.set("X-Evil\r\nSet-Cookie", "pwned=1")
        elif request.path == "/inject-nul":
            request.response_headers.set("X-Evil", "a\x00b")
        return DECLINED


class BodyWatcher:
    """Sees the request body through the body_data hook, as it arrives."""

    name = "body_watcher"

    def hook_body_data(self, request, conf, data):
        pieces.append((request.path, data))
        return DECLINED


class Delay:
    """/delay/SECONDS answers after that long (an in-flight response)."""

    name = "delay"

    def hook_response(self, request, conf):
        if not request.path.startswith("/delay/"):
            return DECLINED
        from twisted.internet import reactor

        seconds = float(request.path.rsplit("/", 1)[1])
        d = Deferred()
        reactor.callLater(seconds, d.callback, None)
        d.addCallback(lambda _: request.send(200, f"waited {seconds}", "text/plain"))
        d.addCallback(lambda _: DONE)
        return d


class LateReader:
    """/late: starts reading the body a second after the request (as a CGI
    program that starts late), and pauses it at the first piece (as a
    program's full stdin pipe); ``late_readers`` holds the requests, their
    pieces in ``request.notes["got"]``."""

    name = "late_reader"

    def hook_response(self, request, conf):
        if not request.path.startswith("/late"):
            return DECLINED
        got = request.notes["got"] = []

        def on_data(data):
            got.append(data)
            if request.notes.get("pausing", True):
                request.pause_body()

        def on_end():
            request.send(200, f"got {sum(map(len, got))}", "text/plain")

        request.reactor.callLater(1, request.stream_body, on_data, on_end)
        late_readers.append(request)
        return OK


late_readers = []
