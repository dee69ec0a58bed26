"""Pick the <Server> that answers a request, by its Host (name-based vhosts)."""

from urllib.parse import urlsplit


def request_host(request):
    """The host a request is for: from an absolute-form target, else Host;
    lower-cased, port stripped; '' when there is none."""
    target = request.target
    if not target.startswith("/") and "://" in target[:10]:
        host = urlsplit(target).hostname or ""
        host = f"[{host}]" if ":" in host else host.rstrip(".").lower()
        path = urlsplit(target).path or "/"
        query = urlsplit(target).query
        request.raw_path = path
        request.query = query or None
        return host
    return normalise_host(request.headers.get("host") or "")


def normalise_host(host):
    """'Example.COM.:8080' -> 'example.com'; '[::1]:80' -> '[::1]'."""
    host = host.strip()
    if host.startswith("["):
        return host[:host.find("]") + 1].lower()
    if ":" in host:
        host = host.rpartition(":")[0]
    return host.rstrip(".").lower()


class VirtualHosts:
    """The servers sharing one listener; the first is the default."""

    def __init__(self, servers):
        self.servers = list(servers)
        self.default = self.servers[0]
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
