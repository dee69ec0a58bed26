"""Response bytes on their way out: the socket write fast path, the probe of
the kernel's send queue, and SendTimeout (a client that stops reading).

`Sending` is a mixin of `axkit.http.connection.HTTPConnection` (it adds
methods, not state: the connection's slots hold ``_sock``, ``_sent_mark``
and the rest).
"""

import fcntl
import socket
import struct
import termios

from twisted.logger import Logger

from axkit._compat import can_send_now, write_buffer_mark, write_buffered

from .request import FINISHED
from .states import SENDING

log = Logger(namespace="axkit.http")

# A client whose response waits on it (SendTimeout, CGITimeout with the
# program paused) must take at least this much of what the kernel holds for
# it per timeout to count as reading: a slow reader does, a client taking a
# few bytes a minute to hold the connection (and a CGI slot) does not.
MIN_DRAIN = 16384

MSG_MORE = getattr(socket, "MSG_MORE", 0)  # (Linux)

# Bodies shorter than this are joined to their head and sent in one send;
# longer ones go by sendmsg, uncopied (Request.send).
PAIR_JOIN_BELOW = 8192


def drained(before, now):
    """Whether a client took at least MIN_DRAIN of what the kernel held for
    it (``unsent()`` then and now; None where it cannot be read)."""
    return before is not None and now is not None and before - now >= MIN_DRAIN


class Sending:
    """Writing a response, and watching that the client takes it."""

    __slots__ = ()

    def write(self, data, more=False):
        """Write response bytes.  On a plain TCP socket with nothing queued,
        send at once: Twisted would otherwise queue the bytes and send them
        on the next reactor turn (two epoll updates per response).
        ``more``: more bytes follow in this turn (a head before its
        sendfile): the kernel holds these until then (MSG_MORE), and the
        client gets the head and the start of the body in one packet,
        woken once."""
        sock = self._sock
        if sock is not None:
            transport = self.transport
            if can_send_now(transport):
                try:
                    sent = sock.send(data, MSG_MORE if more else 0)
                except BlockingIOError:
                    sent = 0
                except OSError:
                    sent = 0  # the transport finds the error and closes
                if sent == len(data):
                    return
                if sent:
                    data = data[sent:]
        self.transport.write(data)

    def write_pair(self, head, body):
        """Write a response head and its whole body.  A small body is joined
        to the head (one send); a larger one goes out with the head in one
        ``sendmsg`` without being copied: no second buffer of the body's size
        is made (a transformed page, an application's answer), nor freed."""
        if len(body) < PAIR_JOIN_BELOW:
            self.write(head + body)
            return
        sock = self._sock
        if sock is not None and can_send_now(self.transport):
            try:
                sent = sock.sendmsg((head, body))
            except BlockingIOError:
                sent = 0
            except OSError:
                sent = 0  # the transport finds the error and closes
            if sent >= len(head):
                if sent < len(head) + len(body):
                    self.transport.write(body[sent - len(head) :])
                return
            head = head[sent:]
        self.transport.writeSequence((head, body))

    def unsent(self):
        """Bytes in the kernel's send queue for this connection (not yet
        acknowledged by the client), or None where it cannot be read (TLS).
        A reader slower than the queue is long frees no room for minutes
        (Twisted's buffer and the producer's pause do not move), yet this
        number falls as it reads."""
        sock = self._sock
        if sock is None:
            return None
        try:
            return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
        except (OSError, ValueError):
            return None

    def _send_progress(self):
        """What has left (or is queued) so far, for SendTimeout: None when
        nothing waits on the client (the response's producer is slow, or it
        is over)."""
        active = self.active
        if active is None or active.state == FINISHED:
            return None
        transport = self.transport
        if self._sock is not None and transport.producer is None and write_buffered(transport) == 0:
            return None  # plain TCP, nothing queued (a program still running)
        # A pull producer (sendfile) is only ever waiting for the socket.
        waiting_pull = getattr(transport, "producer", None) is not None and not getattr(
            transport, "streamingProducer", True
        )
        buffered = 0
        offsets = []
        while transport is not None:  # TLS: down to the TCP transport
            held = write_buffered(transport)
            if held is not None:
                buffered += held
                offsets.append(write_buffer_mark(transport))
            transport = getattr(transport, "transport", None)
        if not buffered and not waiting_pull:
            return None
        return (active.bytes_sent, buffered, tuple(offsets), self.unsent())

    def _watch_sending(self):
        """Start SendTimeout: the response in progress may wait on the client."""
        self._sent_mark = self._send_progress()
        self._set_deadline(SENDING, self.limits.send_timeout)

    def _check_sending(self, now):
        """SendTimeout expired: abort the response if the client took
        nothing of it meanwhile, else look again a timeout later."""
        mark = self._send_progress()
        last = self._sent_mark
        if (
            mark is not None
            and last is not None
            and mark[:3] == last[:3]
            and not drained(last[3], mark[3])
        ):
            # Nothing moved -- but for the kernel's queue, which a slow
            # reader drains long before it frees room for more of ours.
            log.info(
                "closing connection from {client}: it read nothing for {timeout} s (SendTimeout)",
                client=self.peer_host,
                timeout=self.limits.send_timeout,
            )
            self.active.abort()
            return
        # Progress (or nothing waiting on the client): look again later.
        self._sent_mark = mark
        if self.active is not None and not self.closing:
            self._set_deadline(SENDING, self.limits.send_timeout)
