"""A CGI run's standard input: the request body fed to the program as it
arrives, the client paused while the program's pipe is full."""

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

# Body bytes fed to the program that count as progress for CGITimeout (a
# trickle of a few bytes a minute must not hold a slot for ever).
FED_PROGRESS = 16384


@implementer(IPushProducer)
class _BodyThrottle:
    """Producer registered on the script's stdin: a full pipe pauses the client."""

    def __init__(self, run):
        self.run = run
        self.paused = False

    def pauseProducing(self):
        # Every time the pipe's buffer is over its mark, not only the first:
        # the engine may have resumed reading meanwhile (stream_body does).
        self.paused = True
        self.run.request.pause_body()

    def resumeProducing(self):
        if self.paused:
            self.paused = False
            self.run.request.resume_body()

    def stopProducing(self):
        # stdin closed (the script exited or closed it): drop the rest of the body.
        self.run._stdin_gone()


class StdinFeeding:
    """CGIRun's part that feeds the program's stdin (a mixin: one object per run)."""

    __slots__ = ()

    def _has_body(self):
        # What the program is told (a request answering a local redirect has
        # no body of its own, whatever the first request carried).
        return self.env.get("CONTENT_LENGTH") not in (None, "0", b"0")

    # -- request body -> stdin --------------------------------------------------

    def _body_data(self, data):
        if self.stdin_open and 0 in self.process.pipes:
            # An upload still arriving is progress: CGITimeout runs from the
            # last FED_PROGRESS bytes fed to the program as from its last
            # output (a program reading its whole body before answering must
            # not be cut off while a slow client is still sending) -- but a
            # trickle of a few bytes a minute does not hold the slot.
            fed = self.body_fed + len(data)
            if fed >= FED_PROGRESS:
                fed = 0
                self._touch()
            self.body_fed = fed
            self.process.write(data)

    def _body_end(self):
        if self.stdin_open:
            self.stdin_open = False
            self._release_stdin()
            self.process.closeStdin()

    def _release_stdin(self):
        # A writer closes only once its buffer drains, and a drained writer
        # with a paused producer resumes the producer *instead of* closing
        # (Twisted's FileDescriptor.doWrite): unregister before closing.
        writer = self.process.pipes.get(0) if self.process is not None else None
        if writer is not None and writer.producer is not None:
            writer.unregisterProducer()

    def _stdin_gone(self):
        self.stdin_open = False
        if self.throttle is not None and self.throttle.paused:
            self.throttle.paused = False
            self.request.resume_body()

    def _close_stdin(self):
        """Stop feeding the script (its answer is complete or abandoned)."""
        if self.throttle is not None or self.stdin_open:
            self._stdin_gone()
        process = self.process
        if process is not None and 0 in process.pipes:
            self._release_stdin()
            process.closeStdin()
