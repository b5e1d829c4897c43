"""The benchmark apps, served unchanged by every server: one WSGI, one ASGI 3.

``/`` answers 200 ``Hello, world!``; ``/delay?ms=N`` sleeps N ms first; anything else is 404.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

HELLO = b"Hello, world!"
NOT_FOUND = b"Not Found"
BIG = b"x" * 65536  # /64k, for the HTTP/2 scenario

_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def _delay_seconds(query: str) -> float:
    """Return the ``ms`` query parameter as seconds (0 when absent or malformed)."""
    try:
        return int(parse_qs(query).get("ms", ["0"])[0]) / 1000
    except ValueError:
        return 0.0


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """WSGI: hello on ``/``, blocking sleep then hello on ``/delay``."""
    path = environ.get("PATH_INFO", "")
    if path == "/delay":
        time.sleep(_delay_seconds(environ.get("QUERY_STRING", "")))
    elif path != "/":
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
        return [NOT_FOUND]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [HELLO]


async def asgi_app(scope: _Scope, receive: _Receive, send: _Send) -> None:
    """ASGI 3: hello on ``/``, ``asyncio.sleep`` then hello on ``/delay``; lifespan acknowledged."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path = scope["path"]
    status, body = 200, HELLO
    if path == "/delay":
        await asyncio.sleep(_delay_seconds(scope["query_string"].decode("latin-1")))
    elif path == "/64k":  # the HTTP/2 scenario's larger response
        body = BIG
    elif path != "/":
        status, body = 404, NOT_FOUND
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
