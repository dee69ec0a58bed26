"""The ASGI lifespan protocol: startup before the server listens, shutdown
after the last request (asgiref specs/lifespan.rst, spec version 2.0)."""

import asyncio

from twisted.logger import Logger

log = Logger(namespace="axkit.asgi")

SCOPE_ASGI = {"version": "3.0", "spec_version": "2.0"}


class LifespanFailed(Exception):
    """The app answered lifespan.startup.failed, or raised where it must not."""


class Lifespan:
    """One app's lifespan task.  ``mode``: 'on' (the app must support it),
    'auto' (an app that raises at once does not: carry on without),
    'off' (never run)."""

    def __init__(self, app, name, mode):
        self.app = app
        self.name = name
        self.mode = mode
        self.state = {}
        self.supported = False
        self.task = None
        self.queue = None
        self.answer = None
        self.error = None

    async def startup(self):
        """Run the app's startup; raises LifespanFailed if it failed."""
        if self.mode == "off":
            return
        self.queue = asyncio.Queue()
        scope = {"type": "lifespan", "asgi": SCOPE_ASGI, "state": self.state}
        self.task = asyncio.ensure_future(self._main(scope))
        outcome = await self._ask({"type": "lifespan.startup"})
        if outcome is None:
            # The app ended without answering.
            if self.mode == "on":
                raise LifespanFailed(
                    f"{self.name}: the app ended lifespan startup without an answer"
                    + (
                        f" ({self.error.__class__.__name__}: {self.error})"
                        if self.error is not None
                        else ""
                    )
                )
            log.info(
                "ASGI app {name}: no lifespan support ({error}); carrying on "
                "without (ASGILifespan off to silence this)",
                name=self.name,
                error=f"{self.error.__class__.__name__}: {self.error}"
                if self.error is not None
                else "it returned at once",
            )
            return
        kind, message = outcome
        if kind != "complete":
            raise LifespanFailed(
                f"{self.name}: lifespan startup failed" + (f": {message}" if message else "")
            )
        self.supported = True

    async def shutdown(self):
        if not self.supported or self.task is None or self.task.done():
            return
        outcome = await self._ask({"type": "lifespan.shutdown"})
        if outcome is None or outcome[0] != "complete":
            log.error(
                "ASGI app {name}: lifespan shutdown failed: {why}",
                name=self.name,
                why=(outcome[1] if outcome else f"ended without an answer ({self.error!r})"),
            )

    async def _ask(self, message):
        self.answer = asyncio.get_running_loop().create_future()
        await self.queue.put(message)
        await asyncio.wait([self.answer, self.task], return_when=asyncio.FIRST_COMPLETED)
        if self.answer.done():
            return self.answer.result()
        return None

    async def _main(self, scope):
        try:
            await self.app(scope, self.queue.get, self._send)
        except BaseException as e:
            self.error = e

    async def _send(self, message):
        kind = message["type"]
        outcome = {
            "lifespan.startup.complete": ("complete", None),
            "lifespan.shutdown.complete": ("complete", None),
            "lifespan.startup.failed": ("failed", message.get("message", "")),
            "lifespan.shutdown.failed": ("failed", message.get("message", "")),
        }.get(kind)
        if outcome is None:
            raise ValueError(f"ASGI lifespan: unknown message type {kind!r}")
        if self.answer is not None and not self.answer.done():
            self.answer.set_result(outcome)
