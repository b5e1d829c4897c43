"""An ASGI app with lifespan: state for requests, and failure modes chosen by env vars."""

from __future__ import annotations

import os
from pathlib import Path

from hybridserve.apps.types import Receive, Scope, Send


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if os.environ.get("LIFESPAN_FAIL") == "message":
                    await send({"type": "lifespan.startup.failed", "message": "db unreachable"})
                    return
                if os.environ.get("LIFESPAN_FAIL") == "raise":
                    raise RuntimeError("startup exploded")
                scope["state"]["db"] = f"connected in {os.getpid()}"
                await send({"type": "lifespan.startup.complete"})
            else:
                marker = os.environ.get("LIFESPAN_MARKER")
                if marker:
                    with Path(marker).open("a") as fh:
                        fh.write(f"shutdown {os.getpid()}\n")
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = scope["state"].get("db", "no state").encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def http_only(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http", "this app knows no lifespan"
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
