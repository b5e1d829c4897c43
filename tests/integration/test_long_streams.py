"""On a graceful stop, long streams are told to end, so the worker exits long before the
graceful timeout: SSE apps see ``http.disconnect``, WebSockets get 1001 (going away)."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import ServeFactory

GRACEFUL_S = 30


async def test_sse_and_websocket_end_cleanly_when_the_worker_drains(serve: ServeFactory) -> None:
    server = serve("long_streams:app", "-w", "1", "--graceful-timeout", str(GRACEFUL_S))
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", server.url + "/sse") as sse,
        connect(f"ws://{server.host}:{server.port}/echo?id=drain") as ws,
    ):
        lines = sse.aiter_lines()
        assert (await anext(lines)).startswith("data: ")
        await ws.send("before")
        assert await ws.recv() == "before"
        stopped_at = time.monotonic()
        server.send_signal(signal.SIGTERM)
        rest = [line async for line in lines]  # the app ends the stream itself
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert "event: bye" in rest and "data: done" in rest
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert await asyncio.to_thread(server.wait, GRACEFUL_S / 3) == 0
    assert time.monotonic() - stopped_at < GRACEFUL_S / 3, "not held to the graceful timeout"
    assert "still open after the graceful timeout" not in server.log
