"""Pick the <Server> that answers a request, by its Host (name-based vhosts)."""

from urllib.parse import urlsplit


def request_host(request):
    """The host a request is for: from an absolute-form target, else Host;
    lower-cased, port stripped; '' when there is none."""
    target = request.target
    if not target.startswith("/") and "://" in target[:10]:
        host = urlsplit(target).hostname or ""
        path = urlsplit(target).path or "/"
        query = urlsplit(target).query
        request.raw_path = path
        request.query = query or None
        return host.lower()
    host = request.headers.get("host") or ""
    if host.startswith("["):
        return host[:host.find("]") + 1].lower()
    return host.rpartition(":")[0].lower() if ":" in host else host.lower()


class VirtualHosts:
    """The servers sharing one listener; the first is the default."""

    def __init__(self, servers):
        self.servers = list(servers)
        self.default = self.servers[0]
        self.exact = {}
        self.wildcards = []
        for server in self.servers:
            for name in ((server.name,) if server.name else ()) + server.aliases:
                name = name.lower()
                if name.startswith("*."):
                    self.wildcards.append((name[1:], server))
                else:
                    self.exact.setdefault(name, server)

    def select(self, request):
        host = request_host(request)
        request.host = host
        if len(self.servers) == 1:
            return self.default
        server = self.exact.get(host)
        if server is not None:
            return server
        for suffix, server in self.wildcards:
            if host.endswith(suffix):
                return server
        return self.default
