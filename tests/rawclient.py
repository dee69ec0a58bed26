"""The tests' one raw-socket HTTP client: exact bytes out, every byte back.

For malformed input, pipelining, pieces sent apart, half-closes and slow
readers, where an HTTP client library would hide or refuse what is tested.
The blocking functions run in a thread (``exchange`` does that for you), so
an in-process server on the reactor keeps serving meanwhile.
"""

import socket
import threading
import time

from twisted.internet import defer, reactor, task, threads


def request_bytes(path, headers=(), method="GET", close=True, body=b"", host="localhost"):
    """One request's bytes: Host, ``Connection: close`` unless ``close`` is
    false, ``headers`` as given, and a Content-Length for ``body`` unless
    ``headers`` frame it already."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if close:
        lines.append("Connection: close")
    lines += [f"{k}: {v}" for k, v in headers]
    names = {k.lower() for k, _ in headers}
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def connect(address, timeout=10.0, rcvbuf=None):
    """A blocking socket connected to ``address``: a port on 127.0.0.1, or
    the path of a UNIX socket."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        s.connect(address if family == socket.AF_UNIX else ("127.0.0.1", address))
    except BaseException:
        s.close()
        raise
    return s


def read_until_closed(sock, timeout=20.0, read_size=65536, delay=0.0, strict=False):
    """Blocking: everything ``sock`` receives until the server closes.

    A reset ends the read and keeps what arrived (a cut response), unless
    ``strict`` (then it is raised).  No close within ``timeout`` seconds
    fails the test."""
    pieces = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(
                f"the server did not close within {timeout}s; got {b''.join(pieces)[:300]!r}"
            )
        sock.settimeout(left)
        try:
            piece = sock.recv(read_size)
        except TimeoutError:
            continue  # the deadline check above fails
        except ConnectionResetError:
            if strict:
                raise
            break
        if not piece:
            break
        pieces.append(piece)
        if delay:
            time.sleep(delay)
    return b"".join(pieces)


def exchange_blocking(
    address,
    data=b"",
    pieces=(),
    gap=0.05,
    timeout=20.0,
    half_close=False,
    rcvbuf=None,
    read_size=65536,
    delay=0.0,
    strict=False,
):
    """Blocking: send ``data``, then each of ``pieces`` ``gap`` seconds
    apart, then (``half_close``) shut the sending side -- a FIN, as `nc -N`;
    read until the server closes; the bytes received.

    Large data and pieces are sent from another thread while this one reads,
    as a real client does (a program echoing its input fills both
    directions at once).  ``rcvbuf``, ``read_size`` and ``delay`` (a pause
    after each read) make a slow reader.  A failed send or a reset keeps
    what arrived, unless ``strict`` (then it is raised)."""
    if isinstance(data, str):
        data = data.encode("latin-1")
    chunks = ([data] if data else []) + list(pieces)
    s = connect(address, timeout, rcvbuf)
    failed = []

    def send():
        try:
            for i, chunk in enumerate(chunks):
                if i:
                    time.sleep(gap)
                s.sendall(chunk)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError as e:
            failed.append(e)

    sender = None
    try:
        if len(chunks) > 1 or sum(map(len, chunks)) > 65536:
            sender = threading.Thread(target=send, daemon=True)
            sender.start()
        else:
            send()
        received = read_until_closed(s, timeout, read_size, delay, strict)
    finally:
        if sender is not None:
            sender.join(timeout)
        s.close()
    if strict and failed:
        raise failed[0]
    return received


def exchange(address, data=b"", **kw):
    """exchange_blocking in a thread (the reactor keeps serving): a Deferred
    of the bytes received."""
    return threads.deferToThread(exchange_blocking, address, data, **kw)


def send_then_half_close(address, data, timeout=20.0):
    """Blocking: send ``data``, shut the sending side, read until the
    server closes; a reset is raised (a half-closed client is answered)."""
    return exchange_blocking(address, data, timeout=timeout, half_close=True, strict=True)


def port_open(port, timeout=0.5):
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
        return True
    except OSError:
        return False


@defer.inlineCallbacks
def wait_for_port(port, timeout=20.0, process=None):
    """Until 127.0.0.1:``port`` accepts (without blocking the reactor);
    fails after ``timeout`` s, or once ``process`` (a Popen) has exited."""
    deadline = time.monotonic() + timeout
    while not port_open(port, 0.2):
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"the process exited ({process.returncode}) before listening on port {port}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing listened on port {port} within {timeout}s")
        yield task.deferLater(reactor, 0.05, lambda: None)
