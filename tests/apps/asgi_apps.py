"""An ASGI 3 app that reports what the server gave it, one spec corner per path.

What happens after a response (a disconnect seen by ``receive``) is recorded in ``EVENTS``
under the ``id`` query parameter and read back with ``/events?id=X`` (one worker: ``-w 1``).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from hybridserve.apps.types import Receive, Scope, Send

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]
EVENTS: dict[str, list[str]] = {}
JSON = [(b"content-type", b"application/json")]


def query(scope: Scope) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}


async def respond(send: Send, body: bytes, status: int = 200, headers: Any = None) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or JSON})
    await send({"type": "http.response.body", "body": body})


def described(value: Any) -> Any:
    """``[type name, JSON-able value]``, recursively, so a test can check types too."""
    if isinstance(value, bytes):
        return ["bytes", value.decode("latin-1")]
    if isinstance(value, list | tuple):
        return [type(value).__name__, [described(v) for v in value]]
    if isinstance(value, dict):
        return ["dict", {k: described(v) for k, v in value.items()}]
    return [type(value).__name__, value]


async def scope_report(scope: Scope, receive: Receive, send: Send) -> None:
    await respond(send, json.dumps(described(dict(scope))).encode())


async def body_pieces(scope: Scope, receive: Receive, send: Send) -> None:
    """Every ``http.request`` message as ``[len(body), more_body]``, and the total."""
    pieces: list[tuple[int, bool]] = []
    total = 0
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        pieces.append((len(message["body"]), message["more_body"]))
        total += len(message["body"])
        if not message["more_body"]:
            break
    await respond(send, json.dumps({"pieces": pieces, "total": total}).encode())


async def long_poll(scope: Scope, receive: Receive, send: Send) -> None:
    """Wait in ``receive()`` after the body, as a long-poll does, and record what came."""
    key = query(scope)["id"]
    while (await receive()).get("more_body"):
        pass
    EVENTS.setdefault(key, []).append("waiting")
    message = await receive()
    EVENTS[key].append(message["type"])


async def stream(scope: Scope, receive: Receive, send: Send) -> None:
    count = int(query(scope).get("n", "5"))
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for i in range(count):
        await send({"type": "http.response.body", "body": b"%d," % i, "more_body": True})
        await asyncio.sleep(0)
    await send({"type": "http.response.body", "body": b"end"})


async def sse(scope: Scope, receive: Receive, send: Send) -> None:
    """Server-sent events until the client (or a draining server) says it is gone."""
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"text/event-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    gone = asyncio.ensure_future(receive())
    n = 0
    while not gone.done():
        await send({"type": "http.response.body", "body": b"data: %d\n\n" % n, "more_body": True})
        n += 1
        await asyncio.wait([gone], timeout=0.05)
    await send({"type": "http.response.body", "body": b"event: bye\ndata: done\n\n"})


async def head(scope: Scope, receive: Receive, send: Send) -> None:
    headers = [(b"content-length", b"11"), (b"x-method", scope["method"].encode())]
    await respond(send, b"hello world", headers=headers)


async def raise_before(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("boom before the response")


async def raise_after(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial-", "more_body": True})
    raise RuntimeError("boom after the response started")


async def no_response(scope: Scope, receive: Receive, send: Send) -> None:
    return


async def bad_header(scope: Scope, receive: Receive, send: Send) -> None:
    name, value = (b"x-bad", b"line\r\nbreak") if query(scope).get("in") else (b"bad name", b"x")
    await respond(send, b"never", headers=[(name, value)])


async def sleep(scope: Scope, receive: Receive, send: Send) -> None:
    q = query(scope)
    EVENTS.setdefault(q.get("id", "sleep"), []).append("sleeping")
    await asyncio.sleep(float(q.get("s", "1")))
    await respond(send, b"slept")


async def pid(scope: Scope, receive: Receive, send: Send) -> None:
    await respond(send, str(os.getpid()).encode())


async def events(scope: Scope, receive: Receive, send: Send) -> None:
    await respond(send, json.dumps(EVENTS.get(query(scope)["id"], [])).encode())


ROUTES: dict[str, Handler] = {
    "/body": body_pieces,
    "/long-poll": long_poll,
    "/stream": stream,
    "/sse": sse,
    "/head": head,
    "/raise-before": raise_before,
    "/raise-after": raise_after,
    "/no-response": no_response,
    "/bad-header": bad_header,
    "/sleep": sleep,
    "/pid": pid,
    "/events": events,
}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":  # no lifespan: the server must cope (--lifespan auto)
        raise RuntimeError(f"unsupported scope {scope['type']!r}")
    path = scope["path"][len(scope["root_path"]) :]
    await ROUTES.get(path, scope_report)(scope, receive, send)
