"""asyncio code from a hook: ``await on_asyncio(coro)`` in an ``async def``
hook runs an asyncio coroutine (an async database driver: asyncpg,
aiosqlite, an httpx client...) on the server's asyncio loop -- the one
ASGI apps run on -- and gives its result back to the hook as a Deferred.

A hook's own coroutine is driven by Twisted (Deferred.fromCoroutine): it
can await Deferreds, not asyncio futures.  This is the bridge between them.
"""


def on_asyncio(coro, reactor=None):
    """A Deferred firing with the result of the asyncio coroutine ``coro``
    (run on the server's asyncio loop, started on first use)."""
    if reactor is None:
        from twisted.internet import reactor
    from axkit.asgi.bridge import bridge

    return bridge(reactor).run_deferred(coro)
