"""The supervisor of ``Workers N``: the twistd service when N > 1.

It binds every listener (in privilegedStartService: before twistd drops
privileges) and runs N worker processes that serve them
(``python -m axkit.workers.worker``, spawned through the reactor, which
reaps them).  It serves no request itself.

- a worker that exits unasked is replaced at once (after a second if it
  had lived less than one: a crash loop does not spin);
- SIGHUP: the config is read and checked here first (a bad one is logged
  ``file:line: ...`` and the old workers keep serving); then slot by slot
  a new worker is started, and once it accepts the old one is told to
  stop (SIGTERM: it stops accepting, finishes its requests, exits);
- SIGTERM/SIGINT: every worker drains and exits, then the supervisor;
- SIGUSR1: the supervisor reopens its logs and passes the signal on;
- the workers' stdout and stderr come to the supervisor through pipes and
  are written out a whole line at a time, so lines of different workers
  never interleave.

systemd sees the supervisor as the main PID: READY=1 once every worker
accepts, RELOADING=1/READY=1 around a reload (tap wraps ``reload``),
STOPPING=1.
"""

import os
import shutil
import signal
import sys
import tempfile

from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.logger import ILogObserver, Logger

from axkit import signals
from axkit.log import LogRouter, flush_all, reopen_all
from axkit.server import ConfigHolder, _describe
from axkit.systemd import notify

from . import figures
from .process import WorkerProcess, why
from .sockets import Listener, mode

log = Logger(namespace="axkit.workers")

READY_TIMEOUT = 60.0  # seconds a new worker may take to accept
KILL_AFTER = 5.0  # seconds past GracefulShutdownTimeout before SIGKILL
QUICK_DEATH = 1.0  # a worker dying younger than this is restarted after this
# What a worker must not inherit: systemd's notify/watchdog socket and
# socket-activation variables are the supervisor's.
PRIVATE_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID",
               "LISTEN_FDNAMES")  # fmt: skip


