"""WebSockets through the real CLI: the ``websockets`` client, and raw sockets for misbehaving.

One server per set of flags, shared by the module; every app here runs with ``-w 1`` so
what one socket does is visible to the next (broadcast, recorded disconnects).
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import ssl
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.typing import Subprotocol
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, Event, Ping, TextMessage

from tests.conftest import ServeFactory
from tests.harness import Server, SocketReader, read_until_close, wait_until

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
MAX_SIZE = 65536
PING_INTERVAL_S, PING_TIMEOUT_S = 0.3, 1.0


def start(*args: str) -> Iterator[Server]:
    server = Server(*args).start()
    yield server
    assert server.stop() == 0, server.log


@pytest.fixture(scope="module")
def ws() -> Iterator[Server]:
    """Small limits, quick pings, mounted under /api."""
    yield from start(
        "ws_apps:app",
        "-w",
        "1",
        "--root-path",
        "/api",
        "--ws-max-size",
        str(MAX_SIZE),
        "--ws-ping-interval",
        str(PING_INTERVAL_S),
        "--ws-ping-timeout",
        str(PING_TIMEOUT_S),
    )


@pytest.fixture(scope="module")
def plain() -> Iterator[Server]:
    """Default pings and sizes, no compression."""
    yield from start("ws_apps:app", "-w", "1", "--no-ws-per-message-deflate")


def url(server: Server, path: str) -> str:
    return f"ws://{server.host}:{server.port}{path}"


def events_of(server: Server, key: str) -> list[str]:
    """What the app recorded for ``key``."""
    result: list[str] = httpx.get(f"{server.url}/events?id={key}").json()
    return result


def wait_for_events(server: Server, key: str, timeout_s: float = 5) -> list[str]:
    """What the app recorded for ``key`` once it recorded anything (or [] at the timeout)."""
    found: list[str] = []

    def recorded() -> bool:
        nonlocal found
        found = events_of(server, key)
        return bool(found)

    wait_until(recorded, timeout_s)
    return found


def handshake(path: str, headers: str | None = None) -> bytes:
    if headers is None:
        headers = f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
    return (
        f"GET {path} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"{headers}\r\n"
    ).encode()


def open_raw(server: Server, path: str, timeout_s: float = 5) -> tuple[socket.socket, Connection]:
    """A raw socket past the handshake, and wsproto as its client side."""
    sock = server.connect(timeout_s)
    sock.sendall(handshake(path))
    reader = SocketReader(sock)
    assert reader.read_response().status == 101
    client = Connection(ConnectionType.CLIENT)
    client.receive_data(reader.buf)
    return sock, client


def read_events(sock: socket.socket, client: Connection, until: type[Event]) -> list[Event]:
    """Events from the server up to one of type ``until`` (or the end of the stream)."""
    seen: list[Event] = []
    while True:
        seen += client.events()
        if any(isinstance(e, until) for e in seen):
            return seen
        data = sock.recv(65536)
        if not data:
            return seen
        client.receive_data(data)


# -- messages -----------------------------------------------------------------------
async def test_echo_text_and_binary(ws: Server) -> None:
    async with connect(url(ws, "/echo")) as conn:
        await conn.send("héllo")
        assert await conn.recv() == "héllo"
        await conn.send(b"\x00\xff")
        assert await conn.recv() == b"\x00\xff"


async def test_fragmented_messages_are_reassembled(ws: Server) -> None:
    async with connect(url(ws, "/echo")) as conn:
        await conn.send(["ab", "cd", "é"])
        assert await conn.recv() == "abcdé"
        await conn.send([b"\x01" * 1000, b"\x02" * 1000])
        assert await conn.recv() == b"\x01" * 1000 + b"\x02" * 1000


async def test_broadcast_reaches_every_client(ws: Server) -> None:
    async with (
        connect(url(ws, "/broadcast")) as a,
        connect(url(ws, "/broadcast")) as b,
        connect(url(ws, "/broadcast")) as c,
    ):
        await a.send("count")
        assert await a.recv() == "3"
        await b.send("to everyone")
        assert [await x.recv() for x in (a, b, c)] == ["to everyone"] * 3


async def test_websocket_scope(ws: Server) -> None:
    async with connect(url(ws, "/scope?x=1")) as conn:
        scope = json.loads(await conn.recv())
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert (scope["http_version"], scope["scheme"]) == ("1.1", "ws")
    assert (scope["path"], scope["raw_path"], scope["root_path"]) == (
        "/api/scope",
        "/api/scope",
        "/api",
    )
    assert scope["query_string"] == "x=1"
    assert ["upgrade", "websocket"] in scope["headers"]
    assert scope["client"][0] == "127.0.0.1" and scope["server"] == ["127.0.0.1", ws.port]
    assert scope["subprotocols"] == []
    assert scope["state"] == {"greeting": "hello from lifespan"}
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert "method" not in scope


async def test_subprotocol_is_negotiated(ws: Server) -> None:
    offered = [Subprotocol("mqtt"), Subprotocol("chat.v2")]
    async with connect(url(ws, "/subprotocol"), subprotocols=offered) as conn:
        assert conn.subprotocol == "chat.v2"
        assert conn.response is not None
        assert conn.response.headers["x-chosen-by"] == "ws_apps"
        assert await conn.recv() == "chat.v2"
    async with connect(url(ws, "/subprotocol")) as conn:
        assert conn.subprotocol is None


# -- refusing the handshake ---------------------------------------------------------
async def test_denial_response_from_the_app(ws: Server) -> None:
    with pytest.raises(InvalidStatus) as caught:
        async with connect(url(ws, "/deny")):
            pass
    response = caught.value.response
    assert response.status_code == 401
    assert response.headers["x-denied"] == "yes"
    assert response.body == b"no entry"


@pytest.mark.parametrize(
    ("path", "status"),
    [("/reject", 403), ("/raise-before", 500), ("/no-handshake", 500)],
    ids=["close-before-accept", "raise-before-accept", "return-before-accept"],
)
async def test_no_accept_is_an_http_error(ws: Server, path: str, status: int) -> None:
    with pytest.raises(InvalidStatus) as caught:
        async with connect(url(ws, path)):
            pass
    assert caught.value.response.status_code == status
    assert caught.value.response.headers["connection"] == "close"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ("Sec-WebSocket-Version: 13\r\n", 400),
        (f"Sec-WebSocket-Key: {KEY}\r\n", 400),
        ("Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n", 400),
        (f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 8\r\n", 426),
    ],
    ids=["no-key", "no-version", "short-key", "old-version"],
)
def test_invalid_handshake_is_refused(ws: Server, headers: str, status: int) -> None:
    workers = ws.worker_pids()
    with ws.connect() as sock:
        sock.sendall(handshake("/echo", headers))
        reader = SocketReader(sock)
        response = reader.read_response()
        assert response.status == status
        assert response.header("connection") == "close"
        if status == 426:
            assert response.header("sec-websocket-version") == "13"
        assert read_until_close(sock) == b""
    assert ws.worker_pids() == workers


# -- closing ------------------------------------------------------------------------
async def test_app_close_code_and_reason_reach_the_client(ws: Server) -> None:
    async with connect(url(ws, "/close?code=4001&reason=bye")) as conn:
        await conn.send("go")
        with pytest.raises(ConnectionClosed) as caught:
            await conn.recv()
    assert caught.value.rcvd is not None
    assert (caught.value.rcvd.code, caught.value.rcvd.reason) == (4001, "bye")


async def test_client_close_code_and_reason_reach_the_app(ws: Server) -> None:
    async with connect(url(ws, "/echo?id=client-close")) as conn:
        await conn.close(4000, "done here")
    found = await asyncio.to_thread(wait_for_events, ws, "client-close")
    assert found == ["disconnect 4000 done here"]


@pytest.mark.parametrize(
    "message",
    [b"x" * (MAX_SIZE + 1), [b"x" * 20000] * 4],
    ids=["whole", "fragmented"],
)
async def test_oversized_message_closes_with_1009(ws: Server, message: object) -> None:
    async with connect(url(ws, "/echo?id=big"), max_size=None) as conn:
        await conn.send(message)  # type: ignore[arg-type]  # bytes or fragments
        with pytest.raises(ConnectionClosed) as caught:
            await conn.recv()
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 1009


async def test_app_raising_after_accept_closes_with_1011(ws: Server) -> None:
    async with connect(url(ws, "/raise-after")) as conn:
        await conn.send("trigger")
        with pytest.raises(ConnectionClosed) as caught:
            await conn.recv()
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 1011
    await asyncio.to_thread(ws.wait_for, "RuntimeError: boom after accept")


def test_client_vanishing_mid_message(ws: Server) -> None:
    workers = ws.worker_pids()
    sock, client = open_raw(ws, "/echo?id=vanish")
    frame = client.send(TextMessage("x" * 1000))
    sock.sendall(frame[: len(frame) // 2])
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # a reset, half a frame in
    assert wait_for_events(ws, "vanish") == ["disconnect 1006 "]
    assert ws.worker_pids() == workers
    with ws.connect() as again:  # the worker serves on
        again.sendall(handshake("/echo"))
        assert SocketReader(again).read_response().status == 101


# -- pings and compression -------------------------------------------------------------
async def test_client_ping_is_answered(ws: Server) -> None:
    async with connect(url(ws, "/echo"), ping_interval=None) as conn:
        pong = await conn.ping()
        await asyncio.wait_for(pong, 5)


async def test_server_pings_keep_an_answering_client_open(ws: Server) -> None:
    async with connect(url(ws, "/echo"), ping_interval=None) as conn:
        # Idle past a ping's timeout, which is the behaviour under test: pongs keep it open.
        await asyncio.sleep(PING_INTERVAL_S + PING_TIMEOUT_S + 0.3)
        await conn.send("still here")
        assert await conn.recv() == "still here"


def test_client_that_never_pongs_is_closed(ws: Server) -> None:
    sock, client = open_raw(ws, "/echo")
    with sock:
        started = time.monotonic()
        seen = read_events(sock, client, Ping)
        assert isinstance(seen[-1], Ping)
        seen = read_events(sock, client, CloseConnection)
        assert seen[-1] == CloseConnection(1011, "keepalive ping timeout")
        assert read_until_close(sock) == b""
        assert time.monotonic() - started < PING_INTERVAL_S + PING_TIMEOUT_S + 2


async def test_permessage_deflate_is_negotiated(ws: Server, plain: Server) -> None:
    async with connect(url(ws, "/echo")) as conn:
        assert conn.response is not None
        assert conn.response.headers["sec-websocket-extensions"].startswith("permessage-deflate")
        text = "compressible " * 4000
        await conn.send(text)
        assert await conn.recv() == text
    no_takeover = ClientPerMessageDeflateFactory(
        server_no_context_takeover=True, client_no_context_takeover=True
    )
    async with connect(url(ws, "/echo"), compression=None, extensions=[no_takeover]) as conn:
        for _ in range(2):
            await conn.send(text)
            assert await conn.recv() == text
    async with connect(url(plain, "/echo")) as conn:
        assert conn.response is not None
        assert "sec-websocket-extensions" not in conn.response.headers
        await conn.send("plain")
        assert await conn.recv() == "plain"


# -- backpressure ---------------------------------------------------------------------
def test_slow_reader_holds_the_app_not_memory(plain: Server) -> None:
    """A client that doesn't read stalls the app's ``send``; the server buffers little."""
    total = 4000  # 16 KiB each: 64 MiB if the server buffered it all
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.connect((plain.host, plain.port))
    with sock:
        sock.sendall(handshake(f"/flood?id=slow&n={total}"))
        assert SocketReader(sock).read_response().status == 101
        progress = [-1]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.2)  # the sampling window: a stall is no progress across it
            now = int(events_of(plain, "slow")[0])
            if now == progress[-1]:
                break
            progress.append(now)
        # Stalled, with only socket buffers' worth (a few MiB) in flight.
        assert 0 < progress[-1] < total // 2, progress
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # The reset frees the app: its next send fails instead of waiting forever.
    assert wait_until(lambda: events_of(plain, "slow")[-1] == "send failed", 5)


# -- other servers ----------------------------------------------------------------------
def test_ws_none_serves_upgrade_requests_as_http(serve: ServeFactory) -> None:
    server = serve("ws_apps:app", "-w", "1", "--ws", "none")
    with server.connect() as sock:
        sock.sendall(handshake("/echo"))
        response = SocketReader(sock).read_response()
    assert response.status == 200
    assert json.loads(response.body) == {"type": "http", "upgrade": "websocket"}


@pytest.mark.parametrize("backend", ["httptools", "h11"])
def test_wsgi_app_gets_an_upgrade_request_as_a_normal_one(
    serve: ServeFactory, backend: str
) -> None:
    server = serve("ws_wsgi:app", "-w", "1", "--http", backend)
    with server.connect() as sock:
        reader = SocketReader(sock)
        sock.sendall(handshake("/ws"))
        response = reader.read_response()
        assert response.status == 200
        assert json.loads(response.body) == {"path": "/ws", "upgrade": "websocket"}
        sock.sendall(b"GET /next HTTP/1.1\r\nHost: test\r\n\r\n")  # and the connection lives on
        assert json.loads(reader.read_response().body) == {"path": "/next", "upgrade": ""}


async def test_h11_backend_hands_over_the_connection_too(serve: ServeFactory) -> None:
    server = serve("ws_apps:app", "-w", "1", "--http", "h11")
    async with connect(url(server, "/echo")) as conn:
        await conn.send("over h11")
        assert await conn.recv() == "over h11"
    with pytest.raises(InvalidStatus) as caught:
        async with connect(url(server, "/reject")):
            pass
    assert caught.value.response.status_code == 403


async def test_wss_over_tls(serve: ServeFactory, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued = ca.issue_cert("127.0.0.1")
    issued.private_key_and_cert_chain_pem.write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    server = serve("ws_apps:app", "-w", "1", "--certfile", str(cert), "--keyfile", str(key))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    target = f"wss://{server.host}:{server.port}/scope"
    async with connect(target, ssl=context) as conn:
        assert json.loads(await conn.recv())["scheme"] == "wss"


async def test_starlette_websocket_route_with_lifespan_state(serve: ServeFactory) -> None:
    server = serve("ws_starlette:app", "-w", "1")
    async with connect(url(server, "/ws")) as conn:
        await conn.send("there")
        assert await conn.recv() == "hi: there"
    with pytest.raises(InvalidStatus) as caught:
        async with connect(url(server, "/deny")):
            pass
    assert caught.value.response.status_code == 403
    assert caught.value.response.body == b"nope"


async def test_graceful_stop_closes_open_websockets_with_1001(serve: ServeFactory) -> None:
    server = serve("ws_apps:app", "-w", "1")
    async with connect(url(server, "/echo?id=drain")) as conn:
        await conn.send("before")
        assert await conn.recv() == "before"
        server.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as caught:
            await conn.recv()
    assert caught.value.rcvd is not None
    assert caught.value.rcvd.code == 1001
    assert await asyncio.to_thread(server.wait) == 0
    assert "ws-event id=drain disconnect 1001 server shutting down" in server.log
