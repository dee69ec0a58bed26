"""The service tree: one listening port per Listen endpoint, all sharing the
live config through a ConfigHolder (so a reload can swap it in place).

SIGHUP reloads the config: it is read and validated first; if it loads,
listeners are opened and closed to match and the new config is swapped in
for new requests, while requests in flight finish on the objects they hold.
If it fails, the errors are logged and the old config stays.  SIGUSR1
reopens the log files (logrotate).

Why one class of ~420 lines: starting, reloading and stopping are the
three ways the same set of listeners, factories and configs change, and
each must see the others' state (a reload during a drain, a stop during a
reload); split, they would share it through a second object.  What can
live apart does: TLS listeners in axkit/tls.py, the backlog, descriptor
limit and address wording in axkit/listening.py, the root-held log opener
in axkit/logopener.py, sd_notify in axkit/systemd.py.
"""

import gc
import os
import signal

from twisted.application.service import MultiService
from twisted.internet.endpoints import serverFromString
from twisted.logger import ILogObserver, Logger

from axkit import signals
from axkit._compat import forget_exit_signal
from axkit.gcstats import GCStats
from axkit.http.factory import ConnectionGate, Drain, HTTPFactory

# (with_backlog and _describe: also imported from here by axkit.workers)
from axkit.listening import DEFAULT_BACKLOG, raise_fd_limit, with_backlog
from axkit.listening import describe as _describe
from axkit.log import LogRouter, flush_all, reopen_all
from axkit.pipeline import Pipeline
from axkit.systemd import notify
from axkit.tls import is_tls

log = Logger(namespace="axkit.server")


class ConfigHolder:
    """Where the live SiteConfig is; requests read it when they start."""

    def __init__(self, config, path=None):
        self.config = config
        self.path = path
        self.generation = 1  # bumped by every successful reload

    def read_again(self, load_config=None, keeps="still serving the old one"):
        """The config read again for a reload (``load_config()`` when given,
        else the file, else the built-in config), or None when it is refused:
        its errors are logged (``file:line: ...``) ending with ``keeps``."""
        from axkit.config.errors import ConfigErrors

        source = self.path or self.config.source
        try:
            if load_config is not None:
                return load_config()
            from axkit.config.loader import load_file, load_string

            if self.path is not None:
                return load_file(self.path)
            from axkit.tap import default_config_text

            return load_string(default_config_text(), "<built-in config>")
        except ConfigErrors as e:
            for error in e.errors:
                log.error("reload refused: {error}", error=str(error))
            log.error(
                "config {source} has {n} error(s); {keeps}",
                source=source,
                n=len(e.errors),
                keeps=keeps,
            )
        except Exception:
            log.failure("reload of {source} failed; {keeps}", source=source, keeps=keeps)
        return None


