"""One HTTP request/response cycle through an ASGI app.

The cycle lives on two threads when the loop has one of its own (see
bridge): methods named ``r_*`` run on the reactor thread and touch the
request; the coroutines and ``l_*`` methods run on the loop and touch the
app's side.  Each side's fields are written by that side only; the only
flag read across is ``paused`` (a bool, set by the reactor).

Backpressure both ways:
* request body: one ``http.request`` message is in flight at a time; while
  the app has not received it, reading from the client is paused
  (``pause_body``) and what was read meanwhile is joined into the next one;
* response body: the cycle is a push producer on the request; ``send()``
  waits for the reactor (a round trip) when the client's socket is full
  (``paused``) or every HIGH_WATER bytes, so an app producing faster than
  the client reads is held, not buffered.
"""

from asyncio import CancelledError
from collections import deque

from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from axkit.http.framing import split_tokens
from axkit.http.headers import HOP_BY_HOP
from axkit.http.request import HeaderInjection, RequestWatcher
from axkit.http.states import FINISHED

from .body import BodyFeed
from .scope import build_scope

log = Logger(namespace="axkit.asgi")

# Response bytes an app may send before its send() waits for the reactor
# to have written them (the bound on memory held per streaming response).
HIGH_WATER = 256 * 1024

# Fields an app's answer never passes on: hop-by-hop ones (RFC 9110
# 7.6.1, and any its Connection field names) and those the engine writes
# itself (Date, Server; Content-Length is taken as the body's length).
_ENGINE_FIELDS = frozenset(name.encode("latin-1") for name in HOP_BY_HOP) | {b"date", b"server"}

_EMPTY_BODY = {"type": "http.request", "body": b"", "more_body": False}
_DISCONNECT = {"type": "http.disconnect"}


# The fields of the heads apps send, by their header list: an app sends the
# same few again and again (bounded; a list of lists is not kept).
_FIELDS = {}
_FIELDS_MAX = 4096


def _response_fields(headers):
    """An http.response.start's headers as the engine's (name, value) str
    pairs, hop-by-hop and engine-owned ones dropped, and its Content-Length
    (or None)."""
    headers = [(bytes(n).lower(), v) for n, v in headers]
    drop = _ENGINE_FIELDS
    for name, value in headers:
        if name == b"connection":
            listed = split_tokens(bytes(value).decode("latin-1"))
            drop = drop | {t.encode("latin-1") for t in listed}
    fields = []
    length = None
    for name, value in headers:
        if name not in drop:
            fields.append((name.decode("latin-1"), bytes(value).decode("latin-1")))
        elif name == b"content-length":
            length = int(value)
    return tuple(fields), length


class ClientDisconnected(OSError):
    """send() after the client went away (ASGI: a server-specific OSError)."""


