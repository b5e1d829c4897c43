"""A small Starlette app: routes, JSON, a streamed response, request.body(), a background task."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

DONE: list[str] = []  # what background tasks finished, in this worker


async def index(request: Request) -> Response:
    return PlainTextResponse("hello from starlette")


async def item(request: Request) -> Response:
    return JSONResponse(
        {
            "id": request.path_params["item_id"],
            "q": request.query_params.get("q"),
            "root_path": request.scope["root_path"],
            "url": str(request.url),
        }
    )


async def echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"length": len(body), "head": body[:16].decode("latin-1")})


async def stream(request: Request) -> Response:
    count = int(request.query_params.get("n", "5"))

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(count):
            yield b"piece %d\n" % i
            await asyncio.sleep(0)

    return StreamingResponse(pieces(), media_type="text/plain")


async def background(request: Request) -> Response:
    async def remember(name: str) -> None:
        await asyncio.sleep(0.01)
        DONE.append(name)

    name = request.query_params["name"]
    return PlainTextResponse("accepted", background=BackgroundTask(remember, name))


async def done(request: Request) -> Response:
    return JSONResponse(DONE)


app = Starlette(
    routes=[
        Route("/", index),
        Route("/items/{item_id:int}", item),
        Route("/echo", echo, methods=["POST"]),
        Route("/stream", stream),
        Route("/background", background),
        Route("/done", done),
    ]
)
