"""Pick the <Server> that answers a request, by its Host (name-based vhosts)."""

from axkit.http.headers import normalise_host


class VirtualHosts:
    """The servers sharing one listener; the first is the default."""

    def __init__(self, servers):
        self.servers = list(servers)
        self.default = self.servers[0]
        self.single = len(self.servers) == 1
        self.exact = {}
        self.wildcards = []
        for server in self.servers:
            for name in ((server.name,) if server.name else ()) + server.aliases:
                name = normalise_host(name)
                if name.startswith("*."):
                    self.wildcards.append((name[1:], server))
                else:
                    self.exact.setdefault(name, server)

    def select(self, request):
        if self.single:
            return self.default
        host = request.host
        server = self.exact.get(host)
        if server is not None:
            return server
        for suffix, server in self.wildcards:
            if host.endswith(suffix):
                return server
        return self.default