@implementer(IPushProducer)
class HTTPCycle(BodyFeed, RequestWatcher):
    """One request through the app (no __slots__: the class attributes
    below are the defaults, so a cycle sets only what differs)."""

    # loop side
    waiter = None  # receive() waiting for a message
    send_waiter = None  # send() waiting for the reactor to drain
    unacked = 0  # bytes sent since the last drain
    l_gone = False  # the response ended: receive() says disconnect
    l_head = None  # (status, (fields, length)) until the first body, then True
    l_complete = False  # the last body message was sent
    body_asked = False  # the reactor was asked for the body
    # reactor side
    head_sent = False
    streaming = False  # registered as the request's producer
    done = False  # the response ended
    taken = False  # answered in the app's place (X-Sendfile): its output dropped
    paused = False  # the client's socket is full (read by the loop)
    drain_wanted = False  # a send() waits for resumeProducing
    body_ended = False
    final_sent = False  # the last http.request message was passed on
    inflight = False  # an http.request message the app has not taken

    def __init__(self, request, mount, bridge):
        """Start ``request`` through ``mount``'s app (reactor side): its
        scope is built and its task started.  (On axkit's reactor the
        task's first step runs here and now: an app that answers at once
        has answered when this returns.)"""
        self.request = request
        self.mount = mount
        self.bridge = bridge
        self.threaded = bridge.threaded  # (else the r_* methods are called directly)
        inbox = self.inbox = deque()
        if request.body_complete:
            # No body (a GET): the first receive() needs no crossing.
            inbox.append(_EMPTY_BODY)
            self.body_asked = self.final_sent = True
        task = bridge.start_task(self.run(build_scope(request, mount.root_path, mount.state)))
        if request.state != FINISHED:
            request.watch(self)
        elif task is None or not task.done():
            self.request_ended()  # (what watch() would do: no watcher needed)

    # -- loop: the app -------------------------------------------------------

    async def run(self, scope):
        try:
            await self.mount.app(scope, self.receive, self.send)
        except BaseException as e:  # CancelledError included: it failed
            self.bridge.to_reactor(self.r_app_done, e, self.l_complete)
        else:
            if not self.l_complete:  # (a complete answer: nothing to do)
                self.bridge.to_reactor(self.r_app_done, None, False)

    async def receive(self):
        inbox = self.inbox
        if not inbox:
            if not self.body_asked:
                # The body is read when the app first asks (a client
                # waiting on 100-continue gets it now).
                self.body_asked = True
                self.bridge.to_reactor(self.r_want_body)
            while not inbox:
                if self.l_gone:
                    return _DISCONNECT
                self.waiter = self.bridge.loop.create_future()
                await self.waiter
        message = inbox.popleft()
        if message is not _EMPTY_BODY:
            self.bridge.to_reactor(self.r_body_taken)
        return message

    def l_deliver(self, message):
        self.inbox.append(message)
        self._wake()

    def l_disconnect(self):
        self.l_gone = True
        self._wake()
        waiter, self.send_waiter = self.send_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake(self):
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def send(self, message):
        kind = message["type"]
        if kind == "http.response.body":
            head = self.l_head
            if head is None:
                raise RuntimeError("ASGI: http.response.body before http.response.start")
            if self.l_gone:
                raise ClientDisconnected("the client has gone")
            if self.l_complete:
                return  # after the end: ignored (spec)
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if head is not True:
                self.l_head = True
                if not more:
                    self.l_complete = True
                    if not self.threaded:  # (the usual: a whole answer, on this thread)
                        self.r_first_body(head[0], head[1], body, False)
                        return
                if self.threaded:
                    self.bridge.to_reactor(self.r_first_body, head[0], head[1], body, more)
                else:
                    self.r_first_body(head[0], head[1], body, more)
            else:
                if not more:
                    self.l_complete = True
                if self.threaded:
                    self.bridge.to_reactor(self.r_body, body, more)
                else:
                    self.r_body(body, more)
            if more:
                self.unacked += len(body)
                if self.paused or self.unacked > HIGH_WATER:
                    await self._drained()
        elif kind == "http.response.start":
            if self.l_head is not None:
                raise RuntimeError("ASGI: http.response.start sent twice")
            if self.l_gone:
                raise ClientDisconnected("the client has gone")
            status = message["status"]
            if status.__class__ is not int or not 200 <= status <= 999:
                # (1xx answers are the engine's: 100 Continue.)
                raise ValueError(f"ASGI: bad status {status!r}")
            headers = message.get("headers", ())
            try:
                fields = _FIELDS.get(key := tuple(headers))
            except TypeError:  # (pairs as lists: not kept)
                key = fields = None
            if fields is None:
                fields = _response_fields(headers)
                if key is not None and len(_FIELDS) < _FIELDS_MAX:
                    _FIELDS[key] = fields
            self.l_head = (status, fields)
        else:
            raise ValueError(f"ASGI: unknown message type {kind!r}")

    async def _drained(self):
        """Wait until the reactor has written what was sent and the client's
        socket has room."""
        self.send_waiter = future = self.bridge.loop.create_future()
        self.bridge.to_reactor(self.r_drain_request)
        await future
        self.unacked = 0
        if self.l_gone:
            raise ClientDisconnected("the client has gone")

    def l_drained(self):
        waiter, self.send_waiter = self.send_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- reactor: the response -------------------------------------------------

    def r_first_body(self, status, fields, body, more):
        if self.done:
            return
        request = self.request
        named, length = fields
        try:
            if named and request.add_handler_fields(named) is False:
                self.taken = self.done = True  # (later bodies are dropped)
                return
            if not more:
                if length is None or length == len(body):
                    if not (request.head_only and length is None and not body):
                        # Head and body in one write (and one send()).
                        request.send(status, body)
                        return
                request.start_response(status, length)
                request.write(body)
                request.finish()
                return
            request.start_response(status, length)
        except HeaderInjection as e:
            self._fail(Failure(e), "a bad response field")
            return
        self.head_sent = True
        request.register_producer(self, True)
        self.streaming = True
        if body:
            request.write(body)

    def r_body(self, body, more):
        if self.done:
            return
        request = self.request
        if body:
            request.write(body)
        if not more:
            self.streaming = False
            request.unregister_producer()
            request.finish()

    def r_drain_request(self):
        if self.done or not self.paused:
            self.bridge.to_loop(self.l_drained)
        else:
            self.drain_wanted = True

    # IPushProducer: the client's socket is full / has room again.
    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        self.paused = False
        if self.drain_wanted:
            self.drain_wanted = False
            self.bridge.to_loop(self.l_drained)

    def stopProducing(self):
        self.paused = False

    # -- reactor: the end ----------------------------------------------------------

    def request_ended(self):
        """The response ended (finished, or the client went): the app hears
        http.disconnect from receive(), and send() raises from now on."""
        self.done = True
        if self.drain_wanted:
            self.drain_wanted = False
        if self.bridge.threaded:
            self.bridge.to_loop(self.l_disconnect)
        elif self.waiter is None and self.send_waiter is None:
            self.l_gone = True  # (one thread, nobody waiting: l_disconnect's whole work)
        else:
            self.l_disconnect()

    def r_app_done(self, error, complete):
        request = self.request
        if error is None and complete:
            return
        if error is not None and isinstance(error, ClientDisconnected) and request.aborted:
            return  # it was told the client went
        if self.taken and (error is None or isinstance(error, ClientDisconnected)):
            return  # (its answer was a file, sent in its place)
        if error is not None and isinstance(error, CancelledError):
            log.info(
                "ASGI app at {mount} was cancelled",
                mount=self.mount.url_path,
                request=request,
                plugin="asgi",
            )
            self._cut()
        elif error is not None:
            failure = Failure(error, error.__class__, error.__traceback__)
            self._fail(failure, "the application raised")
        elif not self.done:
            log.error(
                "ASGI app at {mount} returned without completing its response",
                mount=self.mount.url_path,
                request=request,
                plugin="asgi",
            )
            self._cut()

    def _fail(self, failure, why):
        log.failure(
            "ASGI app at {mount}: {why}",
            failure=failure,
            mount=self.mount.url_path,
            why=why,
            request=self.request,
            plugin="asgi",
        )
        self._cut()

    def _cut(self):
        request = self.request
        if request.finished:
            return
        if self.streaming:
            self.streaming = False
            request.unregister_producer()
        if self.head_sent:
            request.abort()
        else:
            request.send_error(500)
