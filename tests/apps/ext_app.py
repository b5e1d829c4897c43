"""ASGI extensions: trailers (when the client accepts them) and pathsend."""

from __future__ import annotations

import json
import os

from hybridserve.apps.types import Receive, Scope, Send


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    extensions = scope["extensions"]
    if scope["path"] == "/extensions":
        body = json.dumps(sorted(extensions)).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
    elif scope["path"] == "/trailers":
        trailers = "http.response.trailers" in extensions
        start = {"type": "http.response.start", "status": 200, "headers": [], "trailers": trailers}
        await send(start)
        await send({"type": "http.response.body", "body": b"part one,", "more_body": True})
        await send({"type": "http.response.body", "body": b"part two"})
        if trailers:
            await send(
                {
                    "type": "http.response.trailers",
                    "headers": [(b"x-checksum", b"abc123")],
                    "more_trailers": False,
                }
            )
    elif scope["path"] == "/file":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": os.environ["PATHSEND_FILE"]})
