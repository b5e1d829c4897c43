"""Apps for the config-source tests: one of each interface, answering so a test can tell."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from hybridserve.apps.types import Receive, Scope, Send


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"configured"]


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"configured"})
