"""One request's exchange with its backend, streamed both ways.

The request head goes out in one write on a kept (or new) connection of
the backend's pool (axkit.proxy.client); the proxy frames the body itself:
``Content-Length`` as the client announced it, else chunked.  Upstream,
the backend's transport has an ``_Upload`` registered as a push producer:
while the backend's socket is full we stop reading the client's body
(``request.pause_body``).  Downstream, the request has this Forward
registered as a push producer: while the client's socket is full the
engine pauses us and we pause the backend's transport, so what was read
from the backend never runs more than one read ahead of what the client
took.

Retries: a request none of which was sent (the connection was refused)
may go elsewhere (the balancer's next member); an idempotent request
without a body may be sent again on a new connection when a kept one
turns out closed by the backend before any byte of the answer; a request
with a body, or a non-idempotent one, never twice (a kept connection is
checked on its socket before such a request is written on it).

Failures: refused or cut before an answer -> 502; no head within the
timeout -> 504; after the head, a cut or a stall longer than the timeout
-> the client's connection is cut.  One log line each, naming the backend.
"""

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectError, ConnectionRefusedError
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from axkit.hooks import OK
from axkit.http.head import HeaderInjection
from axkit.http.request import RequestWatcher
from axkit.log import PluginLogger

log = PluginLogger("proxy")

_IDEMPOTENT = frozenset(("GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"))
_WANTS_LENGTH = frozenset(("POST", "PUT", "PATCH"))  # an empty body still says so


_FIELD_LINE = "%s: %s\r\n".__mod__  # (name, value) -> its line, without a Python frame


@implementer(IPushProducer)
class _Upload:
    """The client's body as a push producer on the backend's transport."""

    __slots__ = ("request",)

    def __init__(self, request):
        self.request = request

    def pauseProducing(self):
        self.request.pause_body()

    def resumeProducing(self):
        self.request.resume_body()

    def stopProducing(self):
        self.request.pause_body()


