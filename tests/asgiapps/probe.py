"""Small ASGI apps for the protocol tests, each showing one rule."""

import asyncio
import json

# What the apps saw, for the tests to read (reset by the tests).
SEEN = {"messages": [], "events": []}
GATE = {}


def gate(name):
    """An asyncio.Event a test sets to let an app go on (made on first use,
    in the app's loop)."""
    event = GATE.get(name)
    if event is None:
        event = GATE[name] = asyncio.Event()
    return event


async def _answer(send, status, body, headers=()):
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def scope_app(scope, receive, send):
    """Answers with the scope as JSON (bytes as latin-1 text)."""
    if scope["type"] != "http":
        return
    shown = {}
    for key, value in scope.items():
        if key == "headers":
            value = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in value]
        elif isinstance(value, bytes):
            value = {"bytes": value.decode("latin-1")}
        elif isinstance(value, tuple):
            value = list(value)
        shown[key] = value
    await _answer(send, 200, json.dumps(shown).encode())


async def body_app(scope, receive, send):
    """Records every http.request message, answers with their sizes."""
    if scope["type"] != "http":
        return
    sizes = []
    while True:
        message = await receive()
        SEEN["messages"].append(message)
        if message["type"] != "http.request":
            return
        sizes.append(len(message["body"]))
        if not message.get("more_body"):
            break
    await _answer(send, 200, json.dumps(sizes).encode())


async def slow_reader_app(scope, receive, send):
    """Reads one body message, then waits on the 'read' gate before each next."""
    if scope["type"] != "http":
        return
    total = 0
    while True:
        message = await receive()
        SEEN["messages"].append(message)
        total += len(message.get("body", b""))
        if not message.get("more_body"):
            break
        await gate("read").wait()
    await _answer(send, 200, str(total).encode())


async def stream_app(scope, receive, send):
    """Three chunks; the last two wait for the 'more' gate."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"first;", "more_body": True})
    SEEN["events"].append("first sent")
    await gate("more").wait()
    await send({"type": "http.response.body", "body": b"second;", "more_body": True})
    await send({"type": "http.response.body", "body": b"last", "more_body": False})
    SEEN["events"].append("last sent")


async def flood_app(scope, receive, send):
    """Sends 64 KiB pieces as fast as send() lets it (after the 'go'
    gate); counts them."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"go", "more_body": True})
    await gate("go").wait()
    piece = b"x" * 65536
    for i in range(64):
        await send({"type": "http.response.body", "body": piece, "more_body": True})
        SEEN["events"].append(i)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def crash_app(scope, receive, send):
    if scope["type"] != "http":
        return
    raise ValueError("boom from the app")


async def crash_late_app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    raise ValueError("boom after the head")


async def silent_app(scope, receive, send):
    """Returns without answering."""


async def disconnect_app(scope, receive, send):
    """Waits for the client to go, streaming one chunk first."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"waiting", "more_body": True})
    while True:
        message = await receive()
        SEEN["messages"].append(message)
        if message["type"] == "http.disconnect":
            break
    SEEN["events"].append("disconnected")
    try:
        await send({"type": "http.response.body", "body": b"late", "more_body": True})
    except OSError as e:
        SEEN["events"].append(f"send raised {e.__class__.__name__}")


async def length_app(scope, receive, send):
    """A response with its own Content-Length, and fields the engine owns."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [
                (b"Content-Length", b"5"),
                (b"X-App", b"yes"),
                (b"connection", b"close, X-Hop"),
                (b"X-Hop", b"listed in Connection"),
                (b"Upgrade", b"h2c"),
                (b"TE", b"trailers"),
                (b"set-cookie", b"a=1"),
                (b"set-cookie", b"b=2"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"hello"})


def lifespan_app(fail=False, raise_=False):
    """An app with lifespan: startup stores state['greeting']; SEEN records
    the lifespan steps."""

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                SEEN["events"].append(message["type"])
                if message["type"] == "lifespan.startup":
                    if raise_:
                        raise RuntimeError("cannot reach the database")
                    if fail:
                        await send({"type": "lifespan.startup.failed", "message": "no database"})
                        return
                    scope["state"]["greeting"] = "hello from lifespan"
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await _answer(send, 200, scope["state"].get("greeting", "none").encode())

    return app


lifespan_ok = lifespan_app()
lifespan_fails = lifespan_app(fail=True)
lifespan_raises = lifespan_app(raise_=True)


async def endless_app(scope, receive, send):
    """Streams 64 KiB pieces until the client goes; counts the bytes sent."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    piece = b"y" * 65536
    SEEN["sent"] = 0
    try:
        while SEEN["sent"] < 1 << 30:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            SEEN["sent"] += len(piece)
    except OSError:
        SEEN["events"].append("stopped: client gone")
