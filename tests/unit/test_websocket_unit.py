"""The WebSocket handshake and session without sockets: a fake channel, wsproto as the client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.extensions import Extension, PerMessageDeflate

from hybridserve.apps.asgi import ASGIAdapter
from hybridserve.apps.types import (
    Address,
    ASGIApp,
    FileBody,
    Message,
    Receive,
    Scope,
    Send,
    TLSInfo,
)
from hybridserve.apps.websocket import CLOSED, CLOSING, OPEN, WebSocketSession
from hybridserve.config_groups import WebSocket as WebSocketSettings
from hybridserve.errors import ProtocolError, ResponseError
from hybridserve.sansio.events import Headers, Request
from hybridserve.sansio.websocket import (
    Closing,
    Ended,
    Handshake,
    MessageReceived,
    WebSocketConnection,
    accept_head,
    negotiate_deflate,
    read_handshake,
    valid_close_code,
)

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's example


def upgrade(*extra: tuple[bytes, bytes], method: bytes = b"GET", version: bytes = b"13") -> Request:
    headers = [
        (b"host", b"test"),
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-key", KEY),
        (b"sec-websocket-version", version),
        *extra,
    ]
    return Request(method, b"/ws?x=1", b"1.1", headers, True, upgrade=b"websocket")


# -- the handshake ------------------------------------------------------------------
def test_handshake_reads_key_subprotocols_and_extension_offers() -> None:
    request = upgrade(
        (b"sec-websocket-protocol", b"chat.v1, chat.v2"),
        (b"sec-websocket-protocol", b"mqtt"),
        (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits"),
    )
    handshake = read_handshake(request)
    assert handshake.key == KEY
    assert handshake.subprotocols == ["chat.v1", "chat.v2", "mqtt"]
    assert handshake.extensions == ["permessage-deflate; client_max_window_bits"]


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        (upgrade(version=b"8"), 426),
        (upgrade(version=b""), 400),
        (upgrade(method=b"POST"), 400),
        (
            Request(b"GET", b"/", b"1.1", [(b"sec-websocket-version", b"13")], True),
            400,
        ),
        (
            Request(
                b"GET",
                b"/",
                b"1.1",
                [(b"sec-websocket-key", b"c2hvcnQ="), (b"sec-websocket-version", b"13")],
                True,
            ),
            400,
        ),
    ],
    ids=["bad-version", "no-version", "post", "no-key", "short-key"],
)
def test_bad_handshakes_are_refused(request_: Request, status: int) -> None:
    with pytest.raises(ProtocolError) as caught:
        read_handshake(request_)
    assert caught.value.status == status


def test_accept_head_carries_the_rfc_accept_token_and_app_headers() -> None:
    handshake = Handshake(KEY, ["chat"], [])
    head = accept_head(handshake, "chat", None, [(b"x-app", b"1"), (b"connection", b"x")])
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head
    assert b"Sec-WebSocket-Protocol: chat\r\n" in head
    assert b"x-app: 1\r\n" in head
    assert head.count(b"Connection:") == 1 and head.endswith(b"\r\n\r\n")


def test_accept_head_refuses_what_cannot_be_sent() -> None:
    handshake = Handshake(KEY, ["chat"], [])
    with pytest.raises(ResponseError):
        accept_head(handshake, "other", None, [])
    with pytest.raises(ResponseError):
        accept_head(handshake, None, None, [(b"x-bad", b"a\r\nInjected: 1")])


def test_deflate_is_negotiated_only_when_offered() -> None:
    extensions, header = negotiate_deflate(["permessage-deflate; client_max_window_bits"])
    assert [e.name for e in extensions] == ["permessage-deflate"]
    assert header is not None and header.startswith(b"permessage-deflate")
    assert negotiate_deflate(["x-webkit-deflate-frame"]) == ([], None)
    assert negotiate_deflate(["permessage-deflate; client_max_window_bits=x"]) == ([], None)


def test_deflate_takes_the_first_acceptable_offer_with_its_parameters() -> None:
    offers = [
        "permessage-deflate; server_max_window_bits=8",  # below zlib's 9: declined
        "permessage-deflate; server_no_context_takeover; client_max_window_bits",
    ]
    extensions, header = negotiate_deflate(offers)
    assert len(extensions) == 1
    assert header == (b"permessage-deflate; server_no_context_takeover; client_max_window_bits=15")


def test_close_codes_an_app_may_send() -> None:
    assert all(valid_close_code(c) for c in (1000, 1001, 1008, 1011, 1012, 3000, 4999))
    assert not any(valid_close_code(c) for c in (999, 1004, 1005, 1006, 1015, 2000, 5000))


# -- the session, against a fake channel ----------------------------------------------
class FakeChannel:
    """Records what the session did to its connection."""

    client: Address = ("127.0.0.1", 5000)
    server: Address = ("127.0.0.1", 8000)
    scheme = "http"
    tls: TLSInfo | None = None

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.responses: list[tuple[int, Headers, bytes]] = []
        self.head = b""
        self.wire = bytearray()
        self.session: WebSocketSession | None = None
        self.closed = self.reset_called = self.aborted = False
        self.reading = True

    def send_head(self, status: int, headers: Headers, body: bytes, end: bool) -> None:
        self.responses.append((status, headers, body))

    def send_body(self, data: bytes, end: bool) -> None:
        status, headers, body = self.responses[-1]
        self.responses[-1] = (status, headers, body + data)

    def send_trailers(self, trailers: Headers) -> None:
        pass

    def send_file(
        self, status: int, headers: Headers, body: FileBody, done: Callable[[bool], None]
    ) -> None:
        raise AssertionError("a WebSocket session sends no file")

    def send_continue(self) -> None:
        pass

    def abort(self) -> None:
        self.aborted = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def switch_protocols(self, session: WebSocketSession, head: bytes) -> None:
        self.session, self.head = session, head

    def write(self, data: bytes) -> None:
        self.wire += data

    def close(self) -> None:
        self.closed = True

    def reset(self) -> None:
        self.reset_called = True


class Peer:
    """A session, its fake channel, and a wsproto client speaking to it."""

    def __init__(self, app: ASGIApp, request: Request | None = None, **settings: object) -> None:
        self.channel = FakeChannel(asyncio.get_running_loop())
        adapter = ASGIAdapter(app, root_path="")
        settings.setdefault("ping_interval_s", 0)
        config = WebSocketSettings(**settings)  # type: ignore[arg-type]  # test knobs
        self.session = WebSocketSession(adapter, request or upgrade(), self.channel, config)
        self._client: Connection | None = None
        self.session.start()

    @property
    def client(self) -> Connection:
        """The client's side, made once the 101 told it what was negotiated."""
        if self._client is None:
            extensions: list[Extension] = []
            for line in self.channel.head.split(b"\r\n"):
                if line.startswith(b"Sec-WebSocket-Extensions: "):
                    deflate = PerMessageDeflate()
                    deflate.finalize(line.split(b": ", 1)[1].decode())
                    extensions.append(deflate)
            self._client = Connection(ConnectionType.CLIENT, extensions)
        return self._client

    def send(self, event: Event) -> None:
        self.session.data_received(self.client.send(event))

    def events(self) -> list[Event]:
        data, self.channel.wire = bytes(self.channel.wire), bytearray()
        self.client.receive_data(data)
        return list(self.client.events())


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def echo_app(log: list[Message]) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        log.append(await receive())
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            log.append(message)
            if message["type"] == "websocket.disconnect":
                return
            await send({**message, "type": "websocket.send"})

    return app