@implementer(IPushProducer)
class Forward(RequestWatcher):
    """Sends ``request`` to the backend of ``spec`` and answers it."""

    def __init__(self, request, spec, target, fields, timeout, on_head=None):
        self.request = request
        self.spec = spec
        self.backend = spec.backend
        self.target = target  # the request target sent (path and query)
        self.fields = fields
        self.timeout = timeout
        self.on_head = on_head  # (forward, status, fields) -> fields or None (handled)
        self.deadline = request.deadline(self._expired)

    # The exchange's state, set on the instance as it changes (class-level
    # defaults: fewer steps per request).
    pool = None
    conn = None  # the backend connection while the exchange runs
    pending = None  # a connection attempt's Deferred
    paused = False
    ended = False
    timed_out = False
    got_head = False
    discarding = False  # the answer went otherwise (X-Sendfile): drop its body
    registered = False  # as the request's producer
    head_pending = None  # (status, length) until the head is sent
    stash = None  # the body read with the head
    retried = False
    settled = False  # the whole answer was relayed (answer_end)
    body = None  # None, "length" or "chunked"
    upload_done = True
    uploading = False  # an _Upload is registered on the backend's transport
    # A balancer's: on_success(); on_failure(forward, nothing_sent) may
    # start another attempt (another member) and return its result, or None.
    on_success = None
    on_failure = None

    def start(self):
        request = self.request
        fields = self.fields
        length = request.content_length
        if length:
            self.body = "length"
            fields.append(("Content-Length", str(length)))
        elif request.headers.get("transfer-encoding") is not None:
            self.body = "chunked"
            fields.append(("Transfer-Encoding", "chunked"))
        elif length == 0 and request.method in _WANTS_LENGTH:
            fields.append(("Content-Length", "0"))
        # The request head (fields already end-to-end, framing included).
        self.head = (
            f"{request.method} {self.target} HTTP/1.1\r\n"
            + "".join(map(_FIELD_LINE, fields))
            + "\r\n"
        ).encode("latin-1")
        reactor = request.reactor
        spec = self.spec
        pool = spec._pool
        if pool is None or pool.closed or pool.reactor is not reactor:
            pool = spec.pool(reactor)
        self.pool = pool
        self.deadline.after(self.timeout)
        request.watch(self)
        if self.body is None and request.method in _IDEMPOTENT:
            # The common case: a kept connection as it is (retried on a new
            # one if the backend had closed it), else a new one.
            got = pool.acquire(False)
            if isinstance(got, Deferred):
                self.pending = got
                got.addCallbacks(self._connected, self._connect_failed)
                got.addErrback(self._crashed)
            else:
                self._connected(got)
        else:
            self._connect(False)
        return OK  # (hook_response: the answer follows)

    def idempotent(self):
        return self.request.method in _IDEMPOTENT and self.body is None

    # -- the connection --------------------------------------------------

    def _connect(self, fresh):
        pool = self.pool
        got = pool.acquire(fresh)
        if not self.idempotent():
            # Not to be sent twice: never on a kept connection the backend
            # has closed meanwhile (Apache's check before reuse).
            while not isinstance(got, Deferred) and not got.looks_alive():
                got.abort()
                got = pool.acquire(fresh)
        if isinstance(got, Deferred):
            self.pending = got
            got.addCallbacks(self._connected, self._connect_failed)
            got.addErrback(self._crashed)
        else:
            self._connected(got)

    def _connected(self, conn):
        self.pending = None
        if self.ended:
            conn.complete = conn.keep = True  # unused: keep it
            conn.done(True)
            return
        self.conn = conn
        conn.send(self, self.head, self.request.method == "HEAD")
        if self.body is not None:
            self.upload_done = False
            self.uploading = True
            conn.transport.registerProducer(_Upload(self.request), True)
            self.request.stream_body(self._up_data, self._up_end)

    def _up_data(self, data):
        conn = self.conn
        if conn is None:
            return
        if self.body == "chunked":
            conn.write(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            conn.write(data)

    def _up_end(self):
        conn = self.conn
        self.upload_done = True
        if conn is not None:
            if self.body == "chunked":
                conn.write(b"0\r\n\r\n")
            conn.transport.unregisterProducer()
        self._upload_over()

    def _upload_over(self):
        """We no longer produce into the backend: if the last write paused
        the client's body (the backend's socket was full), take that pause
        back -- Twisted's unregisterProducer does not resume -- or the
        client's connection would never be read again (its next request,
        or the rest of a body the engine drops)."""
        if self.uploading:
            self.uploading = False
            self.request.resume_body()

    def _connect_failed(self, failure):
        self.pending = None
        if self.ended:
            return None
        if self.timed_out:
            return self._failed(504, f"no answer within {self.timeout:g}s", False)
        nothing_sent = failure.check(ConnectionRefusedError, ConnectError) is not None
        return self._failed(502, f"cannot connect: {failure.value}", nothing_sent)

    # -- the answer (BackendConnection's calls) ----------------------------

    def answer_head(self, conn, status, fields):
        self.got_head = True
        request = self.request
        if self.on_success is not None:
            self.on_success()
        length = conn.length
        if status == 204 or status == 304:
            length = None  # (a HEAD keeps the GET's length, if the backend said it)
        if self.on_head is not None:
            fields = self.on_head(self, status, fields)
            if fields is None:  # answered otherwise (X-Sendfile): drop the body
                self.discarding = True
                return
        try:
            if request.add_handler_fields(fields) is False:
                # Answered otherwise (XSendFile On and an X-Sendfile field):
                # the backend's body is read and dropped.
                self.discarding = True
                return
        except HeaderInjection as e:
            conn.abort()
            self.conn = None
            self._fail(f"bad field in the answer: {e}", 502)
            return
        # The head waits for the end of this read: a whole small answer
        # then leaves as one write with its Content-Length (answer_end).
        self.head_pending = (status, length)
        self.stash = []

    def answer_body(self, data):
        if self.discarding:
            return
        if self.head_pending is not None:
            self.stash.append(data)  # (at most one read)
            return
        self.deadline.extend(self.timeout)
        self.request.write(data)

    def answer_flush(self):
        """The read ended with the answer incomplete: send the head and
        what came of the body, and stream the rest."""
        status, length = self.head_pending
        self.head_pending = None
        request = self.request
        request.start_response(status, length)
        self.registered = True
        request.register_producer(self, True)
        self.deadline.after(self.timeout)
        for data in self.stash:
            request.write(data)
        self.stash = None

    def answer_end(self, conn):
        self.conn = None
        self.deadline.cancel()
        self.settled = True
        if self.uploading:
            self._upload_over()
        if self.discarding:
            conn.done(self.upload_done)
            return
        request = self.request
        pending = self.head_pending
        # The connection goes back to the pool first: a pipelined request
        # that starts as this one finishes finds it there.
        conn.done(self.upload_done)
        if pending is not None:  # the whole answer came in one read
            self.head_pending = None
            status, length = pending
            if conn.bodyless or status == 204 or status == 304:
                request.start_response(status, length)
                request.finish()
            else:
                request.send(status, b"".join(self.stash))  # (it finishes)
            return
        if self.registered:
            self.registered = False
            request.unregister_producer()
        request.finish()

    def answer_lost(self, conn, reason):
        self.conn = None
        self._upload_over()
        if self.ended:
            return
        if self.got_head:
            self.deadline.cancel()
            if not self.discarding and not self.timed_out:
                self._fail(f"answer cut: {reason.getErrorMessage()}", None)
            return
        if conn.reused and not conn.got_bytes and self.idempotent() and not self.retried:
            # A kept connection the backend had closed: once more on a new one.
            self.retried = True
            self._connect(True)
            return
        why = "connection closed before an answer"
        if not conn.got_bytes and not conn.reused:
            why += f" ({reason.getErrorMessage()})"
        self._failed(502, why, self.idempotent())

    def answer_broken(self, conn, why):
        self.conn = None
        self._upload_over()
        if self.ended:
            return
        self.deadline.cancel()
        if self.got_head:
            self._fail(why, None)
        else:
            self._failed(502, why, False)

    # -- failures ----------------------------------------------------------

    def _expired(self):
        self.timed_out = True
        if self.pending is not None:
            self.pending.cancel()  # -> _connect_failed: 504
            return
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.abort()
        self._upload_over()
        if self.discarding:
            return
        if self.got_head:
            self._fail(f"no data for {self.timeout:g}s after the head", None)
        else:
            self._failed(504, f"no answer within {self.timeout:g}s", False)

    def _failed(self, status, why, nothing_sent):
        """Before the head: maybe another member (a balancer), else ``status``."""
        self.deadline.cancel()
        if self.on_failure is not None:
            if self.on_failure(self, nothing_sent) is not None:
                self._log(why + ", trying another member")
                return None
        self._fail(why, status)
        return None

    def _log(self, why):
        request = self.request
        log.error(
            "backend {backend}: {why} ({method} {path})",
            backend=str(self.backend),
            why=why,
            method=request.method,
            path=request.path,
            request=request,
        )

    def _crashed(self, failure):
        log.failure("proxy: handling the answer of {backend}", failure, backend=str(self.backend))
        self.deadline.cancel()
        if not self.ended:
            self._fail("internal error handling the answer", 500)

    def _fail(self, why, status):
        request = self.request
        self._log(why)
        if status is not None and not request.headers_sent:
            request.send_error(status)
        else:
            request.abort()

    # -- the request's end (RequestWatcher) --------------------------------

    def request_ended(self):
        self.ended = True
        if self.settled:
            return  # (answer_end: the exchange is over, the deadline cancelled)
        self._upload_over()
        if self.discarding and self.conn is not None:
            return  # the body is still being read and dropped; the deadline runs
        self.deadline.cancel()
        if self.pending is not None:
            self.pending.cancel()
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.abort()

    # -- IPushProducer (the client's side pauses us) -----------------------

    def pauseProducing(self):
        self.paused = True
        conn = self.conn
        if conn is not None:
            conn.pause_reading()

    def resumeProducing(self):
        self.paused = False
        conn = self.conn
        if conn is not None:
            conn.resume_reading()

    def stopProducing(self):
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.abort()
