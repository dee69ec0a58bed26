#!/usr/bin/env python3
"""Per-request cost of the proxy's Python path, in memory.

A GET through the real engine, hooks and ``Plugin proxy`` over in-memory
transports, answered by a canned 1 KiB keep-alive answer fed to the
backend connection as nginx sends it; again and again on one kept
backend connection.  Bytecodes and Python calls per request (exact, with
the top functions), then microseconds per request (best of a few loops;
noisy).  What the sockets, the kernel and the reactor add is not here.

    python bench/proxy_hotpath.py --top 25
"""

import argparse

from benchlib import measure_in_memory

REQUEST = b"GET /1k.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n\r\n"
ANSWER = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 08 Dec 2026 00:00:00 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 1024\r\n"
    b"Last-Modified: Tue, 08 Dec 2026 00:00:00 GMT\r\nConnection: keep-alive\r\n"
    b'ETag: "6755e0c0-400"\r\nAccept-Ranges: bytes\r\n\r\n' + b"x" * 1024
)


def connection():
    """A function feeding one request and its backend's answer."""
    from twisted.internet.testing import StringTransport

    from axkit.proxy import client
    from axkit.testing import MemorySite

    site = MemorySite(
        "Listen tcp:8080:interface=127.0.0.1\nKeepAliveTimeout 120\n"
        "MaxKeepAliveRequests 0\nPlugin proxy\nProxyPass / http://127.0.0.1:9/ max=64\n",
        route_logs=False,
    )
    conn = site.connect()
    conn.transport.write = lambda data: None
    backend = []

    class FakeEndpoint:
        def connect(self, factory):
            from twisted.internet.defer import succeed

            proto = factory.buildProtocol(None)
            transport = StringTransport()
            transport.write = lambda data: None
            proto.makeConnection(transport)
            backend.append(proto)
            return succeed(proto)

    real_pool = client.PoolSpec.pool

    def pool(spec, reactor):
        made = real_pool(spec, reactor)
        made.endpoint = FakeEndpoint()
        return made

    client.PoolSpec.pool = pool
    feed = conn.protocol.dataReceived

    def one():
        feed(REQUEST)
        backend[0].dataReceived(ANSWER)

    return one


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    measure_in_memory(connection(), args.top, n=10000)


if __name__ == "__main__":
    main()
