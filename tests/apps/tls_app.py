"""Reports what the server told the app about the TLS session and the client."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from hybridserve.apps.types import Receive, Scope, Send

WSGI_KEYS = (
    "HTTPS",
    "SSL_PROTOCOL",
    "SSL_CIPHER",
    "SSL_CLIENT_VERIFY",
    "SSL_CLIENT_S_DN",
    "SSL_CLIENT_CERT",
    "REMOTE_ADDR",
    "REMOTE_PORT",
)


def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({key: environ.get(key) for key in WSGI_KEYS}).encode()]


async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
    info = {"tls": scope["extensions"].get("tls"), "client": scope["client"]}
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": json.dumps(info)})
        await send({"type": "websocket.close"})
        return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": json.dumps(info).encode()})
