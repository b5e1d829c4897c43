"""One Starlette app exercising what ASGI users rely on, served by us and by uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
    yield {"db": "connected"}


async def state(request: Request) -> JSONResponse:
    return JSONResponse({"db": request.state.db, "path": request.url.path})


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"length": len(body), "query": dict(request.query_params)})


async def stream(request: Request) -> StreamingResponse:
    async def parts() -> AsyncIterator[bytes]:
        for i in range(3):
            yield f"part {i}\n".encode()

    return StreamingResponse(parts(), media_type="text/plain")


async def sse(request: Request) -> StreamingResponse:
    async def events() -> AsyncIterator[str]:
        for i in range(3):
            await asyncio.sleep(0.01)
            yield f"data: event {i}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


async def boom(request: Request) -> PlainTextResponse:
    raise RuntimeError("boom")


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept(subprotocol=(websocket.scope["subprotocols"] or [None])[0])
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") == "close":
                await websocket.close(code=4001, reason="bye")
                return
            if message.get("text") is not None:
                await websocket.send_text(f"{websocket.state.db}: {message['text']}")
            else:
                await websocket.send_bytes(message["bytes"][::-1])
    except WebSocketDisconnect:
        return


async def ws_raise(websocket: WebSocket) -> None:
    await websocket.accept()
    raise RuntimeError("socket boom")


async def ws_reject(websocket: WebSocket) -> None:
    await websocket.close(code=1008)


app = Starlette(
    routes=[
        Route("/state", state),
        Route("/echo", echo, methods=["POST"]),
        Route("/stream", stream),
        Route("/sse", sse),
        Route("/boom", boom),
        WebSocketRoute("/ws", ws_echo),
        WebSocketRoute("/ws-raise", ws_raise),
        WebSocketRoute("/ws-reject", ws_reject),
    ],
    lifespan=lifespan,
)
