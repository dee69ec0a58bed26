"""One request's exchange with its backend, streamed both ways.

Upstream, the client's body is an IBodyProducer fed by
``request.stream_body``; Twisted pauses it while the backend's socket is
full and we pause reading from the client (``request.pause_body``).
Downstream, the backend's body is written to the request, which has this
Forward registered as a push producer: when the client's socket is full
the engine pauses us and we pause the backend's transport, so what was
read from the backend never runs more than one socket buffer ahead of
what the client took.

Failures: refused or cut before an answer -> 502; no head within the
timeout -> 504; after the head, a cut or a stall longer than the timeout
-> the client's connection is cut.  One log line each, naming the backend.
"""

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectError, ConnectionRefusedError
from twisted.internet.protocol import Protocol
from twisted.web._newclient import ResponseNeverReceived
from twisted.web.client import PotentialDataLoss, ResponseDone
from twisted.web.http_headers import Headers as TwistedHeaders
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer
from zope.interface import implementer

from axkit.hooks import DONE
from axkit.http.head import HeaderInjection
from axkit.log import PluginLogger

from .hop import RESPONSE_OWN, end_to_end

log = PluginLogger("proxy")

_IDEMPOTENT = frozenset(("GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"))


@implementer(IBodyProducer)
class RequestBody:
    """The client's request body as Twisted's Agent wants it."""

    def __init__(self, request):
        self.request = request
        length = request.content_length
        self.length = length if length is not None else UNKNOWN_LENGTH
        self.done = None

    def startProducing(self, consumer):
        self.done = Deferred()
        self.request.stream_body(consumer.write, self._ended)
        return self.done

    def _ended(self):
        if self.done is not None and not self.done.called:
            self.done.callback(None)

    def pauseProducing(self):
        self.request.pause_body()

    def resumeProducing(self):
        self.request.resume_body()

    def stopProducing(self):
        self.request.pause_body()
        if self.done is not None and not self.done.called:
            self.done.errback(CancelledError())


class _Body(Protocol):
    """Receives the backend's body (Agent's deliverBody)."""

    def __init__(self, forward):
        self.forward = forward

    def connectionMade(self):
        self.forward.body_started(self.transport)

    def dataReceived(self, data):
        self.forward.body_data(data)

    def connectionLost(self, reason):
        self.forward.body_ended(reason)


class _Discard(Protocol):
    def connectionLost(self, reason):
        pass


def _connection_fields(response):
    """The backend's Connection fields.  Twisted's client keeps them apart
    from ``response.headers`` (in its parser's connHeaders), yet the
    fields they name must be stripped too (RFC 9110 7.6.1)."""
    try:
        protocol = response._transport._producer.protocol
        protocol = getattr(protocol, "_wrappedProtocol", protocol)  # (endpoints wrap it)
        parser = protocol._parser
        values = parser.connHeaders.getRawHeaders(b"connection") or ()
    except AttributeError:
        return []
    return [("Connection", v.decode("latin-1")) for v in values]