async def test_echo_of_whole_and_fragmented_messages() -> None:
    seen: list[Message] = []
    peer = Peer(echo_app(seen), per_message_deflate=False)
    await settle()
    assert peer.channel.session is peer.session and peer.session.state == OPEN
    peer.send(TextMessage("héllo"))
    peer.send(BytesMessage(b"ab", message_finished=False))
    peer.send(BytesMessage(b"cd"))
    await settle()
    assert [(type(e), e.data) for e in peer.events()] == [  # type: ignore[attr-defined]
        (TextMessage, "héllo"),
        (BytesMessage, b"abcd"),
    ]
    assert seen[0] == {"type": "websocket.connect"}
    assert seen[2] == {"type": "websocket.receive", "bytes": b"abcd"}


async def test_scope_is_a_websocket_scope() -> None:
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)

    Peer(app, upgrade((b"sec-websocket-protocol", b"a, b")))
    await settle()
    scope = scopes[0]
    assert scope["type"] == "websocket" and "method" not in scope
    assert (scope["scheme"], scope["path"], scope["query_string"]) == ("ws", "/ws", b"x=1")
    assert scope["subprotocols"] == ["a", "b"]
    assert scope["extensions"] == {"websocket.http.response": {}}


async def test_message_over_the_limit_closes_with_1009() -> None:
    seen: list[Message] = []
    peer = Peer(echo_app(seen), max_size_bytes=10)
    await settle()
    peer.send(TextMessage("0123456", message_finished=False))
    peer.send(TextMessage("789ab"))
    await settle()
    events = peer.events()
    assert isinstance(events[0], CloseConnection) and events[0].code == 1009
    assert seen[-1] == {"type": "websocket.disconnect", "code": 1009, "reason": "message too big"}
    assert peer.session.state == CLOSING
    peer.send(events[0].response())  # the client answers: now TCP closes
    assert peer.channel.closed and peer.session.state == CLOSED


