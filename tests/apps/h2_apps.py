"""Apps behind the HTTP/2 tests; ``answer`` is shared with the in-process conformance server.

Routes: ``/`` says what it received ("METHOD PATH BODY-LENGTH"), ``/headers`` lists the
request's fields (and trailers, where the server passes them), ``/big/N`` sends N bytes,
``/trailers`` ends with a trailer field, ``/early`` answers before reading the body,
``/hold`` never reads its body, ``/scope`` shows the HTTP version the app was told,
``/file`` sends this file by ``http.response.pathsend``,
``/fail-before`` and ``/fail-after`` raise before and after the response head.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

Fields = list[tuple[bytes, bytes]]
HOLD_S = 5.0  # /hold answers after this, so a test's server still stops in time


def answer(
    method: bytes, path: bytes, headers: Fields, body: bytes, trailers: Fields
) -> tuple[Fields, bytes, Fields]:
    """Headers, body and trailers of the response to a request."""
    end_trailers: Fields = []
    if path.startswith(b"/big/"):
        payload = b"x" * int(path[5:])
    elif path == b"/headers":
        lines = [name + b": " + value for name, value in headers]
        lines += [b"trailer " + name + b": " + value for name, value in trailers]
        payload = b"\n".join(lines)
    else:
        payload = b"%s %s %d" % (method, path, len(body))
    if path == b"/trailers":
        end_trailers = [(b"x-checksum", b"%d" % len(body))]
    response: Fields = [(b"Content-Type", b"text/plain"), (b"Connection", b"keep-alive")]
    if not end_trailers:
        response.append((b"content-length", b"%d" % len(payload)))
    return response, payload, end_trailers


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ASGI app the live conformance cases and the client tests talk to."""
    if scope["type"] != "http":
        return
    path = scope["raw_path"] + (b"?" + scope["query_string"] if scope["query_string"] else b"")
    method = scope["method"].encode()
    if path == b"/hold":
        await asyncio.sleep(HOLD_S)
    if path == b"/scope":
        version = scope["http_version"].encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": version})
        return
    if path == b"/file":  # this module's own source, through the pathsend extension
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": __file__})
        return
    if path == b"/fail-before":
        raise RuntimeError("failed before the head")
    body = b""
    if path != b"/early":
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
    headers, payload, trailers = answer(method, path, list(scope["headers"]), body, [])
    start = {"type": "http.response.start", "status": 200, "headers": headers}
    await send({**start, "trailers": bool(trailers)})
    if path == b"/fail-after":
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("failed after the head")
    await send({"type": "http.response.body", "body": payload})
    if trailers:
        await send({"type": "http.response.trailers", "headers": trailers})


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """WSGI: the protocol the app was told, and the body length it read."""
    body = environ["wsgi.input"].read()
    payload = b"%s %d" % (environ["SERVER_PROTOCOL"].encode(), len(body))
    start_response("200 OK", [("Content-Length", str(len(payload)))])
    return [payload]