class Forward:
    """Sends ``request`` to ``backend`` through ``agent`` and answers it."""

    def __init__(self, request, agent, backend, url, fields, timeout, on_head=None):
        self.request = request
        self.agent = agent
        self.backend = backend
        self.url = url
        self.fields = fields
        self.timeout = timeout
        self.on_head = on_head  # (forward, status, fields) -> fields or None (handled)
        self.done = Deferred()
        self.pending = None  # the Agent's Deferred until the head arrives
        self.transport = None  # the backend body's transport (pausable)
        self.paused = False
        self.ended = False
        self.timed_out = False
        self.deadline = request.deadline(self._expired)
        # A balancer's: on_success(); on_failure(forward, nothing_sent) may
        # return a Deferred of another attempt (another member), or None.
        self.on_success = None
        self.on_failure = None

    def start(self):
        request = self.request
        body = None
        if request.content_length or request.headers.get("transfer-encoding") is not None:
            body = RequestBody(request)
        headers = TwistedHeaders()
        for name, value in self.fields:
            headers.addRawHeader(name.encode("latin-1"), value.encode("latin-1"))
        self.pending = self.agent.request(
            request.method.encode("ascii"), self.url.encode("ascii"), headers, body
        )
        self.pending.addCallbacks(self._head, self._failed).addErrback(self._crashed)
        self.deadline.after(self.timeout)
        request.when_ended(self._request_ended)
        return self.done

    # -- before the head -------------------------------------------------

    def _expired(self):
        self.timed_out = True
        if self.pending is not None:
            self.pending.cancel()
        elif self.transport is not None:
            self._fail(f"no data for {self.timeout:g}s after the head", None)
            self.transport.stopProducing()

    def _failed(self, failure):
        self.pending = None
        self.deadline.cancel()
        if self.ended:
            return None
        if self.timed_out:
            status, why = 504, f"no answer within {self.timeout:g}s"
        elif failure.check(ConnectionRefusedError, ConnectError):
            status, why = 502, f"cannot connect: {failure.value}"
        elif failure.check(ResponseNeverReceived):
            status, why = 502, "connection closed before an answer"
        else:
            status, why = 502, f"{failure.getErrorMessage() or failure.type.__name__}"
        if self.on_failure is not None:
            # Nothing of the request reached the backend: it may go elsewhere.
            nothing_sent = failure.check(ConnectionRefusedError, ConnectError) is not None or (
                failure.check(ResponseNeverReceived) is not None and self.idempotent()
            )
            retry = self.on_failure(self, nothing_sent)
            if retry is not None:
                self._log(why + ", trying another member")
                retry.addBoth(lambda _: self._done())
                return None
        self._fail(why, status)
        return None

    def idempotent(self):
        request = self.request
        return request.method in _IDEMPOTENT and not (
            request.content_length or request.headers.get("transfer-encoding") is not None
        )

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
        self._done()

    def _done(self):
        if not self.done.called:
            self.done.callback(DONE)

    def _request_ended(self):
        self.ended = True
        self.deadline.cancel()
        if self.pending is not None:
            self.pending.cancel()
        if self.transport is not None:
            self.transport.stopProducing()
        self._done()

    # -- the head --------------------------------------------------------

    def _head(self, response):
        self.pending = None
        request = self.request
        if self.on_success is not None:
            self.on_success()
        if self.ended:
            response.deliverBody(_Discard())
            return
        fields = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, values in response.headers.getAllRawHeaders()
            for value in values
        ]
        length = None if response.length is UNKNOWN_LENGTH else response.length
        if request.method == "HEAD":
            given = response.headers.getRawHeaders(b"content-length")
            length = int(given[-1]) if given and given[-1].isdigit() else None
        fields = end_to_end(fields + _connection_fields(response), RESPONSE_OWN)
        if self.on_head is not None:
            fields = self.on_head(self, response.code, fields)
            if fields is None:  # answered otherwise (X-Sendfile); done when it ends
                self.deadline.cancel()
                response.deliverBody(_Discard())
                return
        try:
            if request.add_handler_fields(fields) is False:  # answered otherwise (X-Sendfile)
                self.deadline.cancel()
                response.deliverBody(_Discard())
                return
        except HeaderInjection as e:
            self.deadline.cancel()
            response.deliverBody(_Discard())
            self._fail(f"bad field in the answer: {e}", 502)
            return
        request.start_response(response.code, length)
        request.register_producer(self, True)
        self.deadline.after(self.timeout)
        response.deliverBody(_Body(self))

    # -- the body --------------------------------------------------------

    def body_started(self, transport):
        self.transport = transport
        if self.paused:
            transport.pauseProducing()

    def body_data(self, data):
        self.deadline.extend(self.timeout)
        self.request.write(data)

    def body_ended(self, reason):
        transport, self.transport = self.transport, None
        self.deadline.cancel()
        if self.ended:
            return
        request = self.request
        request.unregister_producer()
        if reason.check(ResponseDone, PotentialDataLoss):
            request.finish()
            self._done()
        elif transport is not None and not self.timed_out:
            self._fail(f"answer cut: {reason.getErrorMessage()}", None)

    # -- IPushProducer (the client's side pauses us) ---------------------

    def pauseProducing(self):
        self.paused = True
        if self.transport is not None:
            self.transport.pauseProducing()

    def resumeProducing(self):
        self.paused = False
        if self.transport is not None:
            self.transport.resumeProducing()

    def stopProducing(self):
        if self.transport is not None:
            self.transport.stopProducing()
