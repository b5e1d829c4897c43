"""Reports what the server told the app about the connection: scheme and client."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from hybridserve.apps.types import Receive, Scope, Send


def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    info = {"scheme": environ["wsgi.url_scheme"], "client": environ["REMOTE_ADDR"]}
    return [json.dumps(info).encode()]


async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    info = {"scheme": scope["scheme"], "client": scope["client"][0]}
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": json.dumps(info).encode()})
