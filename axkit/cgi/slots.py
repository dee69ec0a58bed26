"""CGIMaxProcesses: the cap on concurrent CGI programs, and the programs
still running when the server stops."""

import collections
import signal
import time

from twisted.internet.defer import Deferred

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL


class Slots:
    """The cap on concurrent CGI processes (shared by every config generation)."""

    def __init__(self):
        self.used = 0
        self.running = set()  # CGIRun objects whose process is alive
        self._hooked = False
        self.waiting = collections.deque()  # (Deferred, timer) for wait()

    def take(self, limit):
        if limit and self.used >= limit:
            return False
        self.used += 1
        return True

    def wait(self, reactor, timeout):
        """A Deferred firing True once a slot is taken for the caller, or
        False after ``timeout`` seconds without one."""
        d = Deferred()
        entry = [d, None]

        def expire():
            entry[1] = None
            try:
                self.waiting.remove(entry)
            except ValueError:
                pass
            d.callback(False)

        entry[1] = reactor.callLater(timeout, expire)
        self.waiting.append(entry)
        return d

    def give(self):
        self.used -= 1
        if self.waiting:
            # A slot freed: the longest waiting request has it.
            d, timer = self.waiting.popleft()
            if timer is not None and timer.active():
                timer.cancel()
            self.used += 1
            d.callback(True)

    def on_shutdown(self, reactor):
        """Once: when the reactor shuts down -- after the service's graceful
        drain, not on a config reload -- no script outlives the server."""
        if not self._hooked:
            self._hooked = True
            reactor.addSystemEventTrigger("during", "shutdown", self.terminate_all)

    def terminate_all(self):
        """Kill every running script's process group (the server is stopping).

        The reactor is stopping: the SIGKILL timer of _kill would never run.
        So this waits here, at most KILL_GRACE, for the groups to go, then
        SIGKILLs what is left -- the server serves nobody any more, and no
        program may outlive it (one ignoring SIGTERM would)."""
        runs = [run for run in self.running if run.process is not None and not run.ended]
        for run in runs:
            run._kill("server stopping")
        groups = [run.process for run in runs]
        deadline = time.monotonic() + KILL_GRACE
        while groups:
            groups = [group for group in groups if group.group_alive()]
            if not groups or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        for group in groups:
            group.kill_group(signal.SIGKILL)


SLOTS = Slots()
