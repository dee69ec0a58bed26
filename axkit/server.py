"""The service tree: one listening port per Listen endpoint, all sharing the
live config through a ConfigHolder (so a reload can swap it in place)."""

import gc

from twisted.application.service import MultiService
from twisted.internet.endpoints import serverFromString
from twisted.logger import ILogObserver, Logger

from axkit.http.connection import ConnectionGate, HTTPFactory
from axkit.log import LogRouter
from axkit.pipeline import Pipeline

log = Logger(namespace="axkit.server")


class ConfigHolder:
    """Where the live SiteConfig is; requests read it when they start."""

    def __init__(self, config, path=None):
        self.config = config
        self.path = path


class AxKitService(MultiService):
    """Listens on every endpoint of the config and serves through the hooks."""

    def __init__(self, config, path=None, reactor=None):
        MultiService.__init__(self)
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.holder = ConfigHolder(config, path)
        self.ports = {}          # endpoint string -> IListeningPort
        self.factories = {}      # endpoint string -> HTTPFactory
        self.log_router = LogRouter(self.holder)
        self.gate = ConnectionGate(config.global_resolved.conf.max_connections)
        self._raise_fd_limit()

    def setServiceParent(self, parent):
        # twistd asks its Application for an ILogObserver before it starts
        # logging: ours sends every event through the `logging` hook.
        try:
            parent.setComponent(ILogObserver, self.log_router)
        except (AttributeError, TypeError):
            pass
        return MultiService.setServiceParent(self, parent)

    def privilegedStartService(self):
        # Listen before privileges are dropped (ports below 1024).
        for endpoint in self.holder.config.listeners:
            self.listen(endpoint)
        MultiService.privilegedStartService(self)

    def startService(self):
        for endpoint in self.holder.config.listeners:
            if endpoint not in self.ports:
                self.listen(endpoint)
        MultiService.startService(self)
        # Objects alive at start-up never need collecting: keep them out of
        # the collector's full passes.
        gc.collect()
        gc.freeze()

    def _raise_fd_limit(self):
        """MaxConnections needs as many descriptors: raise the soft limit
        toward the hard one, and cap MaxConnections below what is possible
        (accepting past the descriptor limit would fail with EMFILE)."""
        try:
            import resource
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        except (ImportError, ValueError, OSError):
            return
        want = self.gate.maximum + 256
        if soft != resource.RLIM_INFINITY and soft < want:
            target = want if hard == resource.RLIM_INFINITY else min(want, hard)
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (ValueError, OSError):
                pass
        if soft != resource.RLIM_INFINITY and self.gate.maximum > soft - 64:
            capped = max(1, soft - 64)
            log.warn("MaxConnections {maximum} is more than the open-file limit "
                     "allows ({soft}); using {capped}", maximum=self.gate.maximum,
                     soft=soft, capped=capped)
            self.gate.maximum = capped

    def listen(self, endpoint):
        factory = HTTPFactory(Pipeline(self.holder, endpoint), self.reactor, self.gate)
        d = serverFromString(self.reactor, endpoint).listen(factory)
        failures = []
        d.addCallback(self._listening, endpoint, factory)
        d.addErrback(failures.append)
        if failures:
            raise SystemExit(f"axkit: cannot listen on {endpoint}: "
                             f"{failures[0].getErrorMessage()}")
        return d

    def _listening(self, port, endpoint, factory):
        self.ports[endpoint] = port
        self.gate.ports.append(port)
        self.factories[endpoint] = factory
        host = port.getHost()
        log.info("axkit listening on {endpoint} ({address})", endpoint=endpoint,
                 address=_describe(host))
        return port

    def stopService(self):
        """Graceful stop (SIGTERM, SIGINT): stop accepting at once, close
        idle keep-alive connections, let responses in progress finish
        within GracefulShutdownTimeout, then cut what is left."""
        MultiService.stopService(self)
        from twisted.internet.defer import Deferred, gatherResults
        ds = [port.stopListening() for port in self.ports.values()]
        self.ports.clear()
        self.gate.ports = []
        factories = list(self.factories.values())
        for factory in factories:
            factory.drain()
        timeout = self.holder.config.global_resolved.conf.graceful_shutdown_timeout
        drained = Deferred()
        started = self.reactor.seconds()

        def check():
            open_ = sum(len(f.connections) for f in factories)
            if not open_:
                drained.callback(None)
            elif self.reactor.seconds() - started >= timeout:
                log.warn("graceful shutdown: cutting {count} connection(s) still "
                         "open after {timeout}s", count=open_, timeout=timeout)
                for factory in factories:
                    factory.abort_all()
                drained.callback(None)
            else:
                self.reactor.callLater(0.05, check)

        if any(f.connections for f in factories):
            log.info("graceful shutdown: waiting for {count} connection(s)",
                     count=sum(len(f.connections) for f in factories))
        check()

        def finished(_):
            for factory in factories:
                factory.wheel.stop()
            for plugin in self.holder.config.plugins.values():
                flush = getattr(plugin, "flush", None)
                if flush is not None:
                    flush()
            return None

        ds = [d for d in ds if d is not None] + [drained]
        return gatherResults(ds).addCallback(finished)

    def port_numbers(self):
        return {ep: p.getHost().port for ep, p in self.ports.items()
                if hasattr(p.getHost(), "port")}


def _describe(address):
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is not None:
        return f"http://{host}:{port}/" if ":" not in host else f"http://[{host}]:{port}/"
    return str(getattr(address, "name", address))
