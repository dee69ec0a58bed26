"""The reverse proxy's parts (the plugin is axkit.plugins.proxy).

backend: ProxyPass's and BalancerMember's URLs (TCP, ``unix:`` and
``https://`` backends); balancer: <Proxy balancer://NAME>; hop: the
hop-by-hop fields (RFC 9110 section 7.6.1) and the fields the proxy adds;
client: axkit's HTTP/1.1 client, a keep-alive pool of httptools-parsing
protocols per backend; tls: TLS to https:// backends (SSLProxyVerify);
forward: one request's exchange with its backend, streamed both ways with
backpressure; websocket: the WebSocket tunnel; xsendfile: X-Sendfile.
"""
