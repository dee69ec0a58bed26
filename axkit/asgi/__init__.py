"""ASGI 3 (HTTP and lifespan) inside axkit: the pieces of ``Plugin asgi``.

* `bridge`   -- where the asyncio loop runs and how work crosses to it and back;
* `loader`   -- ASGIAlias targets (``package.module:app`` or a file);
* `scope`    -- the HTTP connection scope of a request, mount matching;
* `cycle`    -- one request/response cycle: receive() and send();
* `body`     -- the request body fed to the app with backpressure;
* `lifespan` -- the lifespan protocol (startup before listening, shutdown last);
* `aio`      -- ``on_asyncio``: an async hook awaits asyncio code;
* `reload`   -- ``--reload``: restart on a change, keeping the sockets.
"""
