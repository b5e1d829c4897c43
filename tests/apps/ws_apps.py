"""An ASGI app with WebSocket endpoints, one behaviour per path (run it with ``-w 1``).

What the app saw at the end of a socket is recorded in ``EVENTS`` under the ``id`` query
parameter, read back over HTTP with ``/events?id=X``, and logged as ``ws-event id=X ...``
so a test can see it after the server stopped.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs

from hybridserve.apps.types import Message, Receive, Scope, Send

log = logging.getLogger("hybridserve.error")
EVENTS: dict[str, list[str]] = {}
ROOMS: set[Send] = set()  # the /broadcast sockets of this worker


def query(scope: Scope) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}


def record(scope: Scope, event: str) -> None:
    key = query(scope).get("id", "-")
    EVENTS.setdefault(key, []).append(event)
    log.warning("ws-event id=%s %s", key, event)


def disconnect_event(message: Message) -> str:
    return f"disconnect {message['code']} {message.get('reason', '')}"


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
        return
    route = scope["path"][len(scope["root_path"]) :]
    if scope["type"] == "http":
        await http(scope, route, send)
        return
    handler = ROUTES.get(route)
    if handler is None:
        await receive()
        await send({"type": "websocket.close", "code": 1008})
        return
    await handler(scope, receive, send)


async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["greeting"] = "hello from lifespan"
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


async def http(scope: Scope, route: str, send: Send) -> None:
    if route == "/events":
        body = json.dumps(EVENTS.get(query(scope)["id"], [])).encode()
    else:
        upgrade = dict(scope["headers"]).get(b"upgrade", b"").decode()
        body = json.dumps({"type": scope["type"], "upgrade": upgrade}).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Text and bytes back as they came; ``/echo?id=X`` records the disconnect."""
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            record(scope, disconnect_event(message))
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def scope_report(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    report = {k: v for k, v in scope.items() if k not in ("headers", "asgi")}
    report["asgi"] = scope["asgi"]
    report["raw_path"] = scope["raw_path"].decode()
    report["query_string"] = scope["query_string"].decode()
    report["headers"] = [[n.decode(), v.decode()] for n, v in scope["headers"]]
    await send({"type": "websocket.send", "text": json.dumps(report)})
    await send({"type": "websocket.close"})


async def subprotocol(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    chosen = next((p for p in scope["subprotocols"] if p.startswith("chat.")), None)
    headers = [(b"x-chosen-by", b"ws_apps")]
    await send({"type": "websocket.accept", "subprotocol": chosen, "headers": headers})
    await send({"type": "websocket.send", "text": str(chosen)})
    await send({"type": "websocket.close"})


async def deny(scope: Scope, receive: Receive, send: Send) -> None:
    """The ``websocket.http.response`` extension: an HTTP answer instead of the upgrade."""
    await receive()
    assert "websocket.http.response" in scope["extensions"]
    headers = [(b"content-type", b"text/plain"), (b"x-denied", b"yes")]
    await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
    await send({"type": "websocket.http.response.body", "body": b"entry"})


async def reject(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "websocket.close"})


async def close(scope: Scope, receive: Receive, send: Send) -> None:
    """Close with ``?code=`` and ``?reason=`` after the first message."""
    await receive()
    await send({"type": "websocket.accept"})
    await receive()
    params = query(scope)
    code = int(params.get("code", "1000"))
    await send({"type": "websocket.close", "code": code, "reason": params.get("reason", "")})


async def raise_before(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    raise RuntimeError("boom before accept")


async def raise_after(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    await receive()
    raise RuntimeError("boom after accept")


async def no_handshake(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()


async def broadcast(scope: Scope, receive: Receive, send: Send) -> None:
    """Every text message goes to every socket on /broadcast, the sender included."""
    await receive()
    await send({"type": "websocket.accept"})
    ROOMS.add(send)
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") == "count":
                await send({"type": "websocket.send", "text": str(len(ROOMS))})
                continue
            for peer in list(ROOMS):
                try:
                    await peer({"type": "websocket.send", "text": message["text"]})
                except OSError:
                    ROOMS.discard(peer)
    finally:
        ROOMS.discard(send)


async def flood(scope: Scope, receive: Receive, send: Send) -> None:
    """Send ``?n=`` messages of 16 KiB as fast as ``send`` lets us; progress in EVENTS."""
    await receive()
    await send({"type": "websocket.accept"})
    key = query(scope)["id"]
    count = int(query(scope)["n"])
    chunk = b"x" * 16384
    EVENTS[key] = ["0"]
    try:
        for i in range(count):
            await send({"type": "websocket.send", "bytes": chunk})
            EVENTS[key] = [str(i + 1)]
    except OSError:
        EVENTS[key].append("send failed")


async def state(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": scope["state"].get("greeting", "none")})
    await send({"type": "websocket.close"})


ROUTES = {
    "/echo": echo,
    "/scope": scope_report,
    "/subprotocol": subprotocol,
    "/deny": deny,
    "/reject": reject,
    "/close": close,
    "/raise-before": raise_before,
    "/raise-after": raise_after,
    "/no-handshake": no_handshake,
    "/broadcast": broadcast,
    "/flood": flood,
    "/state": state,
}
