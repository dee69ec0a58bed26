"""The reactor side of one WSGI request: the response, in order, with backpressure.

The application thread never touches the request: it queues operations
(the head, body bytes, the end) with ``emit``; the reactor runs them in
order in ``_flush`` -- one ``callFromThread`` for all that queued up in the
meantime, so a small response costs one hand-off each way.

Backpressure: while streaming, the exchange is the transport's push
producer (``request.register_producer``).  ``emit`` of body bytes waits while
the transport says pause, or while more than MAX_QUEUED bytes wait for the
reactor: a generator producing faster than the client reads blocks its own
thread, and memory stays bounded (no response is ever collected whole).

The request may end without the application's say -- the client leaves,
the engine answers a broken body, SendTimeout -- and then ``gone`` is set:
the application's next write raises ClientGone, which ends the iteration
(and close() is called, as on every path).
"""

import threading

from twisted.logger import Logger

from axkit.http.headers import Headers
from axkit.http.request import HeaderInjection

from .input import WouldBlock

log = Logger(namespace="axkit.wsgi")

MAX_QUEUED = 256 * 1024  # body bytes waiting for the reactor before a write waits
OP_COST = 256  # what one queued operation counts for (tiny writes add up)


class ClientGone(Exception):
    """The response ended (the client left, or the engine answered): stop."""