async def test_a_deflate_bomb_is_cut_off_without_inflating_it_whole() -> None:
    seen: list[Message] = []
    offer = (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits")
    peer = Peer(echo_app(seen), upgrade(offer), max_size_bytes=1 << 20)
    await settle()
    wire = peer.client.send(BytesMessage(bytes(64 << 20)))
    assert len(wire) < 128 * 1024  # 64 MiB of zeros, deflated
    peer.session.data_received(wire)  # inflated a slice at a time, then not at all
    await settle()
    assert seen[-1]["code"] == 1009
    assert peer.channel.closed and peer.session.state == CLOSED


async def test_client_ping_is_answered_and_held_while_writing_is_paused() -> None:
    peer = Peer(echo_app([]))
    await settle()
    peer.send(Ping(b"1"))
    assert peer.events() == [Pong(b"1")]
    peer.session.pause_writing()
    peer.send(Ping(b"2"))
    peer.send(Ping(b"3"))
    assert peer.events() == []
    peer.session.resume_writing()
    assert peer.events() == [Pong(b"3")]  # only the latest one is owed


async def test_server_pings_on_the_worker_clock_and_closes_when_no_pong_comes() -> None:
    seen: list[Message] = []
    peer = Peer(echo_app(seen), ping_interval_s=20, ping_timeout_s=5)
    await settle()
    session = peer.session
    session.check_deadline(100.0)  # the first sweep after accept starts the interval
    session.check_deadline(119.0)
    assert peer.events() == []
    session.check_deadline(120.0)
    pings = peer.events()
    assert len(pings) == 1 and isinstance(pings[0], Ping)
    peer.send(pings[0].response())  # a pong: still alive
    session.check_deadline(126.0)
    assert session.state == OPEN
    session.check_deadline(140.0)  # the next ping; this time no pong comes
    assert [type(e) for e in peer.events()] == [Ping]
    session.check_deadline(144.0)
    assert session.state == OPEN
    session.check_deadline(145.0)
    closes = [e for e in peer.events() if isinstance(e, CloseConnection)]
    assert closes == [CloseConnection(1011, "keepalive ping timeout")]
    await settle()
    assert seen[-1]["code"] == 1011 and peer.channel.closed


async def test_a_peer_that_never_answers_our_close_is_reset_after_the_close_timeout() -> None:
    peer = Peer(echo_app([]))
    await settle()
    peer.session.shutdown()
    assert [type(e) for e in peer.events()] == [CloseConnection]
    peer.session.check_deadline(50.0)
    peer.session.check_deadline(59.0)
    assert not peer.channel.reset_called
    peer.session.check_deadline(60.0)
    assert peer.channel.reset_called


async def test_send_waits_while_the_transport_is_paused() -> None:
    sent: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        for i in range(3):
            await send({"type": "websocket.send", "bytes": b"x"})
            sent.append(i)

    peer = Peer(app)
    peer.session.pause_writing()
    await settle()
    assert sent == []  # the accept itself waits for the transport
    peer.session.resume_writing()
    await settle()
    assert sent == [0, 1, 2]


async def test_queued_messages_pause_reading_until_the_app_catches_up() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await asyncio.Event().wait()  # never reads

    peer = Peer(app)
    await settle()
    for _ in range(5):
        peer.send(BytesMessage(bytes(100_000)))
    assert not peer.channel.reading
    for _ in range(5):
        await peer.session.receive()
    assert peer.channel.reading


async def test_peer_close_is_answered_and_reported() -> None:
    seen: list[Message] = []
    peer = Peer(echo_app(seen))
    await settle()
    peer.send(CloseConnection(4000, "done"))
    await settle()
    assert peer.events() == [CloseConnection(4000, "done")]
    assert peer.channel.closed
    assert seen[-1] == {"type": "websocket.disconnect", "code": 4000, "reason": "done"}


async def test_lost_connection_is_1006_and_send_raises() -> None:
    errors: list[BaseException] = []
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        seen.append(await receive())
        try:
            await send({"type": "websocket.send", "text": "late"})
        except OSError as exc:
            errors.append(exc)

    peer = Peer(app)
    await settle()
    peer.session.connection_lost()
    await settle()
    assert seen == [{"type": "websocket.disconnect", "code": 1006, "reason": ""}]
    assert len(errors) == 1


async def test_shutdown_closes_with_1001() -> None:
    seen: list[Message] = []
    peer = Peer(echo_app(seen))
    await settle()
    peer.session.shutdown()
    await settle()
    assert peer.events() == [CloseConnection(1001, "server shutting down")]
    assert seen[-1]["code"] == 1001


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ({"type": "websocket.close"}, 403),
        ({"type": "websocket.send", "text": "too early"}, 500),
    ],
)
async def test_answers_before_accept(message: Message, status: int) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send(message)

    peer = Peer(app)
    await settle()
    assert [r[0] for r in peer.channel.responses] == [status]
    assert (b"connection", b"close") in peer.channel.responses[0][1]
    assert peer.channel.session is None


