"""The handler API: what a handler (CGI, WSGI, a proxy, an XSLT stage) uses
beyond the response methods -- files, fields, raw bytes, internal
redirects, deadlines, the connection's facts.  Documented in
docs/hooks.md, "Writing a handler".  A mixin of Request (no state of its
own)."""

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, BinaryIO

from twisted.internet.defer import Deferred

from axkit.notes import HANDLER_FIELDS, X_SENDFILE

from .head import head_bytes
from .states import FINISHED, HEAD_PENDING, STREAMING
from .timers import Deadline


class HandlerAPI:
    """Request's handler-facing methods (``self`` is the Request)."""

    if TYPE_CHECKING:  # the Request's attributes these methods use
        channel: Any
        notes: dict[str, Any]
        response_headers: Any
        state: int
        keep_alive: bool
        bytes_sent: int
        status: int
        reason_text: str | None
        version: str
    else:
        __slots__ = ()  # (Request holds the slots)

    def send_file(
        self,
        source: str | bytes | os.PathLike[str] | BinaryIO,
        *,
        conditional: bool = True,
        offset: int = 0,
        length: int | None = None,
    ) -> Deferred[bool]:
        """Answer with a file: ``source`` is a path or an open binary file.

        ``conditional`` (a path or file sent whole with status 200): the
        same answer serve_file gives -- ETag and Last-Modified, 304/412,
        ranges (206/416), HEAD, the file cache, zero-copy sendfile; fields
        already set (Content-Type, Cache-Control) are kept.  Otherwise the
        bytes from ``offset`` (a file object: its current position) for
        ``length`` (to the end) are sent as the body of ``self.status``
        with the fields already set, zero-copy where the socket allows.
        A file object handed in stays open (it is its owner's to close).
        Returns a Deferred firing with True when the response completed,
        False when it was cut."""
        from axkit.files.respond import send_file

        return send_file(self, source, conditional, offset, length)

    def add_handler_fields(self, fields: Iterable[tuple[str, str]]) -> bool:
        """Add the response fields a handler produced after the fixup phase
        (a CGI program's head, a WSGI start_response, a backend's answer):
        the scope's ``Header`` operations apply over them, as Apache runs
        mod_headers after the handler.  Every handler passes its fields
        here before its head goes out, and acts on the answer: True, go on;
        False, the answer was taken in the handler's place (``XSendFile
        On`` and an ``X-Sendfile`` field: the file, or a 404, is being
        sent) -- send nothing more, drop the body, let the request end."""
        notes = self.notes
        if notes:
            divert = notes.get(X_SENDFILE)
            if divert is not None:
                fields = list(fields)
                if divert(self, fields):
                    return False
            merge = notes.get(HANDLER_FIELDS)
            if merge is not None:
                merge(self, fields)
                return True
        self.response_headers.extend(fields)
        return True

    def write_raw(self, data: bytes) -> None:
        """Send bytes as they are, no framing: for a handler that speaks
        HTTP itself (an nph- program).  The first call counts as the head;
        the connection closes after the response (its end cannot be seen)."""
        if self.state == FINISHED:
            return
        if self.state == HEAD_PENDING:
            self.keep_alive = False
            self.state = STREAMING
        self.bytes_sent += len(data)
        self.channel.write(data)

    @property
    def upgrade_requested(self) -> bool:
        """Whether this request asks to switch protocols (``Upgrade`` and
        ``Connection: upgrade``, HTTP/1.1, no body) and ``upgrade()`` can
        still answer it.  The protocol it names is in
        ``request.headers.get("upgrade")``."""
        return bool(self.channel.upgradable(self))

    def upgrade(self, protocol: Any) -> None:
        """Switch protocols (RFC 9110 section 7.8): send ``101 Switching
        Protocols`` with ``self.response_headers`` (put ``Upgrade`` and the
        protocol's own fields there; the engine adds ``Connection:
        Upgrade``), end the request as answered (its ``when_ended``
        watchers run, the access log shows 101), and hand the connection to
        ``protocol`` (a Twisted IProtocol): it gets ``makeConnection`` with
        the raw transport, then ``dataReceived`` with any bytes the client
        sent after the request's head, then every read; the client's
        half-close (``readConnectionLost``, if it provides
        IHalfCloseableProtocol, else the connection is closed) and
        ``connectionLost``.  The connection's HTTP timeouts stop: the
        protocol keeps its own, and closes the transport when done.  Only
        for a request with ``upgrade_requested`` (else RuntimeError);
        a field that cannot be sent raises HeaderInjection before anything is."""
        channel = self.channel
        if self.state != HEAD_PENDING or not channel.upgradable(self):
            raise RuntimeError(f"{self!r} cannot be upgraded (no Upgrade asked, or answered)")
        head, _, _ = head_bytes(
            101, None, self.response_headers._items, None, False, self.version, True
        )
        self.status = 101
        self.reason_text = None
        self.state = STREAMING
        channel.transport.write(head[:-2] + b"Connection: Upgrade\r\n\r\n")
        channel.switch_protocols(self, protocol)

    def internal_redirect(self, location: str, keep_fields: Iterable[tuple[str, str]] = ()) -> None:
        """Answer this request as a GET of ``location`` (a local path with an
        optional query) through the phases again -- Apache's internal
        redirect (a CGI local redirect, X-Accel-Redirect, an ErrorDocument
        page).  Request headers are kept minus those of its body; HEAD stays
        HEAD; of the first answer's head only ``keep_fields`` survive (an
        error's WWW-Authenticate or Allow, as Apache keeps err_headers_out)."""
        self.channel.handler.internal_redirect(self, location, keep_fields)

    def resolve_file(self) -> None:
        """Merge the <Files> sections that match ``self.filename`` into this
        request's scope (``conf``), as the engine does after uri_translation:
        for a handler that maps the URL to a file itself."""
        self.channel.handler.resolve_file(self)

    def deadline(self, on_expire: Callable[[], object]) -> Deadline:
        """A ``Deadline`` (axkit.http.timers) on the server's timer wheel,
        unarmed: ``d.after(seconds)`` arms it, ``d.extend(seconds)`` moves it
        on, ``d.cancel()``.  ``on_expire()`` runs once it has passed."""
        factory = self.channel.factory
        return Deadline(factory.wheel, factory.now, on_expire)

    def send_queue(self) -> int | None:
        """Bytes sent to the client and not yet acknowledged by it (the
        kernel's send queue), or None where that cannot be read (TLS).  It
        falls as a slow reader reads, long before the transport has room."""
        return self.channel.unsent()

    def client_read_since(self, mark: int | None) -> bool:
        """Whether the client took at least MIN_DRAIN bytes of its send queue
        since ``mark`` (an earlier ``send_queue()``): a slow reader counts as
        reading, one taking a few bytes a minute to hold a slot does not."""
        from .sending import drained

        return drained(mark, self.channel.unsent())

    def zero_copy_transport(self) -> Any:
        """The transport to ``os.sendfile`` into (axkit.files.producers), or
        None when there is none to use (TLS, memory transports)."""
        return self.channel.transport

    @property
    def local_address(self) -> tuple[str | None, int | None]:
        """(host, port) of the socket the request arrived on; (None, None)
        where the transport has no such address (UNIX sockets)."""
        host = self.channel.transport.getHost()
        return getattr(host, "host", None), getattr(host, "port", None)

    @property
    def connection_notes(self) -> dict[str, Any]:
        """Free space for plugins, per connection (kept across its requests)."""
        return self.channel.notes

    @property
    def connection_requests(self) -> int:
        """Requests this connection carried before this one (keep-alive)."""
        return max(0, self.channel.requests - 1)
