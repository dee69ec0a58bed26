"""The HTTP/1.1 engine: connections, requests, responses, limits.

It knows nothing about plugins: a connection hands each request to a
handler (axkit.pipeline.Pipeline runs the hooks).
"""
