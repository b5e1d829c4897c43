"""Big bodies, read or produced with pauses, for the bounded-memory tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from hybridserve.apps.types import Receive, Scope, Send

PIECE = 64 * 1024
PAUSE_EVERY = 128  # pieces (8 MiB)
PAUSE_S = 0.02


def _pieces(total: int) -> Iterator[bytes]:
    piece = b"x" * PIECE
    for i in range(total // PIECE):
        if i and i % PAUSE_EVERY == 0:
            time.sleep(PAUSE_S)
        yield piece


def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/download":
        total = int(environ["QUERY_STRING"] or 0)
        start_response("200 OK", [("Content-Length", str(total // PIECE * PIECE))])
        return _pieces(total)
    stream, received, count = environ["wsgi.input"], 0, 0
    while data := stream.read(PIECE):
        received += len(data)
        count += 1
        if count % PAUSE_EVERY == 0:
            time.sleep(PAUSE_S)  # a slow consumer
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(received).encode()]


async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/download":
        total = int(scope["query_string"] or 0) // PIECE * PIECE
        headers = [(b"content-length", str(total).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        piece = b"x" * PIECE
        for _ in range(total // PIECE):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    received = count = 0
    more = True
    while more:
        message = await receive()
        received += len(message.get("body", b""))
        more = message.get("more_body", False)
        count += 1
        if count % PAUSE_EVERY == 0:
            await asyncio.sleep(PAUSE_S)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(received).encode()})
