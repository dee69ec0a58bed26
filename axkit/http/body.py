"""The request body as the handler takes it: streamed as it arrives, with
backpressure, or (only if asked) collected whole.  A mixin of Request."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred

from .states import FINISHED

# Request body bytes kept while no plugin consumes them; past it, reading pauses.
BODY_BUFFER = 65536


class RequestBody:
    """Request's body methods (``self`` is the Request)."""

    if TYPE_CHECKING:  # the Request's attributes these methods use
        channel: Any
        state: int
        body_complete: bool
        body_length: int
        _body_pending: list[bytes] | None
        _body_consumer: tuple[Callable[[bytes], object], Callable[[], object]] | None
        _body_buffered: int
    else:
        __slots__ = ()  # (Request holds the slots)

    def read_body(self) -> Deferred[bytes]:
        """A Deferred firing with the whole request body (bytes).

        Only a plugin that asks gets the body collected in memory; its size
        is bounded by LimitRequestBody.
        """
        d: Deferred[bytes] = Deferred()
        pieces: list[bytes] = []
        self.stream_body(pieces.append, lambda: d.callback(b"".join(pieces)))
        return d

    def stream_body(self, on_data: Callable[[bytes], object], on_end: Callable[[], object]) -> None:
        """Take the request body as it arrives: ``on_data(bytes)`` per piece,
        then ``on_end()``.  Use pause_body()/resume_body() for backpressure.

        Until a plugin calls this (or read_body), at most BODY_BUFFER bytes
        are kept and reading from the client pauses; when the response ends
        first, the body is read and dropped.
        """
        pending, self._body_pending = self._body_pending, None
        self._body_consumer = (on_data, on_end)
        if pending:
            for data in pending:
                on_data(data)
        self.channel.want_body(self)
        if self.body_complete:
            self._body_consumer = None
            on_end()

    def want_body(self) -> None:
        """The body will be read (a body_data plugin applies): send ``100
        Continue`` now if the client waits for it, and read on.  (stream_body
        and read_body do this themselves.)"""
        self.channel.want_body(self)

    def pause_body(self) -> None:
        self.channel.pause_body()

    def resume_body(self) -> None:
        self.channel.resume_body()

    def _body_arrived(self, data: bytes) -> None:
        self.body_length += len(data)
        consumer = self._body_consumer
        if consumer is not None:
            consumer[0](data)
            return
        if self.state == FINISHED:
            return
        if self._body_pending is None:
            self._body_pending = [data]
            self._body_buffered = len(data)
        else:
            self._body_pending.append(data)
            self._body_buffered += len(data)
        if self._body_buffered > BODY_BUFFER:
            self.channel.pause_body()

    def _body_done(self) -> None:
        self.body_complete = True
        consumer, self._body_consumer = self._body_consumer, None
        if consumer is not None:
            consumer[1]()
