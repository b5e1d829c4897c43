"""A Starlette app with WebSocket routes and lifespan state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
    yield {"greeting": "hi"}


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_text(f"{websocket.state.greeting}: {text}")
    except WebSocketDisconnect:
        pass


async def deny(websocket: WebSocket) -> None:
    await websocket.send_denial_response(PlainTextResponse("nope", status_code=403))


app = Starlette(
    routes=[WebSocketRoute("/ws", echo), WebSocketRoute("/deny", deny)], lifespan=lifespan
)
