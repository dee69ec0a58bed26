"""One client connection: read requests, answer them strictly in order,
keep the connection alive or close it, enforce limits.

Pipelined requests are parsed into a queue and dispatched one at a time:
request N+1 is handed to the handler only when response N has finished,
so responses leave in request order by construction.  A full queue, or a
request body nobody is consuming yet, pauses reading from the socket.
Each state (axkit.http.states) has its deadline, filed in the factory's
DeadlineWheel.

The engine's rooms (HTTPConnection is their sum; the mixins add methods,
never state, so a connection stays one slotted object -- there may be
100,000 -- and a call costs what it did as one class):

* connection.py -- the lifecycle: reading the socket and flow control,
  dispatch order, keep-alive, deadlines (this module);
* parsing.py -- the httptools (llhttp) callbacks that build requests;
* framing.py -- the RFC 9112 checks of a request head, as plain functions;
* sending.py -- the socket write fast path and SendTimeout;
* closing.py -- refusals, half-close, lingering close, abort, drain;
* switching.py -- after a 101: the connection handed to another protocol;
* states.py -- the names of states, deadline kinds and pause reasons;
* deadlines.py -- DeadlineWheel, the timer service;
* factory.py -- HTTPFactory and ConnectionGate (MaxConnections).

Why over 500 lines: HTTPConnection's own part is over 300 lines, and
reading, dispatching and flow control all turn on the same few fields
(state, active, queue, _paused, _parsing); each is only understood next to
the others, so they stay in one module while every other concern above has
its own.
"""

from httptools import HttpParserError, HttpParserUpgrade
from twisted.internet.interfaces import IHalfCloseableProtocol, IProtocol
from twisted.logger import Logger
from zope.interface import implementer

from axkit._compat import plain_tcp

from ..reactor import dispatch_directly
from .closing import Closing
from .parsing import RequestParsing, new_parser
from .request import FINISHED
from .sending import Sending
from .states import (
    BODY,
    HEADERS,
    IDLE,
    LINGERING,
    PAUSE_BODY,
    PAUSE_PIPELINE,
    PAUSE_UPGRADE,
    SENDING,
)
from .switching import Switching

log = Logger(namespace="axkit.http")

# Data is fed to the parser in slices this big, so a flood of pipelined
# requests in one read cannot queue more than one slice's worth.
FEED_SLICE = 16384
PIPELINE_SLICE = 1024
# Below this many open connections, a connection keeps its parser between
# requests (making one costs more than a request's parsing); at or above
# it, idle connections drop theirs to stay small.
KEEP_PARSER_BELOW = 1024
# After a response is complete, a request body still unread is read and
# thrown away up to this many bytes (keeping the connection); past it: close.
DISCARD_LIMIT = 1024 * 1024

CONTINUE_100 = b"HTTP/1.1 100 Continue\r\n\r\n"