class AxKitService(MultiService):
    """Listens on every endpoint of the config and serves through the hooks."""

    def __init__(self, config, path=None, reactor=None, handle_signals=True):
        MultiService.__init__(self)
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.holder = ConfigHolder(config, path)
        self.ports = {}  # endpoint string -> IListeningPort
        self.factories = {}  # endpoint string -> HTTPFactory
        self.log_router = LogRouter(self.holder)
        self.gate = ConnectionGate(config.global_resolved.conf.max_connections)
        raise_fd_limit(self.gate, self.holder.config)
        self.load_config = None  # () -> SiteConfig for reloads; set by tap/testing
        self._flusher = None
        self._old_signals = {}
        self.handle_signals = handle_signals
        self.retired_factories = []  # of listeners a reload closed (still draining)
        self.dev_reload = False  # --reload (axkit.reload); set by tap
        from axkit.tls import TLSListeners

        self.tls = TLSListeners()  # the ssl: listeners' certificates
        self.drop_to_uid = None  # twistd -u: the user privileges are dropped to (set by tap)
        self.log_opener = None  # axkit.logopener.LogOpener, while root-held
        # A worker of `Workers N` (axkit.workers): (endpoint, factory) -> a
        # Deferred port on the socket the supervisor bound, instead of binding.
        self.adopt = None

    def setServiceParent(self, parent):
        # twistd asks its Application for an ILogObserver before it starts
        # logging: ours sends every event through the `logging` hook.
        try:
            parent.setComponent(ILogObserver, self.log_router)
        except (AttributeError, TypeError):
            pass
        return MultiService.setServiceParent(self, parent)

    def start_plugins(self, config=None):
        """Plugins' ``startup(config, reactor)``, once, before anything
        listens (an ASGI app's lifespan startup).  One that raises stops
        the server: SystemExit with its message."""
        config = config or self.holder.config
        if getattr(config, "_plugins_started", False):
            return
        config._plugins_started = True
        for name, plugin in config.plugins.items():
            startup = getattr(plugin, "startup", None)
            if startup is not None:
                try:
                    startup(config, self.reactor)
                except Exception as e:
                    raise SystemExit(f"axkit: plugin {name} failed to start: {e}")

    def privilegedStartService(self):
        # Handlers first: "listening" is logged as each port is bound, and a
        # SIGHUP or SIGUSR1 sent on seeing it must not end the process.
        self.install_signal_handlers()
        self.start_plugins()
        # Listen before privileges are dropped (ports below 1024).
        for endpoint in self.holder.config.listeners:
            self.listen(endpoint)
        self._start_log_opener()
        MultiService.privilegedStartService(self)

    def startService(self):
        self.start_plugins()
        for endpoint in self.holder.config.listeners:
            if endpoint not in self.ports:
                self.listen(endpoint)
        MultiService.startService(self)
        if self.dev_reload:
            from axkit.reload import Reloader

            Reloader(self).start()
        self._start_log_flusher()
        self.install_signal_handlers()
        # Objects alive at start-up never need collecting: keep them out of
        # the collector's full passes.
        gc.collect()
        gc.freeze()
        if os.environ.get("AXKIT_GC_STATS"):
            self.gc_stats = GCStats(os.environ["AXKIT_GC_STATS"])
        # Under systemd (Type=notify): ready once listening *and* running --
        # the reactor installs its SIGTERM/SIGINT handlers as it starts, so
        # a stop sent right after READY=1 is a graceful one.
        self.reactor.callWhenRunning(self._notify_ready)

    def _notify_ready(self):
        notify(
            f"READY=1\nSTATUS=listening on {', '.join(self.holder.config.listeners)}\n"
            f"MAINPID={os.getpid()}"
        )

    def listen(self, endpoint):
        factory = HTTPFactory(Pipeline(self.holder, endpoint), self.reactor, self.gate)
        if self.adopt is not None:
            return self.adopt(endpoint, factory).addCallback(self._listening, endpoint, factory)
        if self.dev_reload:
            # --reload: the socket the process had before it re-executed.
            from axkit.reload import adopt

            d = adopt(self.reactor, endpoint, self.tls.wrap(endpoint, self.holder.config, factory))
            if d is not None:
                return d.addCallback(self._listening, endpoint, factory)
        try:
            server_endpoint = self._server_endpoint(endpoint)
        except (IndexError, KeyError) as e:
            if not endpoint.lower().startswith("systemd:"):
                raise SystemExit(f"axkit: cannot listen on {endpoint}: {e!r}")
            # Twisted's systemd: parser looks the inherited socket up by
            # index or name; say why it is not there.
            from axkit.systemd import activation_problem

            raise SystemExit(f"axkit: cannot listen on {endpoint}: {activation_problem(endpoint)}")
        except Exception as e:
            raise SystemExit(f"axkit: cannot listen on {endpoint}: {e}")
        d = server_endpoint.listen(factory)
        failures = []
        d.addCallback(self._listening, endpoint, factory)
        d.addErrback(failures.append)
        if failures:
            raise SystemExit(f"axkit: cannot listen on {endpoint}: {failures[0].getErrorMessage()}")
        return d

    def _listening(self, port, endpoint, factory):
        self.ports[endpoint] = port
        self.gate.ports.append(port)
        self.factories[endpoint] = factory
        host = port.getHost()
        log.info(
            "axkit listening on {endpoint} ({address})",
            endpoint=endpoint,
            address=_describe(host, "https" if is_tls(endpoint) else "http"),
        )
        return port

    def stopService(self):
        """Graceful stop (SIGTERM, SIGINT): stop accepting at once, close
        idle keep-alive connections, let responses in progress finish
        within GracefulShutdownTimeout, then cut what is left."""
        notify("STOPPING=1")
        MultiService.stopService(self)
        from twisted.internet import defer
        from twisted.internet.defer import gatherResults

        self.restore_signal_handlers()
        if self._flusher is not None and self._flusher.running:
            self._flusher.stop()
        ds = [port.stopListening() for port in self.ports.values()]
        self.ports.clear()
        self.gate.ports = []
        factories = list(self.factories.values()) + self.retired_factories
        timeout = self.holder.config.global_resolved.conf.graceful_shutdown_timeout
        drain = Drain(
            self.reactor,
            factories,
            timeout,
            lambda count: log.warn(
                "graceful shutdown: cutting {count} connection(s) still open after {timeout}s",
                count=count,
                timeout=timeout,
            ),
        )
        drained = drain.done

        def cut_now():
            # A second SIGTERM/SIGINT during the drain: stop waiting.
            drain.cut(
                lambda count: log.warn(
                    "graceful shutdown: second signal, cutting {count} connection(s) now",
                    count=count,
                )
            )

        previous = {}
        if not drained.called:
            log.info(
                "graceful shutdown: waiting for {count} connection(s)", count=drain.open_count()
            )
            if self.handle_signals:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    try:
                        previous[signum] = signal.signal(
                            signum, lambda n, f: self.reactor.callFromThread(cut_now)
                        )
                    except ValueError:
                        pass  # not the main thread

        def finished(_):
            for signum, handler in previous.items():
                try:
                    signal.signal(signum, handler)
                except (ValueError, TypeError):
                    pass
            # A drained stop is a clean stop: twistd would otherwise re-raise
            # SIGTERM/SIGINT at exit (status -15/-2); we exit 0.
            forget_exit_signal(self.reactor, (signal.SIGTERM, signal.SIGINT))
            log.info("graceful shutdown complete")
            gc_stats = getattr(self, "gc_stats", None)
            if gc_stats is not None:
                gc_stats.write()
            for factory in factories:
                factory.wheel.stop()
            # Plugins' ``shutdown()`` (an ASGI app's lifespan shutdown),
            # after the last request; a Deferred is waited for.
            stops = [
                defer.maybeDeferred(plugin.shutdown)
                for plugin in self.holder.config.plugins.values()
                if getattr(plugin, "shutdown", None) is not None
            ]
            for stop in stops:
                stop.addErrback(lambda f: log.failure("plugin shutdown", failure=f))
            return gatherResults(stops).addCallback(flushed)

        def flushed(_):
            for plugin in self.holder.config.plugins.values():
                flush = getattr(plugin, "flush", None)
                if flush is not None:
                    flush()
            flush_all()
            self._stop_log_opener()
            return None

        ds = [d for d in ds if d is not None] + [drained]
        return gatherResults(ds).addCallback(finished)

    # -- log files -------------------------------------------------------------

    def _start_log_flusher(self):
        from twisted.internet.task import LoopingCall

        self._flusher = LoopingCall(flush_all)
        self._flusher.clock = self.reactor
        self._flusher.start(1.0, now=False)

    def _start_log_opener(self):
        """As root with twistd -u: log files reopen (SIGUSR1) and TLS files
        are re-read (SIGHUP) through a process that stays root."""
        if self.log_opener is None:
            from axkit import logopener

            self.log_opener = logopener.start_for(self.holder.config, self.drop_to_uid)

    def _stop_log_opener(self):
        from axkit import logopener

        logopener.stop(self.log_opener)
        self.log_opener = None

    # -- signals ---------------------------------------------------------------

    def install_signal_handlers(self):
        """SIGHUP: reload the config; SIGUSR1: reopen log files."""
        if self.handle_signals:
            signals.install(
                self.reactor,
                self._old_signals,
                {signal.SIGHUP: self.reload, signal.SIGUSR1: self.reopen_logs},
            )

    def restore_signal_handlers(self):
        signals.restore(self._old_signals)

    def reopen_logs(self):
        reopen_all()
        log.info("log files reopened")

    # -- reload ----------------------------------------------------------------

    def reload(self, new_config=None):
        """Read and validate the config again and swap it in.

        Returns a Deferred firing with True when the new config is live,
        False when it was refused (errors are logged; the old one stays).
        """
        from twisted.internet import defer

        source = self.holder.path or self.holder.config.source
        if new_config is None:
            new_config = self.holder.read_again(self.load_config)
            if new_config is None:
                return defer.succeed(False)
        try:
            self.start_plugins(new_config)
        except SystemExit as e:
            log.error("reload refused: {error}; still serving the old one", error=str(e))
            return defer.succeed(False)
        old = self.holder.config
        wanted = list(new_config.listeners)
        added = [ep for ep in wanted if ep not in self.ports]
        removed = [ep for ep in self.ports if ep not in new_config.listeners]
        opened = []
        ds = []
        for endpoint in added:
            try:
                ds.append(self._listen_for_reload(endpoint, opened))
            except Exception as e:
                ds.append(defer.fail(e))
        d = defer.DeferredList(ds, consumeErrors=True)

        def opened_all(results):
            failures = [r for ok, r in results if not ok]
            if failures:
                for f in failures:
                    log.error("reload refused: {error}", error=f.getErrorMessage())
                for endpoint, port in opened:
                    self.ports.pop(endpoint, None)
                    self.factories.pop(endpoint, None)
                    if port in self.gate.ports:
                        self.gate.ports.remove(port)
                    port.stopListening()
                log.error("config {source} not reloaded; still serving the old one", source=source)
                return False
            self.holder.config = new_config
            self.tls.renew(new_config, log)
            self.holder.generation += 1
            self.gate.maximum = new_config.global_resolved.conf.max_connections
            raise_fd_limit(self.gate, self.holder.config)
            for endpoint in removed:
                port = self.ports.pop(endpoint)
                if port in self.gate.ports:
                    self.gate.ports.remove(port)
                factory = self.factories.pop(endpoint, None)
                self.tls.forget(endpoint)
                if factory is not None:
                    self.retired_factories.append(factory)
                # Only the listening socket closes: open connections carry on.
                port.stopListening()
                log.info("stopped listening on {endpoint}", endpoint=endpoint)
            for plugin in old.plugins.values():
                flush = getattr(plugin, "flush", None)
                if flush is not None:
                    flush()
            log.info(
                "config {source} reloaded (generation {generation})",
                source=source,
                generation=self.holder.generation,
            )
            return True

        return d.addCallback(opened_all)

    def _listen_for_reload(self, endpoint, opened):
        factory = HTTPFactory(Pipeline(self.holder, endpoint), self.reactor, self.gate)
        d = self._server_endpoint(endpoint).listen(factory)

        def listening(port):
            opened.append((endpoint, port))
            return self._listening(port, endpoint, factory)

        return d.addCallback(listening)

    def _server_endpoint(self, endpoint):
        """The endpoint to listen on: Twisted's from the string, or for
        ``ssl:`` axkit's TLS listener (axkit/tls.py: SNI, reloads)."""
        if is_tls(endpoint):
            return self.tls.endpoint(self.reactor, endpoint, self.holder.config, DEFAULT_BACKLOG)
        return serverFromString(self.reactor, with_backlog(endpoint))

    def serving_figures(self):
        """(open connections, requests read since start) for systemd's
        STATUS= line; worked out when asked."""
        factories = list(self.factories.values()) + self.retired_factories
        requests = sum(
            f.closed_requests + sum(c.requests for c in f.connections) for f in factories
        )
        return self.gate.count, requests

    def port_numbers(self):
        return {
            ep: p.getHost().port for ep, p in self.ports.items() if hasattr(p.getHost(), "port")
        }