class Supervisor(MultiService):
    """Binds the listeners and keeps ``Workers`` processes serving them."""

    def __init__(self, config, path=None, reactor=None):
        MultiService.__init__(self)
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.holder = ConfigHolder(config, path)
        self.log_router = LogRouter(self.holder)
        self.listeners = {}  # endpoint -> Listener
        self.workers = {}  # slot -> the WorkerProcess serving it
        self.alive = set()  # every worker not yet exited (retiring ones too)
        self.stopping = False
        self.load_config = None  # () -> SiteConfig for reloads (tests)
        self.status_dir = None
        self.generation = 1
        self._reloading = None
        self._again = False
        self._old_signals = {}
        self._flusher = None
        self.drop_to = None  # (uid, gid) the workers drop to (twistd -u/-g)

    @property
    def count(self):
        return self.holder.config.global_resolved.conf.workers

    def take_privilege_drop(self, options):
        """``twistd -u/-g`` as root: twistd is not to drop the supervisor's
        privileges; each worker drops to that user itself once it has opened
        its log files (and started its root-held log opener), as Apache's
        root parent and its children do.  The supervisor serves nothing."""
        parent = getattr(options, "parent", None)
        try:
            uid, gid = parent["uid"], parent["gid"]
        except (KeyError, TypeError):
            return
        if os.geteuid() != 0 or (uid is None and gid is None):
            return
        if uid is not None and gid is None:
            import pwd

            gid = pwd.getpwuid(uid).pw_gid
        self.drop_to = (uid, gid)
        parent["uid"] = parent["gid"] = None

    def serving_figures(self):
        """(open connections, requests read since start) over the workers,
        for systemd's STATUS= line (axkit.systemd.StatusReporter)."""
        if self.status_dir is None:
            return 0, 0
        return figures.serving_figures(self.status_dir)

    def setServiceParent(self, parent):
        try:
            parent.setComponent(ILogObserver, self.log_router)
        except (AttributeError, TypeError):
            pass
        return MultiService.setServiceParent(self, parent)

    # -- starting --------------------------------------------------------------

    def privilegedStartService(self):
        from axkit.log import open_early, scope_values

        open_early(scope_values(self.holder.config, "errorlog"))
        # Before binding: a SIGHUP sent on seeing "listening" must not end
        # the process.
        self.install_signal_handlers()
        self.bind(self.holder.config.listeners)
        MultiService.privilegedStartService(self)

    def bind(self, endpoints):
        """Bind the endpoints not bound yet; returns the new Listeners."""
        added = []
        try:
            for endpoint in endpoints:
                if endpoint in self.listeners:
                    continue
                listener = Listener(endpoint, mode())
                listener.bind(self.reactor, self.count)
                self.listeners[endpoint] = listener
                added.append(listener)
                log.info(
                    "axkit listening on {endpoint} ({address}), {n} workers ({mode})",
                    endpoint=endpoint,
                    address=_describe(
                        listener.address, "https" if listener.kind == "ssl" else "http"
                    ),
                    n=self.count,
                    mode=listener.mode,
                )
        except BaseException:
            for listener in added:
                self.listeners.pop(listener.endpoint, None)
                listener.close()
            raise
        return added

    def startService(self):
        if not self.listeners:
            self.bind(self.holder.config.listeners)
        MultiService.startService(self)
        # Made after twistd dropped privileges: the workers write in it.
        self.status_dir = tempfile.mkdtemp(prefix="axkit-workers-")
        if self.drop_to is not None:
            os.chown(self.status_dir, *(-1 if i is None else i for i in self.drop_to))
        figures.start_folder(self.status_dir, self.generation)
        self.install_signal_handlers()
        from twisted.internet.task import LoopingCall

        self._flusher = LoopingCall(flush_all)
        self._flusher.clock = self.reactor
        self._flusher.start(1.0, now=False)
        first = [self.spawn(slot).ready for slot in range(self.count)]
        defer.DeferredList(first, fireOnOneErrback=True, consumeErrors=True).addCallbacks(
            self._all_ready, self._start_failed
        )

    def _all_ready(self, _):
        log.info(
            "{n} workers accepting (pids {pids})",
            n=len(self.workers),
            pids=" ".join(str(w.pid) for w in self.workers.values()),
        )
        notify(
            f"READY=1\nSTATUS={len(self.workers)} workers on "
            f"{', '.join(self.holder.config.listeners)}\nMAINPID={os.getpid()}"
        )

    def _start_failed(self, failure):
        if self.stopping:
            return
        self.stopping = True  # no replacements: the config cannot serve
        if isinstance(failure.value, defer.FirstError):
            failure = failure.value.subFailure
        log.error("a worker failed to start ({why}): stopping", why=why(failure))
        self.reactor.callLater(0, self.reactor.stop)
        # As a single process that cannot start: exit 1, not 0 (for
        # systemd's Restart=on-failure).  twistd has no exit status of its
        # own to set; this runs after its clean-up, at interpreter exit.
        import atexit

        atexit.register(_exit_failed)

    def spawn(self, slot):
        """Start a worker for ``slot`` on the current config's listeners."""
        worker = WorkerProcess(self, slot, self.generation)
        child_fds = {0: "w", 1: "r", 2: "r", 3: "r"}
        args = [sys.executable, "-m", "axkit.workers.worker", "--slot", str(slot),
                "--control", "3", "--status-dir", self.status_dir]  # fmt: skip
        if self.holder.path is not None:
            args += ["--config", self.holder.path]
        if self.drop_to is not None:
            uid, gid = self.drop_to
            args += [
                "--uid",
                str(-1 if uid is None else uid),
                "--gid",
                str(-1 if gid is None else gid),
            ]
        fd = 4
        for endpoint in self.holder.config.listeners:
            sock = self.listeners[endpoint].socket_for(slot)
            child_fds[fd] = sock.fileno()
            args += ["--socket", f"{fd}:{int(sock.family)}:{endpoint}"]
            fd += 1
        env = {k: v for k, v in os.environ.items() if k not in PRIVATE_ENV}
        # The supervisor's import path (twistd may have added to it).
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self.reactor.spawnProcess(worker, sys.executable, args, env=env, childFDs=child_fds)
        self.alive.add(worker)
        self.workers[slot] = worker
        log.debug("worker {pid} started (slot {slot})", pid=worker.pid, slot=slot)
        return worker

    # -- a worker's end --------------------------------------------------------

    def worker_ended(self, worker, reason):
        self.alive.discard(worker)
        if self.status_dir is not None:
            figures.retire_worker(self.status_dir, worker.pid)
        if self.workers.get(worker.slot) is not worker or worker.retiring or self.stopping:
            return
        del self.workers[worker.slot]
        if not worker.accepting:
            return  # failed to start: whoever waits for it says so
        lived = self.reactor.seconds() - worker.started
        log.error(
            "worker {pid} (slot {slot}) exited unasked ({why}); starting another",
            pid=worker.pid,
            slot=worker.slot,
            why=why(reason),
        )
        delay = QUICK_DEATH if lived < QUICK_DEATH else 0
        self.reactor.callLater(delay, self._replace, worker.slot, self.reactor.seconds())

    def _replace(self, slot, since=None):
        if self.stopping or slot in self.workers or slot >= self.count:
            return
        replacement = self.spawn(slot)
        if since is not None:
            replacement.ready.addCallback(self._replaced, since)
        replacement.ready.addErrback(self._replacement_failed, slot)

    def _replaced(self, worker, since):
        log.info(
            "worker {pid} accepting in slot {slot}, {took:.2f}s after its predecessor exited",
            pid=worker.pid,
            slot=worker.slot,
            took=self.reactor.seconds() - since,
        )
        return worker

    def _replacement_failed(self, failure, slot):
        if self.stopping:
            return
        log.error("worker for slot {slot} failed to start; trying again in 1s", slot=slot)
        self.workers.pop(slot, None)
        self.reactor.callLater(QUICK_DEATH, self._replace, slot)

    def retire(self, worker):
        """Tell ``worker`` to stop accepting, finish its requests and exit;
        SIGKILL if it has not after GracefulShutdownTimeout + KILL_AFTER."""
        worker.retiring = True
        worker.signal(signal.SIGTERM)
        timeout = self.holder.config.global_resolved.conf.graceful_shutdown_timeout
        killer = self.reactor.callLater(timeout + KILL_AFTER, worker.signal, signal.SIGKILL)
        worker.ended.addBoth(lambda _: killer.active() and killer.cancel())
        return worker.ended

    # -- output ----------------------------------------------------------------

    def write_lines(self, fd, data):
        """Whole lines a worker wrote on its stdout (fd 1) or stderr (2)."""
        stream = sys.__stdout__ if fd == 1 else sys.__stderr__
        if stream is None:
            return
        try:
            stream.flush()
            stream.buffer.write(data)
            stream.buffer.flush()
        except AttributeError:  # a text stream without a buffer
            stream.write(data.decode("utf-8", "backslashreplace"))
            stream.flush()
        except (OSError, ValueError):
            pass

    # -- signals ---------------------------------------------------------------

    def install_signal_handlers(self):
        signals.install(
            self.reactor,
            self._old_signals,
            {signal.SIGHUP: self.reload, signal.SIGUSR1: self.reopen_logs},
        )

    def restore_signal_handlers(self):
        signals.restore(self._old_signals)

    def reopen_logs(self):
        reopen_all()
        for worker in list(self.alive):
            worker.signal(signal.SIGUSR1)
        log.info("log files reopened (and {n} workers told)", n=len(self.alive))

    # -- reload ----------------------------------------------------------------

    def reload(self, new_config=None):
        """SIGHUP: check the config, then replace the workers one by one.
        A Deferred firing True once every slot serves the new config, False
        if it was refused (the old workers keep serving)."""
        if self._reloading is not None:
            self._again = True  # one more round once this one ends
            return self._reloading
        d = self._reloading = defer.ensureDeferred(self._reload(new_config))

        def done(result):
            self._reloading = None
            if self._again and not self.stopping:
                self._again = False
                self.reload()
            return result

        return d.addBoth(done)

    async def _reload(self, new_config):
        source = self.holder.path or self.holder.config.source
        if new_config is None:
            new_config = self.holder.read_again(
                self.load_config, keeps="the workers keep serving the old one"
            )
            if new_config is None:
                return False
        old_config = self.holder.config
        old_count = self.count
        self.holder.config = new_config
        try:
            added = self.bind(new_config.listeners)
            for listener in self.listeners.values():
                listener.grow(self.count)
        except SystemExit as e:
            self.holder.config = old_config
            log.error("reload refused: {error}; still serving the old one", error=str(e))
            return False
        self.generation += 1
        figures.set_generation(self.status_dir, self.generation)
        new_count = self.count
        for slot in range(max(old_count, new_count)):
            if self.stopping:
                return False
            old = self.workers.get(slot)
            if slot < new_count:
                new = self.spawn(slot)
                if old is not None:
                    self.workers[slot] = new
                try:
                    await self._ready_in_time(new)
                except Exception as e:
                    if self.stopping:
                        return False  # stopped meanwhile: not a failure to report
                    log.error(
                        "reload: the new worker for slot {slot} did not start ({why}); "
                        "the remaining workers keep the old config",
                        slot=slot,
                        why=why(e),
                    )
                    if old is not None and not old.exited:
                        self.workers[slot] = old
                    else:
                        self.workers.pop(slot, None)
                        self.reactor.callLater(QUICK_DEATH, self._replace, slot)
                    if slot == 0:
                        self.holder.config = old_config
                        for listener in added:
                            self.listeners.pop(listener.endpoint, None)
                            listener.close()
                    return False
            else:
                self.workers.pop(slot, None)
            if old is not None:
                self.retire(old)
        # Listeners the new config dropped close once their workers are gone.
        # So do the SO_REUSEPORT sockets of slots Workers no longer has: the
        # kernel would go on queueing connections on them for nobody.
        removed = [ep for ep in self.listeners if ep not in new_config.listeners]
        if removed or new_count < old_count:
            draining = [w.ended for w in self.alive if w.generation < self.generation]
            defer.DeferredList(draining).addCallback(lambda _: self._close(removed))
        log.info(
            "config {source} reloaded: {n} workers (generation {generation})",
            source=source,
            n=new_count,
            generation=self.generation,
        )
        return True

    def _ready_in_time(self, worker):
        timer = self.reactor.callLater(READY_TIMEOUT, worker.signal, signal.SIGKILL)
        worker.ready.addBoth(lambda r: (timer.active() and timer.cancel(), r)[1])
        # A copy: the caller's failure handling must not consume the original.
        d = defer.Deferred()
        worker.ready.addCallbacks(d.callback, d.errback)
        worker.ready.addErrback(lambda f: None)
        return d

    def _close(self, endpoints):
        for listener in self.listeners.values():
            listener.shrink(self.count)
        for endpoint in endpoints:
            if endpoint in self.holder.config.listeners:
                continue  # listened to again since
            listener = self.listeners.pop(endpoint, None)
            if listener is not None:
                listener.close()
                log.info("stopped listening on {endpoint}", endpoint=endpoint)

    # -- stopping --------------------------------------------------------------

    def stopService(self):
        """SIGTERM/SIGINT: every worker drains (GracefulShutdownTimeout) and
        exits; then the listeners close."""
        notify("STOPPING=1")
        self.stopping = True
        MultiService.stopService(self)
        self.restore_signal_handlers()
        if self._flusher is not None and self._flusher.running:
            self._flusher.stop()
        waits = [self.retire(w) for w in list(self.alive)]
        if waits:
            log.info("graceful shutdown: stopping {n} workers", n=len(waits))

        def finished(_):
            closed = [listener.close() for listener in self.listeners.values()]
            self.listeners.clear()
            if self.status_dir is not None:
                shutil.rmtree(self.status_dir, ignore_errors=True)
            from axkit._compat import forget_exit_signal

            forget_exit_signal(self.reactor, (signal.SIGTERM, signal.SIGINT))
            log.info("graceful shutdown complete")
            flush_all()
            return defer.DeferredList(closed)

        return defer.DeferredList(waits).addCallback(finished)


def _exit_failed():
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)