async def test_app_error_after_accept_closes_with_1011() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        raise RuntimeError("boom")

    peer = Peer(app)
    await settle()
    assert peer.events() == [CloseConnection(1011, "internal error")]


async def test_denial_response_goes_out_as_http() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        start = {"type": "websocket.http.response.start", "status": 401, "headers": []}
        await send(start)
        await send({"type": "websocket.http.response.body", "body": b"a", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"b"})

    peer = Peer(app)
    await settle()
    assert peer.channel.responses == [(401, [(b"connection", b"close")], b"ab")]


async def test_bad_handshake_never_reaches_the_app() -> None:
    called: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        called.append(scope)

    peer = Peer(app, upgrade(version=b"7"))
    await settle()
    status, headers, _ = peer.channel.responses[0]
    assert status == 426 and (b"sec-websocket-version", b"13") in headers
    assert called == []


# -- the sans-IO connection alone: bytes in, events and bytes out ----------------------
def client_and_server(max_size: int = 100) -> tuple[Connection, WebSocketConnection]:
    return Connection(ConnectionType.CLIENT), WebSocketConnection([], max_size)


def frames(client: Connection, data: bytes) -> list[Event]:
    client.receive_data(data)
    return list(client.events())


def test_connection_assembles_fragments_and_counts_utf8_bytes() -> None:
    client, conn = client_and_server()
    wire = client.send(TextMessage("hé", message_finished=False)) + client.send(TextMessage("!"))
    assert conn.receive(wire) == [MessageReceived("hé!", 4)]


def test_connection_too_big_starts_closing_and_discards_what_follows() -> None:
    client, conn = client_and_server(max_size=4)
    assert conn.receive(client.send(BytesMessage(b"12345"))) == [Closing(1009, "message too big")]
    assert conn.state == "closing"
    late = client.send(BytesMessage(b"ab"))  # sent before the client saw our Close
    assert frames(client, conn.data_to_send()) == [CloseConnection(1009, "message too big")]
    assert conn.receive(late) == []  # thrown away, not delivered


def test_connection_answers_the_peers_close_and_ends() -> None:
    client, conn = client_and_server()
    assert conn.receive(client.send(CloseConnection(4000, "bye"))) == [Ended(4000, "bye")]
    assert conn.state == "closed"
    assert frames(client, conn.data_to_send()) == [CloseConnection(4000, "bye")]


def test_connection_holds_only_the_latest_pong_while_writing_is_paused() -> None:
    client, conn = client_and_server()
    conn.receive(client.send(Ping(b"1")) + client.send(Ping(b"2")))
    assert conn.data_to_send(pong=False) == b""
    assert frames(client, conn.data_to_send()) == [Pong(b"2")]
    assert conn.data_to_send() == b""
