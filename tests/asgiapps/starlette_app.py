"""A Starlette app, written as its users write them, run unchanged under axkit
(tests/test_asgi_server.py).  AXKIT_TEST_EVENTS names a file the app
appends its steps to (for the SIGTERM test)."""

import asyncio
import hashlib
import os
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route


def note(text):
    path = os.environ.get("AXKIT_TEST_EVENTS")
    if path:
        with open(path, "a") as f:
            f.write(text + "\n")


@asynccontextmanager
async def lifespan(app):
    note("startup")
    yield {"db": "connected", "release": asyncio.Event(), "tasks": []}
    note("shutdown")


async def home(request):
    return PlainTextResponse(f"db={request.state.db} root={request.scope['root_path']}")


async def stream(request):
    release = request.state.release

    async def chunks():
        yield b"first chunk\n"
        await release.wait()
        yield b"last chunk\n"

    return StreamingResponse(chunks(), media_type="text/plain")


async def release(request):
    request.state.release.set()
    return PlainTextResponse("released")


async def task(request):
    tasks = request.state.tasks

    async def work():
        await asyncio.sleep(0.05)
        tasks.append("background done")

    return PlainTextResponse("accepted", background=BackgroundTask(work))


async def tasks(request):
    return JSONResponse(request.state.tasks)


async def digest(request):
    body = await request.body()
    return PlainTextResponse(f"{len(body)} {hashlib.sha256(body).hexdigest()}")


async def slow(request):
    await asyncio.sleep(0.5)
    note("slow done")
    return PlainTextResponse("slow answer")


app = Starlette(
    lifespan=lifespan,
    routes=[
        Route("/", home),
        Route("/stream", stream),
        Route("/release", release),
        Route("/task", task),
        Route("/tasks", tasks),
        Route("/digest", digest, methods=["POST"]),
        Route("/slow", slow),
    ],
)
