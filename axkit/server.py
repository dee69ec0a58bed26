"""The service tree: one listening port per Listen endpoint, all sharing the
live config through a ConfigHolder (so a reload can swap it in place)."""

import gc

from twisted.application.service import MultiService
from twisted.internet.endpoints import serverFromString
from twisted.logger import ILogObserver, Logger

from axkit.http.connection import HTTPFactory
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

    def listen(self, endpoint):
        factory = HTTPFactory(Pipeline(self.holder, endpoint), self.reactor)
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
        self.factories[endpoint] = factory
        host = port.getHost()
        log.info("axkit listening on {endpoint} ({address})", endpoint=endpoint,
                 address=_describe(host))
        return port

    def stopService(self):
        MultiService.stopService(self)
        ds = [port.stopListening() for port in self.ports.values()]
        self.ports.clear()
        for plugin in self.holder.config.plugins.values():
            flush = getattr(plugin, "flush", None)
            if flush is not None:
                flush()
        from twisted.internet.defer import gatherResults
        return gatherResults([d for d in ds if d is not None])

    def port_numbers(self):
        return {ep: p.getHost().port for ep, p in self.ports.items()
                if hasattr(p.getHost(), "port")}


def _describe(address):
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is not None:
        return f"http://{host}:{port}/" if ":" not in host else f"http://[{host}]:{port}/"
    return str(getattr(address, "name", address))