@implementer(IProtocol, IHalfCloseableProtocol)
@dispatch_directly
class HTTPConnection(RequestParsing, Sending, Closing, Switching):
    """The protocol of one client connection (slotted: there may be 100,000)."""

    __slots__ = (
        "factory",
        "handler",
        "limits",
        "parser",
        "transport",
        "connected",
        "queue",
        "active",
        "current",
        "requests",
        "state",
        "closing",
        "peer_host",
        "peer_port",
        "secure",
        "_url",
        "_fields",
        "_head_bytes",
        "_raw_head",
        "_began",
        "_fatal",
        "_paused",
        "_unparsed",
        "_deadline",
        "_deadline_state",
        "_wheel_slot",
        "_discarding",
        "_notes",
        "_upgrade",
        "_parsing",
        "_dispatching",
        "_advanced",
        "_sock",
        "server",
        "_held",
        "_sent_mark",
        "_read_closed",
        "_lingering",
        "_switched",
        "__weakref__",
    )

    def __init__(self, factory):
        self.factory = factory
        self.handler = factory.handler
        self.limits = None
        self.parser = None
        self.transport = None
        self.connected = 0
        self.queue = None  # parsed requests waiting (list), if any
        self.active = None  # the request being answered
        self.current = None  # the request whose head/body is being parsed
        self.requests = 0
        self.state = IDLE
        self.closing = False
        self.peer_host = None
        self.peer_port = None
        self.secure = False
        self._url = None
        self._fields = None
        self._head_bytes = 0
        self._raw_head = 0
        self._began = False
        self._fatal = None
        self._paused = 0
        self._unparsed = b""
        self._deadline = None
        self._deadline_state = None
        self._wheel_slot = None
        self._discarding = 0
        self._notes = None
        self._upgrade = False
        self._parsing = False
        self._dispatching = False
        self._advanced = False
        self._held = None  # a request with a body, dispatched after this parse
        self._sent_mark = None  # progress seen at the last SendTimeout check
        self._read_closed = False  # the client has half-closed (sent its FIN)
        self._lingering = False  # closing: our side shut, the client's read and dropped
        self._sock = None
        self._switched = None  # the protocol the connection was handed to (a 101)
        self.server = None  # the listener's default <Server> (set by the handler)

    @property
    def notes(self):
        """Free space for plugins, per connection (created when first used)."""
        if self._notes is None:
            self._notes = {}
        return self._notes

    def logPrefix(self):
        return "HTTPConnection"

    # -- connection lifecycle ---------------------------------------------

    def makeConnection(self, transport):
        self.connected = 1
        self.transport = transport
        self.connectionMade()

    def connectionMade(self):
        factory = self.factory
        factory.connection_opened(self)
        self.limits = factory.limits()
        transport = self.transport
        tcp = plain_tcp(transport)
        if tcp is not None:
            # Plain TCP: the peer's (host, port, ...) as accept() gave it,
            # without building an address object; never TLS.
            client, self._sock = tcp
            self.peer_host = client[0] or "-"
            self.peer_port = client[1]
        else:
            peer = transport.getPeer()
            self.peer_host = getattr(peer, "host", None) or "-"
            self.peer_port = getattr(peer, "port", None)
            self.secure = factory.is_secure(transport)
        try:
            transport.setTcpNoDelay(True)
        except (AttributeError, OSError):
            pass
        if self.limits.proxy_protocol:
            # RemoteIPProxyProtocol On: the PROXY header comes first; the
            # connect hooks run once it has named the client.
            from .proxy_header import expect_proxy_header

            expect_proxy_header(self)
            return
        # A fresh connection gets RequestHeaderTimeout for its first byte.
        self._set_deadline(IDLE, self.limits.header_timeout)
        self.handler.connection_made(self)

    # -- reading ----------------------------------------------------------

    def dataReceived(self, data):
        if self.closing or self._fatal is not None:
            if self._switched is not None:  # (not HTTP any more: see switching.py)
                self._switched.dataReceived(data)
            return
        if self._paused or self._parsing:
            self._unparsed += data
            return
        if len(data) <= PIPELINE_SLICE:
            self._parse_bytes(data)
            if self._held is not None:
                self._dispatch_held()
        else:
            self._feed(data)
        if self._unparsed and not self._paused:
            self._drain()

    def _drain(self):
        """Parse what was held back while reading was paused.  Never from
        inside a parser callback: the parse in progress picks it up."""
        while (
            self._unparsed
            and not self._paused
            and not self._parsing
            and not self.closing
            and self._fatal is None
        ):
            data, self._unparsed = self._unparsed, b""
            self._feed(data)
        if self._read_closed and not self._unparsed:
            self._check_read_closed()

    def _feed(self, data):
        # While a response is in progress, requests behind it are parsed a
        # small slice at a time, so a pause (MaxPipelinedRequests) takes
        # effect within a slice: the queue stays bounded.
        # Body bytes go in big slices (they queue nothing).
        view = memoryview(data)
        start = 0
        end = len(data)
        while start < end:
            if self.closing or self._fatal is not None:
                if self._switched is not None:  # (a 101 at once: the rest is its)
                    self._switched.dataReceived(bytes(view[start:]))
                return
            if self._paused:
                if self._paused & PAUSE_UPGRADE:
                    # (Held after an Upgrade's head: _after_upgrade put the
                    # rest of this slice first.)
                    self._unparsed += bytes(view[start:])
                else:
                    self._unparsed = bytes(view[start:]) + self._unparsed
                return
            size = FEED_SLICE if self.state == BODY else PIPELINE_SLICE
            self._parse(view[start : start + size])
            start += size

    def _parse(self, data):
        self._parse_bytes(data)
        if self._held is not None:
            self._dispatch_held()

    def _dispatch_held(self):
        # The head and whatever of the body came in the same read have
        # been parsed: a body broken there was answered 400 instead.
        held = self._held
        self._held = None
        if not held.finished and not self.closing:
            self._dispatch(held)

    def _parse_bytes(self, data):
        """Feed llhttp (its callbacks: parsing.py), then apply what one read
        changes: an idle connection's parser, a head's timer and size."""
        self._began = False
        self._parsing = True
        parser = self.parser
        if parser is None:
            parser = self.parser = new_parser(self)
        try:
            parser.feed_data(data)
        except HttpParserUpgrade as e:
            self._parsing = False
            self._after_upgrade(data, e)
        except HttpParserError as e:
            self._parsing = False
            self._parse_failed(e, data)
            return
        except BaseException:
            self._parsing = False
            raise
        self._parsing = False
        state = self.state
        if state == IDLE:
            if len(self.factory.connections) >= KEEP_PARSER_BELOW:
                # Between requests the parser holds nothing: with many
                # connections open, drop it (with its bound callbacks,
                # ~1 KB): an idle connection keeps less.
                self.parser = None
        elif state == HEADERS:
            # httptools collects a header field whole before handing it
            # over: bound what it can hold by counting the raw bytes.
            if self._began:
                # A head began in this read and is not complete: from now
                # (its first byte) it has RequestHeaderTimeout.  A head read
                # whole in one read never needs the timer.
                self._set_deadline(HEADERS, self.limits.header_timeout)
                self._raw_head = self._head_bytes
            else:
                self._raw_head += len(data)
            if self._raw_head > self.limits.header_size:
                if (
                    self._fields is not None
                    and not self._fields
                    and self._head_bytes > self.limits.request_line
                ):
                    self.protocol_error(414, "request line too long")
                else:
                    self.protocol_error(431, "the header block is too large")

    # -- reading control ---------------------------------------------------

    def pause_body(self):
        """Stop reading the request body (backpressure from its consumer);
        the body timeout does not run while we are the ones not reading."""
        self._pause(PAUSE_BODY)
        if self.state == BODY:
            self._deadline = None

    def resume_body(self):
        self._resume(PAUSE_BODY)
        # (Resuming feeds what was held back; its consumer may have paused
        # the body again meanwhile: then the timeout does not run.)
        if (
            self.state == BODY
            and self._deadline is None
            and not self.closing
            and not self._paused & PAUSE_BODY
        ):
            self._set_deadline(BODY, self.limits.body_timeout)

    def _pause(self, reason):
        # (A half-closed transport reads no more: it is never paused or
        # resumed -- resuming would read its end of file again.)
        if not self._paused and not self.closing and not self._read_closed:
            self.transport.pauseProducing()
        self._paused |= reason

    def _resume(self, reason):
        if not self._paused & reason:
            return
        self._paused &= ~reason
        if not self._paused and not self.closing:
            if not self._read_closed:
                self.transport.resumeProducing()
            if self._unparsed:
                self._drain()

    # -- dispatch and ordering ---------------------------------------------

    def _dispatch(self, request):
        self.active = request
        if request.expect_failed:
            request.send_error(417, "only 100-continue is a known expectation")
            return
        pending = request._body_pending
        arrived = list(pending) if pending else ()
        self.handler.handle(request)
        if request.state != FINISHED and self._deadline is None and not self.closing:
            # Answered later (a file sent in pieces, a program...): watch
            # that the client keeps reading (SendTimeout).
            self._watch_sending()
        # Body pieces that arrived while the request was queued.
        for data in arrived:
            if request.finished:
                break
            self.handler.body_data(request, data)

    def want_body(self, request):
        """A plugin reads the body: the moment to send ``100 Continue``."""
        if (
            request.continue_wanted
            and not request.headers_sent
            and request.body_length == 0
            and not request.body_complete
        ):
            request.continue_wanted = False
            self.transport.write(CONTINUE_100)
        self.resume_body()

    def response_finished(self, request):
        """Called by the request when its response is complete."""
        self.handler.response_finished(request)
        if request is not self.active:
            return
        if not request.keep_alive or self.closing:
            self._close(linger=not request.body_complete)
            return
        if not request.body_complete:
            if request.continue_wanted:
                # The client waits for 100 before sending its body: it may
                # or may not send it now.  Closing is the only safe framing.
                self._close()
                return
            # Read and drop the rest of the body, then go on with keep-alive.
            remaining = (
                request.content_length - request.body_length
                if request.content_length is not None
                else DISCARD_LIMIT
            )
            if remaining > DISCARD_LIMIT:
                self._close(linger=True)
                return
            self._discarding = DISCARD_LIMIT
            self.resume_body()
            return
        if self.current is request:
            # Answered while its message is still being parsed (nothing can
            # be queued behind it yet): on_message_complete goes on.
            self.active = None
            return
        self._advance()

    def _advance(self):
        """The active response is complete: dispatch the next request (in a
        loop, not by recursion, when responses complete synchronously)."""
        self.active = None
        if self._paused & PAUSE_UPGRADE and self._upgrade.state == FINISHED:
            self._upgrade_declined()  # (what followed is parsed below)
        if self.closing:
            return
        if self._dispatching:
            self._advanced = True  # the loop below goes on
            return
        if self.queue:  # (else: nothing to dispatch)
            self._dispatching = True
            try:
                while True:
                    self._advanced = False
                    queue = self.queue
                    if not queue:
                        break
                    request = queue.pop(0)
                    if self._paused & PAUSE_PIPELINE and len(queue) <= self.limits.max_pipelined:
                        self._resume(PAUSE_PIPELINE)
                    self._dispatch(request)
                    if not self._advanced or self.closing:
                        return
            finally:
                self._dispatching = False
        if self._fatal is not None:
            self._send_fatal()
            return
        if self._read_closed and not self._unparsed:
            self._check_read_closed()
            return
        if self.current is not None:
            return  # its message is still being parsed; see on_message_complete
        if self.state != HEADERS:
            if self.factory.draining:
                self._close()
                return
            self.state = IDLE
            self._set_deadline(IDLE, self.limits.keepalive_timeout)
            if not self._parsing and len(self.factory.connections) >= KEEP_PARSER_BELOW:
                self.parser = None
        if self._unparsed and not self._paused:
            self._drain()

    def body_unread(self, request):
        return not request.body_complete

    # -- timeouts ----------------------------------------------------------

    def _set_deadline(self, state, seconds):
        self._deadline_state = state
        self._deadline = deadline = self.factory.now() + seconds
        slot = self._wheel_slot
        if slot is None or deadline < slot - 1:
            self._wheel_slot = self.factory.wheel.add(self, deadline, slot)

    def deadline_check(self, slot, now):
        """Called by the factory's timer wheel for an entry at ``slot``."""
        if slot != self._wheel_slot:
            return  # a stale entry; a newer one exists
        self._wheel_slot = None
        deadline = self._deadline
        if deadline is None or self.closing and not self._lingering:
            return
        if deadline > now:
            self._wheel_slot = self.factory.wheel.add(self, deadline)
            return
        self._deadline = None
        state = self._deadline_state
        if state == LINGERING:
            self.transport.loseConnection()
        elif state == IDLE:
            log.debug("closing idle connection from {client}", client=self.peer_host)
            self._close()
        elif state == HEADERS:
            if self.state == HEADERS:
                self.protocol_error(408, "request header timeout")
        elif state == BODY:
            self.protocol_error(408, "request body timeout")
        elif state == SENDING:
            self._check_sending(now)
