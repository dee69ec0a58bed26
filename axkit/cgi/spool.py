"""Keep a chunked request body until its length is known.

Many CGI programs read exactly CONTENT_LENGTH bytes of stdin, so a body
sent with ``Transfer-Encoding: chunked`` is de-chunked (by the engine) and
kept here -- in memory while small, in an unlinked temporary file past
that, as lighttpd does -- and the script starts once it is complete, with
CONTENT_LENGTH set.  Its size is bounded by LimitRequestBody (the engine
answers 413 past it).
"""

import tempfile

IN_MEMORY = 65536


class BodySpool:
    def __init__(self):
        self.size = 0
        self._pieces = []
        self.file = None

    def write(self, data):
        self.size += len(data)
        if self.file is not None:
            self.file.write(data)
            return
        self._pieces.append(data)
        if self.size > IN_MEMORY:
            self.file = tempfile.TemporaryFile(prefix="axkit-cgi-body-")
            self.file.write(b"".join(self._pieces))
            self._pieces = None

    def in_memory(self):
        """The body as bytes, or None when it went to a file."""
        if self.file is not None:
            return None
        return b"".join(self._pieces)

    def rewound(self):
        """The spool file, flushed and rewound (for the child's stdin)."""
        self.file.flush()
        self.file.seek(0)
        return self.file

    def close(self):
        if self.file is not None:
            self.file.close()
            self.file = None
        self._pieces = None
