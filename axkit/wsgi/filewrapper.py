"""``wsgi.file_wrapper``: a file an application returns this way is sent
by the engine (``request.send_file``: zero-copy ``sendfile`` where the
socket allows) when it is a regular file, from its current position; the
wrapper is closed when the response ends.  Anything else (a pipe, a
wrapper a middleware re-wrapped) is read in ``blksize`` pieces."""

import os
import stat as statmod


class FileWrapper:
    """``wsgi.file_wrapper``: a file returned this way is sent by the
    engine (``request.send_file``, zero-copy) when it is a regular file;
    anything else is read in ``blksize`` pieces."""

    def __init__(self, filelike, blksize=65536):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


def send_file(responder, wrapper):
    """Hand a real file to the engine; False to iterate it instead."""
    exchange = responder.exchange
    if not hasattr(exchange.request, "send_file"):
        return False
    f = wrapper.filelike
    try:
        st = os.fstat(f.fileno())
        offset = f.tell()
    except (AttributeError, OSError, ValueError):
        return False
    if not statmod.S_ISREG(st.st_mode):
        return False
    size = max(0, st.st_size - offset)
    length = responder.length
    if length is None:
        length = size
    elif length > size:
        return False  # (a short file: iterate, the connection closes)
    responder.head_sent = responder.complete = True
    exchange.emit(
        lambda a=(responder.status, responder.reason, responder.headers, wrapper, offset, length): (
            exchange.send_file(*a)
        )
    )
    return True
