"""Apps that misbehave on purpose: block the event loop, die while booting."""

from __future__ import annotations

import os
import time

from hybridserve.apps.types import Receive, Scope, Send

if os.environ.get("DIE_WHILE_BOOTING"):
    os._exit(7)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/hang":
        time.sleep(100)  # blocks the whole event loop: only the heartbeat can notice
    body = str(os.getpid()).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
