"""ASGI 3 (HTTP and lifespan) inside axkit: the pieces of ``Plugin asgi``.

* `bridge`  -- where the asyncio loop runs and how work crosses to it and back;
* `loader`  -- ASGIAlias targets (``package.module:app`` or a file);
* `scope`   -- the HTTP connection scope of a request;
* `cycle`   -- one request/response cycle: receive() and send();
* `lifespan` -- the lifespan protocol (startup before listening, shutdown last).
"""
