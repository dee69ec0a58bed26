"""One worker seen from the supervisor (axkit.workers.supervisor): the
ProcessProtocol of its pipes -- stdout and stderr passed on a whole line at
a time, the control pipe's ``ready`` -- and its fate."""

import signal

from twisted.internet import defer
from twisted.internet.protocol import ProcessProtocol


class WorkerProcess(ProcessProtocol):
    """One worker seen from the supervisor: its pipes and its fate."""

    def __init__(self, supervisor, slot, generation):
        self.supervisor = supervisor
        self.slot = slot
        self.generation = generation
        self.pid = None
        self.started = supervisor.reactor.seconds()
        self.ready = defer.Deferred()  # fires when it accepts; fails if it dies first
        self.ended = defer.Deferred()  # fires when it has exited
        self.accepting = False  # said it accepts (the ready line came)
        self.retiring = False  # told to stop (reload, shutdown)
        self.exited = False
        self._partial = {1: b"", 2: b""}
        self._control = b""

    def connectionMade(self):
        self.pid = self.transport.pid

    def childDataReceived(self, fd, data):
        if fd in self._partial:
            data = self._partial[fd] + data
            cut = data.rfind(b"\n") + 1
            self._partial[fd] = data[cut:]
            if cut:
                self.supervisor.write_lines(fd, data[:cut])
        elif fd == 3:
            self._control += data
            if b"\n" in self._control and not self.ready.called:
                self.accepting = True
                self.ready.callback(self)

    def signal(self, signum):
        if not self.exited:
            try:
                self.transport.signalProcess(signum)
            except Exception:  # ProcessExitedAlready
                pass

    def processEnded(self, reason):
        self.exited = True
        for fd, rest in self._partial.items():
            if rest:
                self.supervisor.write_lines(fd, rest + b"\n")
        self._partial = {1: b"", 2: b""}
        if not self.ready.called:
            self.ready.errback(reason)
        self.supervisor.worker_ended(self, reason)
        self.ended.callback(self)


def why(reason):
    value = getattr(reason, "value", reason)
    exit_code = getattr(value, "exitCode", None)
    sig = getattr(value, "signal", None)
    if sig:
        try:
            return f"signal {signal.Signals(sig).name}"
        except ValueError:
            return f"signal {sig}"
    if exit_code is not None:
        return f"exit status {exit_code}"
    return str(value)
