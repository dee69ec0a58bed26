"""Apps of tests/test_asgi_stepped.py: what a task started eagerly sees."""

import asyncio
import contextvars

SEEN = []
GATE = {}
VAR = contextvars.ContextVar("axkit_test_var", default="unset")


async def app(scope, receive, send):
    """Answers at once; records its task, the running loop and a context
    variable it then sets (a later request must not see it)."""
    if scope["type"] != "http":
        return
    SEEN.append((asyncio.current_task(), asyncio.get_running_loop(), VAR.get()))
    VAR.set(scope["path"])
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["path"].encode()})


async def echo(scope, receive, send):
    """Reads the whole body (waiting for it), then answers with it."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def gated(scope, receive, send):
    """Waits for GATE["future"] (set by the test) before answering."""
    if scope["type"] != "http":
        return
    GATE["future"] = asyncio.get_running_loop().create_future()
    await GATE["future"]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"late"})
