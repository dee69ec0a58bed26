"""Plugins whose hooks are ``async def`` (tests/test_asgi_async_hooks.py)."""

from twisted.internet.task import deferLater

from axkit.hooks import DECLINED, DONE, OK

seen = []


class AsyncGate:
    """access_control: waits a second on the reactor, then refuses /secret."""

    name = "async_gate"

    async def hook_access_control(self, request, conf):
        await deferLater(request.reactor, 1.0, lambda: None)
        seen.append(("access_control", request.path))
        if request.path.startswith("/secret"):
            return 403
        return DECLINED


class AsyncFixup:
    """fixup: no await at all (finishes at once); adds a field."""

    name = "async_fixup"

    async def hook_fixup(self, request, conf):
        request.response_headers.set("X-Async-Fixup", "yes")
        seen.append(("fixup", request.path))


class AsyncAnswer:
    """response: waits, then answers (DONE); /decline declines after waiting;
    /crash raises after waiting."""

    name = "async_answer"

    async def hook_response(self, request, conf):
        await deferLater(request.reactor, 0.5, lambda: None)
        if request.path == "/decline":
            return DECLINED
        if request.path == "/crash":
            raise RuntimeError("async crash")
        request.send(200, f"async answer {request.path}", "text/plain")
        return DONE


class AsyncTranslate:
    """uri_translation: claims /mine after waiting (OK), answering later."""

    name = "async_translate"

    async def hook_uri_translation(self, request, conf):
        if request.path != "/mine":
            return DECLINED
        await deferLater(request.reactor, 0.1, lambda: None)
        request.notes["async_translate"] = True
        return OK


class Fallback:
    """response: the plugin after AsyncAnswer (sync)."""

    name = "fallback"

    def hook_response(self, request, conf):
        request.send(200, "fallback", "text/plain")
        return DONE


class AsyncioDriver:
    """response for /aio: awaits an asyncio coroutine (as an async database
    driver's query would be) through axkit.asgi.aio.on_asyncio."""

    name = "asyncio_driver"

    async def hook_response(self, request, conf):
        if request.path != "/aio":
            return DECLINED
        from axkit.asgi.aio import on_asyncio

        value = await on_asyncio(self.fetch(request.path), request.reactor)
        request.send(200, value, "text/plain")
        return DONE

    async def fetch(self, key):
        import asyncio

        await asyncio.sleep(0.02)
        asyncio.get_running_loop()  # it really runs on asyncio
        return f"asyncio answered {key}"