class Exchange:
    def __init__(self, request, mount, call, threaded=True):
        self.request = request
        self.mount = mount
        self.call = call  # run a function on the reactor thread
        self.threaded = threaded
        self.input = None
        self.environ = None
        self._lock = threading.Lock()
        self._cond = None  # a Condition on _lock, made by the first wait
        self._ops = []
        self._queued = 0
        self._scheduled = False
        self._paused = False
        self.gone = False  # the response ended without us
        self._ours = False  # we are ending it
        self._producing = False
        self.taken = False  # answered in our place (X-Sendfile): output dropped
        request.when_ended(self._ended)

    # -- application side -------------------------------------------------------

    def emit(self, op, size=0):
        """Queue ``op`` (bytes to write, or a function to run) for the
        reactor.  Bytes wait for room and raise ClientGone when the
        response has ended; control operations are dropped then."""
        with self._lock:
            if size:
                while not self.gone and (self._paused or self._queued > MAX_QUEUED):
                    if not self.threaded:
                        raise WouldBlock("a WSGI write would wait on the reactor thread")
                    if self._cond is None:
                        self._cond = threading.Condition(self._lock)
                    self._cond.wait()
                if self.gone:
                    raise ClientGone()
            elif self.gone:
                return
            self._ops.append(op)
            self._queued += size + OP_COST
            schedule = not self._scheduled
            self._scheduled = True
        if schedule:
            self.call(self._flush)

    def _wake(self):
        # (Under _lock.)  Only an application thread waiting in emit() waits.
        if self._cond is not None:
            self._cond.notify_all()

    # -- reactor side --------------------------------------------------------------

    def _flush(self):
        with self._lock:
            ops, self._ops = self._ops, []
            self._queued = 0
            self._scheduled = False
            self._wake()
        try:
            run = []
            for op in ops:
                if op.__class__ is bytes:
                    run.append(op)
                    continue
                if run:
                    self._write(run[0] if len(run) == 1 else b"".join(run))
                    run = []
                op()
            if run:
                self._write(run[0] if len(run) == 1 else b"".join(run))
        except Exception:
            # (A bug here must not leave the client waiting for ever.)
            log.failure(
                "WSGI application {mount}: sending its response failed",
                mount=self.mount.label,
                request=self.request,
                plugin="wsgi",
            )
            with self._lock:
                self.gone = True
                self._wake()
            self.error_response()

    def _write(self, data):
        request = self.request
        if not request.finished and not self.taken:
            request.write(data)

    def _apply(self, status, reason, headers):
        """Status and fields on the request; False when the answer was
        taken in the application's place (X-Sendfile): the rest of its
        output is dropped."""
        request = self.request
        request.status = status
        request.reason_text = reason
        # (The scope's `Header` operations apply over them.)
        if headers and request.add_handler_fields(headers) is False:
            self.taken = self._ours = True
            return False
        return True

    def head(self, status, reason, headers, length):
        """The head of a streamed response (op)."""
        request = self.request
        if request.finished or self.taken or not self._apply(status, reason, headers):
            return
        try:
            request.start_response(status, length)
        except HeaderInjection as e:
            self._refused_head(e)
            return
        if not request.head_only and not request.finished:
            request.register_producer(self, True)
            self._producing = True

    def whole(self, status, reason, headers, body, length):
        """A response known in full (op): head and body in one write."""
        request = self.request
        if request.finished or self.taken or not self._apply(status, reason, headers):
            return
        self._ours = True
        try:
            if length == len(body):
                request.send(status, body)
                return
            request.start_response(status, length)  # (None: HEAD, length unknown)
        except HeaderInjection as e:
            self._ours = False
            self._refused_head(e)
            return
        request.write(body)
        request.finish()

    def finish(self):
        """The end of a streamed response (op)."""
        request = self.request
        if request.finished or self.taken:
            return
        self._ours = True
        if self._producing:
            self._producing = False
            request.unregister_producer()
        request.finish()

    def fail(self, failure, what="failed"):
        """The application raised (op): one log event, then 500 -- or, with
        the head already sent, the connection is cut."""
        request = self.request
        log.failure(
            "WSGI application {mount} {what} for {method} {target}",
            failure=failure,
            mount=self.mount.label,
            what=what,
            method=request.method,
            target=request.target,
            request=request,
            plugin="wsgi",
        )
        self.error_response()

    def error_response(self, status=500):
        request = self.request
        if request.finished or self.taken:
            return
        self._ours = True
        if self._producing:
            self._producing = False
            request.unregister_producer()
        if request.headers_sent:
            request.abort()
            return
        request.response_headers = Headers()
        request.reason_text = None
        request.send_error(status)

    def abort(self):
        self._ours = True
        self.request.abort()

    def _refused_head(self, error):
        log.error(
            "WSGI application {mount}: {error} -> 500",
            mount=self.mount.label,
            error=str(error),
            request=self.request,
            plugin="wsgi",
        )
        with self._lock:
            self.gone = True
            self._wake()
        self.error_response()

    def send_file(self, status, reason, headers, wrapper, offset, length):
        """wsgi.file_wrapper of a real file (op): sent zero-copy by the
        engine; the wrapper is closed when the response ends."""
        request = self.request
        if request.finished or self.taken or not self._apply(status, reason, headers):
            _close_quietly(wrapper, self.mount)
            return
        self._ours = True
        try:
            d = request.send_file(wrapper.filelike, conditional=False, offset=offset, length=length)
        except HeaderInjection as e:
            self._ours = False
            _close_quietly(wrapper, self.mount)
            self._refused_head(e)
            return
        except BaseException:
            _close_quietly(wrapper, self.mount)
            raise
        d.addBoth(lambda result: _close_quietly(wrapper, self.mount))

    def finished_with_input(self):
        """(Application side.)  The application is done: its body, if any,
        is dropped on the reactor (a request without one costs nothing more:
        one hand-off per response)."""
        if self.input is not None:
            self.call(self.input.close)  # (even when gone: its spool file)

    def _ended(self):
        # (when_ended: the response is over, however.)
        with self._lock:
            if not self._ours:
                self.gone = True
            self._paused = False
            self._wake()
        if self._producing:
            # Ended by the engine (a timeout, a broken body): the next
            # response on this connection may need the transport's producer slot.
            self._producing = False
            self.request.unregister_producer()
        if self.input is not None:
            self.input.broken("the response ended before the request body did")

    # -- IPushProducer (the transport's say) --------------------------------------

    def pauseProducing(self):
        with self._lock:
            self._paused = True

    def resumeProducing(self):
        with self._lock:
            self._paused = False
            self._wake()

    def stopProducing(self):
        with self._lock:
            self.gone = True
            self._wake()


def _close_quietly(iterable, mount):
    try:
        iterable.close()
    except Exception:
        log.failure(
            "WSGI application {mount}: close() of its response failed",
            mount=mount.label,
            plugin="wsgi",
        )
