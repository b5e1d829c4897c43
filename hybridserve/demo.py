"""The built-in demo app, a ready load-testing target, in WSGI and ASGI flavours.

Both flavours share ``plan()``, which turns a path and query into what to answer, so
they behave the same byte for byte; only sleeping and body reading differ.

    /                      Hello, world!
    /echo                  method, path, query, headers and body as JSON
    /delay?ms=N            answer after N ms (blocking sleep in WSGI, asyncio in ASGI)
    /bytes?n=N             N bytes, with Content-Length, produced in 64 KiB pieces
    /stream?chunks=N&size=S[&interval_ms=T]   N chunks of S bytes, chunked encoding
    /status/CODE           that status
    /pid                   the worker's pid
    /upload[?delay_ms=T]   read the body in 64 KiB pieces (pausing T ms each); its size
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote

from hybridserve.apps.types import Environ, Message, Receive, Scope, Send, StartResponse

HELLO = b"Hello, world!"
PIECE = 64 * 1024
CAPS = {"ms": 60_000, "n": 1 << 30, "chunks": 100_000, "size": 1 << 20, "interval_ms": 10_000}
CAPS["delay_ms"] = 10_000
TEXT = "text/plain; charset=utf-8"


class BadParameter(ValueError):
    """A query parameter is missing its number or beyond its cap: 400."""


@dataclass
class Plan:
    """What to answer: status, content type, and body bytes or a generator of pieces."""

    status: int = 200
    content_type: str = TEXT
    body: bytes = b""
    pieces: int = 0  # number of pieces of ``piece`` bytes (plus ``tail``) to stream
    piece: bytes = b""
    tail: bytes = b""
    chunked: bool = False
    interval_s: float = 0.0
    delay_s: float = 0.0
    needs_body: str = ""  # "echo" or "upload": the flavour reads the request body
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def length(self) -> int:
        return len(self.body) + self.pieces * len(self.piece) + len(self.tail)


def _number(query: dict[str, list[str]], name: str, default: int | None = None) -> int:
    raw = query.get(name, [None])[0]
    if raw is None:
        if default is None:
            raise BadParameter(f"{name} is required")
        return default
    if not raw.isdigit() or int(raw) > CAPS[name]:
        raise BadParameter(f"{name} must be an integer from 0 to {CAPS[name]}")
    return int(raw)


def plan(path: str, query_string: str) -> Plan:
    """Decide the response for ``path``; raises BadParameter for a bad query."""
    query = parse_qs(query_string)
    if path == "/":
        return Plan(body=HELLO)
    if path == "/echo":
        return Plan(content_type="application/json", needs_body="echo")
    if path == "/upload":
        return Plan(
            content_type="application/json",
            needs_body="upload",
            delay_s=_number(query, "delay_ms", 0) / 1000,
        )
    if path == "/delay":
        ms = _number(query, "ms", 0)
        return Plan(body=b"delayed %d ms\n" % ms, delay_s=ms / 1000)
    if path == "/bytes":
        n = _number(query, "n")
        return Plan(pieces=n // PIECE, piece=b"x" * PIECE, tail=b"x" * (n % PIECE))
    if path == "/stream":
        chunks = _number(query, "chunks", 10)
        size = _number(query, "size", 16)
        return Plan(
            pieces=chunks,
            piece=b"x" * size,
            chunked=True,
            interval_s=_number(query, "interval_ms", 0) / 1000,
        )
    if path.startswith("/status/"):
        code = path[len("/status/") :]
        if not code.isdigit() or not 200 <= int(code) <= 599:
            raise BadParameter("status must be an integer from 200 to 599")
        status = int(code)
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        body = b"" if status in (204, 304) else f"{status} {phrase}\n".encode()
        return Plan(status=status, body=body)
    if path == "/pid":
        return Plan(body=str(os.getpid()).encode())
    return Plan(status=404, body=b"Not Found\n")


def echo_body(
    method: str, path: str, query: str, headers: list[tuple[str, str]], body: bytes
) -> bytes:
    return json.dumps(
        {
            "method": method,
            "path": path,
            "query": query,
            "headers": [[k, v] for k, v in headers],
            "body": body.decode("latin-1"),
        }
    ).encode()


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


# -- WSGI ---------------------------------------------------------------------------
def _wsgi_pieces(p: Plan) -> Iterator[bytes]:
    for i in range(p.pieces):
        if i and p.interval_s:
            time.sleep(p.interval_s)
        yield p.piece
    if p.tail:
        yield p.tail


def wsgi_app(environ: Environ, start_response: StartResponse) -> Any:
    """The demo app as WSGI."""
    try:
        p = plan(environ.get("PATH_INFO", "/") or "/", environ.get("QUERY_STRING", ""))
    except BadParameter as exc:
        start_response("400 Bad Request", [("Content-Type", TEXT)])
        return [f"{exc}\n".encode()]
    if p.delay_s and not p.needs_body:
        time.sleep(p.delay_s)
    stream = environ["wsgi.input"]
    if p.needs_body == "echo":
        headers = [
            (k[5:].replace("_", "-").lower(), v)
            for k, v in environ.items()
            if k.startswith("HTTP_")
        ]
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if key in environ:
                headers.append((key.replace("_", "-").lower(), environ[key]))
        p.body = echo_body(
            environ["REQUEST_METHOD"],
            environ["PATH_INFO"],
            environ["QUERY_STRING"],
            headers,
            stream.read(),
        )
    elif p.needs_body == "upload":
        total = 0
        while data := stream.read(PIECE):
            total += len(data)
            if p.delay_s:
                time.sleep(p.delay_s)
        p.body = json.dumps({"bytes": total}).encode()
    headers = [("Content-Type", p.content_type), *p.headers]
    if not p.chunked and p.status not in (204, 304):
        headers.append(("Content-Length", str(p.length)))
    start_response(_status_line(p.status), headers)
    if p.pieces or p.tail:
        return _wsgi_pieces(p)
    return [p.body]


# -- ASGI ---------------------------------------------------------------------------
async def _read_body(
    receive: Receive, delay_s: float = 0.0, keep: bool = True
) -> tuple[bytes, int]:
    parts: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        data = message.get("body", b"")
        total += len(data)
        if keep:
            parts.append(data)
        if delay_s:
            await asyncio.sleep(delay_s)
        if not message.get("more_body", False):
            break
    return b"".join(parts), total


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The demo app as ASGI 3 (http, and lifespan that does nothing)."""
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
    root = scope.get("root_path", "")
    path = scope["path"][len(root) :] if root and scope["path"].startswith(root) else scope["path"]
    try:
        p = plan(path or "/", scope["query_string"].decode("latin-1"))
    except BadParameter as exc:
        await _send_simple(send, 400, f"{exc}\n".encode())
        return
    if p.delay_s and not p.needs_body:
        await asyncio.sleep(p.delay_s)
    if p.needs_body == "echo":
        body, _ = await _read_body(receive)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        p.body = echo_body(
            scope["method"], unquote(path), scope["query_string"].decode("latin-1"), headers, body
        )
    elif p.needs_body == "upload":
        _, total = await _read_body(receive, p.delay_s, keep=False)
        p.body = json.dumps({"bytes": total}).encode()
    await _send_plan(send, p)


async def _send_plan(send: Send, p: Plan) -> None:
    """The answer ``p`` as ASGI messages: one body, or its pieces (paced by its interval)."""
    headers = [(b"content-type", p.content_type.encode())]
    if not p.chunked and p.status not in (204, 304):
        headers.append((b"content-length", str(p.length).encode()))
    await send({"type": "http.response.start", "status": p.status, "headers": headers})
    if not (p.pieces or p.tail):
        await send({"type": "http.response.body", "body": p.body})
        return
    for i in range(p.pieces):
        if i and p.interval_s:
            await asyncio.sleep(p.interval_s)
        await send({"type": "http.response.body", "body": p.piece, "more_body": True})
    await send({"type": "http.response.body", "body": p.tail})


async def _send_simple(send: Send, status: int, body: bytes) -> None:
    message: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", TEXT.encode()), (b"content-length", str(len(body)).encode())],
    }
    await send(message)
    await send({"type": "http.response.body", "body": body})
