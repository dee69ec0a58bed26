"""The reverse proxy's parts (the plugin is axkit.plugins.proxy).

backend: ProxyPass's and BalancerMember's URLs (TCP and ``unix:`` backends);
hop: the hop-by-hop fields (RFC 9110 section 7.6.1) and the fields the
proxy adds; client: one keep-alive Agent per backend; forward: one
request's exchange with its backend, streamed both ways with backpressure.
"""
