"""Stream a file to a request with backpressure."""

from zope.interface import implementer
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger

log = Logger(namespace="axkit.http")

BLOCK = 65536


@implementer(IPushProducer)
class FileProducer:
    """Writes ``length`` bytes of ``f`` from ``offset``, a block at a time,
    pausing while the transport's buffer is full.  A file that shrinks
    under us ends the response by closing the connection (never sends
    garbage or a short body that looks complete)."""

    def __init__(self, request, f, offset, length):
        self.request = request
        self.file = f
        self.offset = offset
        self.remaining = length
        self.paused = False
        self.done = False

    def start(self):
        self.request.register_producer(self, True)
        self.request.notify_finish().addErrback(self._lost)
        self.file.seek(self.offset)
        self._pump()

    def _pump(self):
        request = self.request
        while not self.paused and not self.done:
            if self.remaining <= 0:
                self._finish()
                return
            try:
                data = self.file.read(min(BLOCK, self.remaining))
            except OSError as e:
                log.error("reading {name} failed: {error}", name=self.file.name, error=e)
                data = b""
            if not data:
                log.warn("{name} shrank while being sent; cutting the response",
                         name=self.file.name)
                self._stop()
                request.abort()
                return
            self.remaining -= len(data)
            request.write(data)

    def _finish(self):
        self._stop()
        self.request.finish()

    def _stop(self):
        if self.done:
            return
        self.done = True
        self.file.close()
        try:
            self.request.unregister_producer()
        except Exception:
            pass

    def _lost(self, failure):
        self._stop()

    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        if self.paused and not self.done:
            self.paused = False
            self._pump()

    def stopProducing(self):
        self._stop()
