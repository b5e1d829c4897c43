"""ASGI ``websocket`` over HTTP/1.1: the handshake, then wsproto frames on the transport.

How this works: an upgrade request for an ASGI app gets a ``WebSocketSession`` as its
request cycle. While the app decides, the session answers through the ordinary HTTP
channel: a bad handshake (400, or 426 for a version we don't speak), a close before
accept (403), an app error (500) and a ``websocket.http.response`` denial all go out as
plain responses that close the connection. On ``websocket.accept`` the session writes the
101 itself and the protocol hands it the connection: from then on bytes go to wsproto's
frame parser and frames go straight to the transport.

States only move forward: CONNECTING (the app has not answered), RESPONDING (a denial
response is under way), OPEN, CLOSING (we sent a Close and wait for the peer's), CLOSED.
The server closes TCP once both Close frames have crossed (RFC 6455 §7.1.1), or after
``CLOSE_TIMEOUT_S``. The app sees ``websocket.disconnect`` once: with the peer's code if
the peer closed first, with ours if we did (1000, 1009 too big, 1011 error or ping
timeout, 1001 server stopping), and 1006 if the connection was lost without a Close.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from typing import Protocol

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.extensions import Extension

from hybridserve.apps.asgi import (
    ERROR_BODY,
    ERROR_HEADERS,
    ASGIAdapter,
    ClientDisconnected,
    build_scope,
)
from hybridserve.apps.types import Channel, Message, Scope
from hybridserve.config import WebSocket as WebSocketSettings
from hybridserve.errors import ProtocolError, ResponseError
from hybridserve.sansio.events import Headers, Request
from hybridserve.sansio.websocket import (
    Handshake,
    accept_head,
    negotiate_deflate,
    read_handshake,
    valid_close_code,
)

log = logging.getLogger("hybridserve.error")

ASGI_VERSION = {"version": "3.0", "spec_version": "2.5"}  # 2.5: ``reason`` in disconnect
INPUT_HIGH_BYTES = 256 * 1024  # messages queued for the app above this pause reading
CLOSE_TIMEOUT_S = 10.0  # wait this long for the peer's Close (websockets' close_timeout)
DEFLATE_SLICE_BYTES = 4096  # inflate <= ~4 MiB per step: zlib's worst ratio is ~1:1032
CLOSE_HEADER = (b"connection", b"close")
TEXT_HEADERS: Headers = [(b"content-type", b"text/plain; charset=utf-8"), CLOSE_HEADER]

NORMAL, GOING_AWAY, ABNORMAL, TOO_BIG, INTERNAL_ERROR = 1000, 1001, 1006, 1009, 1011
CONNECTING, RESPONDING, OPEN, CLOSING, CLOSED = range(5)


def build_websocket_scope(
    request: Request, channel: Channel, handshake: Handshake, adapter: ASGIAdapter
) -> Scope:
    """The ``websocket`` scope: the ``http`` one's paths and headers, ws/wss, subprotocols."""
    scope = build_scope(request, channel, adapter.root_path, adapter.state)
    del scope["method"]
    scope["type"] = "websocket"
    scope["asgi"] = dict(ASGI_VERSION)
    scope["scheme"] = "wss" if channel.scheme == "https" else "ws"
    scope["subprotocols"] = list(handshake.subprotocols)
    scope["extensions"] = {"websocket.http.response": {}}
    return scope


# -- the session ------------------------------------------------------------------
class WebSocketChannel(Channel, Protocol):
    """The connection as a session sees it: a request cycle's channel, then raw bytes."""

    def switch_protocols(self, session: WebSocketSession, head: bytes) -> None:
        """Write the 101; every later event of the connection goes to ``session``."""

    def write(self, data: bytes) -> None:
        """Write bytes as they are."""

    def close(self) -> None:
        """Close once what was written is flushed."""

    def reset(self) -> None:
        """Drop the connection now, unsent bytes and all."""


class WebSocketSession:
    """One WebSocket connection: the app's ``receive``/``send`` and the frames on the wire."""

    def __init__(
        self,
        adapter: ASGIAdapter,
        request: Request,
        channel: WebSocketChannel,
        settings: WebSocketSettings,
    ) -> None:
        self._adapter = adapter
        self._request = request
        self._channel = channel
        self._settings = settings
        self._loop = channel.loop
        self.state = CONNECTING
        self._handshake: Handshake | None = None
        self._ws: Connection | None = None
        self._slice = 0  # >0: feed wsproto this many bytes at a time (deflate)
        self._inbox: deque[tuple[Message, int]] = deque([({"type": "websocket.connect"}, 0)])
        self._queued = 0
        self._disconnect: Message | None = None
        self._text: list[str] = []
        self._binary: list[bytes] = []
        self._message_bytes = 0
        self._discarded = 0  # data bytes parsed after our Close, to be thrown away
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._write_paused = False
        self._reading_paused = False
        self._pong_owed: bytes | None = None  # a ping answered once writing resumes
        self._status = 0
        self._headers: Headers = []
        self._head_sent = False
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[None] | None = None

    # -- as the request's Cycle, until the handshake completes ----------------------
    def feed_body(self, data: bytes) -> None:
        """An upgrade GET has no body worth reading."""

    def feed_end(self) -> None:
        pass

    def start(self) -> None:
        try:
            self._handshake = read_handshake(self._request)
        except ProtocolError as exc:
            log.debug("bad WebSocket handshake from %s: %s", self._channel.client, exc)
            headers = list(TEXT_HEADERS)
            if exc.status == 426:
                headers.append((b"sec-websocket-version", b"13"))
            self._respond(exc.status, headers, (str(exc) + "\n").encode())
            return
        self.task = self._loop.create_task(self._run())

    def disconnected(self) -> None:
        self.connection_lost()

    def expire(self) -> None:
        """Exempt from --request-timeout: a WebSocket lives as long as it is used."""

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._pong_owed is not None:
            payload, self._pong_owed = self._pong_owed, None
            self._answer_ping(payload)
        self._release_senders()

    # -- after the handshake: the connection's events, forwarded by the protocol ----
    def data_received(self, data: bytes) -> None:
        ws = self._ws
        step = self._slice or len(data) or 1
        for start in range(0, len(data), step):
            if ws is None or self.state == CLOSED or ws.state is ConnectionState.CLOSED:
                return
            ws.receive_data(data[start : start + step])
            self._handle_events(ws)

    def eof_received(self) -> bool:
        return False  # the peer's half-close ends the connection: close our side too

    def connection_lost(self) -> None:
        self.state = CLOSED
        for timer in (self._ping_timer, self._pong_timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        self._finish(ABNORMAL, "")

    def shutdown(self) -> None:
        """The worker is stopping: 1001, going away (RFC 6455 §7.4.1), so the client
        reconnects, to a sibling or the next generation."""
        self._close(GOING_AWAY, "server shutting down")

    # -- frames from the client ---------------------------------------------------
    def _handle_events(self, ws: Connection) -> None:
        for event in ws.events():
            if isinstance(event, TextMessage | BytesMessage):
                self._on_data(event)
            elif isinstance(event, Ping):
                self._answer_ping(event.payload)
            elif isinstance(event, Pong):
                if self._pong_timer is not None:
                    self._pong_timer.cancel()
                    self._pong_timer = None
            elif isinstance(event, CloseConnection):
                self._on_close(ws, event)

    def _on_data(self, event: TextMessage | BytesMessage) -> None:
        data = event.data
        if self.state != OPEN:  # after our Close the peer's data is discarded (RFC 6455 §1.4)
            self._discarded += len(data)
            if self._discarded > self._settings.max_size_bytes:
                self.state = CLOSED  # and parsed no further: inflating it costs us, not them
                self._channel.close()
            return
        if isinstance(data, str):
            self._message_bytes += len(data) if data.isascii() else len(data.encode())
            self._text.append(data)
        else:
            self._message_bytes += len(data)
            self._binary.append(bytes(data))
        if self._message_bytes > self._settings.max_size_bytes:
            self._text.clear()
            self._binary.clear()
            self._close(TOO_BIG, "message too big")
            return
        if not event.message_finished:
            return
        message: Message
        if isinstance(data, str):
            message = {"type": "websocket.receive", "text": "".join(self._text)}
            self._text.clear()
        else:
            message = {"type": "websocket.receive", "bytes": b"".join(self._binary)}
            self._binary.clear()
        size, self._message_bytes = self._message_bytes, 0
        self._inbox.append((message, size))
        self._queued += size
        if self._queued > INPUT_HIGH_BYTES and not self._reading_paused:
            self._reading_paused = True
            self._channel.pause_reading()
        self._wake()

    def _answer_ping(self, payload: bytes) -> None:
        ws = self._ws
        if self._write_paused:
            self._pong_owed = payload  # only the latest ping needs a pong (RFC 6455 §5.5.3)
        elif ws is not None and ws.state is ConnectionState.OPEN:
            self._channel.write(ws.send(Pong(payload)))

    def _on_close(self, ws: Connection, event: CloseConnection) -> None:
        code, reason = int(event.code), event.reason or ""
        if ws.state is ConnectionState.OPEN:  # not a Close frame: the peer broke the protocol
            self._close(code, reason)
            self._channel.close()  # wsproto parses no further: fail the connection now
            return
        if ws.state is ConnectionState.REMOTE_CLOSING:  # the peer closed first: answer it
            self._channel.write(ws.send(event.response()))
        self.state = CLOSED
        self._finish(code, reason)
        self._channel.close()

    # -- server pings ---------------------------------------------------------------
    def _schedule_ping(self) -> None:
        interval = self._settings.ping_interval_s
        if interval > 0 and self.state == OPEN:
            self._ping_timer = self._loop.call_later(interval, self._ping)

    def _ping(self) -> None:
        self._ping_timer = None
        ws = self._ws
        if ws is None or self.state != OPEN:
            return
        self._channel.write(ws.send(Ping(os.urandom(4))))
        timeout = self._settings.ping_timeout_s
        if timeout > 0 and self._pong_timer is None:
            self._pong_timer = self._loop.call_later(timeout, self._pong_missing)
        self._schedule_ping()

    def _pong_missing(self) -> None:
        self._pong_timer = None
        log.debug("WebSocket client %s sent no pong; closing", self._channel.client)
        self._close(INTERNAL_ERROR, "keepalive ping timeout")
        self._channel.close()  # the peer is unresponsive: don't wait for its Close

    # -- closing --------------------------------------------------------------------
    def _close(self, code: int, reason: str) -> None:
        """Send our Close (state OPEN only); the app hears of it at once."""
        ws = self._ws
        if ws is None or self.state != OPEN:
            return
        self.state = CLOSING
        self._channel.write(ws.send(CloseConnection(code, reason)))
        for timer in (self._ping_timer, self._pong_timer):
            if timer is not None:
                timer.cancel()
        self._close_timer = self._loop.call_later(CLOSE_TIMEOUT_S, self._channel.reset)
        self._finish(code, reason)

    def _finish(self, code: int, reason: str) -> None:
        """The WebSocket is over: ``receive`` says so, and no ``send`` waits any longer."""
        if self._disconnect is None:
            self._disconnect = {"type": "websocket.disconnect", "code": code, "reason": reason}
        self._wake()
        self._release_senders()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _release_senders(self) -> None:
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- the app's side -------------------------------------------------------------
    async def receive(self) -> Message:
        while True:
            if self._inbox:
                message, size = self._inbox.popleft()
                self._queued -= size
                if self._reading_paused and self._queued <= INPUT_HIGH_BYTES // 2:
                    self._reading_paused = False
                    self._channel.resume_reading()
                return message
            if self._disconnect is not None:
                return dict(self._disconnect)
            self._waiter = self._loop.create_future()
            await self._waiter
            self._waiter = None

    async def send(self, message: Message) -> None:
        kind = message["type"]
        state = self.state
        if state == OPEN and kind == "websocket.send":
            self._send_data(message)
        elif state == OPEN and kind == "websocket.close":
            code = message.get("code") or NORMAL
            if not valid_close_code(code):
                raise ResponseError(f"invalid WebSocket close code {code!r}")
            self._close(code, message.get("reason") or "")
        elif state == CONNECTING and kind == "websocket.accept":
            self._accept(message)
        elif state == CONNECTING and kind == "websocket.close":
            self._respond(403, TEXT_HEADERS, b"")
        elif state == CONNECTING and kind == "websocket.http.response.start":
            self._status = message["status"]
            self._headers = [(bytes(n), bytes(v)) for n, v in message.get("headers", ())]
            self._headers.append(CLOSE_HEADER)
            self.state = RESPONDING
        elif state == RESPONDING and kind == "websocket.http.response.body":
            self._send_response_body(message.get("body", b""), message.get("more_body", False))
        elif state >= CLOSING:
            if kind == "websocket.close":
                return  # closing twice is harmless
            raise ClientDisconnected("WebSocket closed")
        else:
            raise ResponseError(f"unexpected ASGI message {kind!r} in WebSocket state {state}")
        if self._write_paused and self.state in (OPEN, RESPONDING):
            drain = self._drain
            if drain is None or drain.done():
                drain = self._drain = self._loop.create_future()
            await asyncio.shield(drain)  # shared by concurrent senders: don't cancel it

    def _send_data(self, message: Message) -> None:
        ws = self._ws
        assert ws is not None
        text, data = message.get("text"), message.get("bytes")
        if text is not None:
            self._channel.write(ws.send(TextMessage(text)))
        elif data is not None:
            self._channel.write(ws.send(BytesMessage(bytes(data))))
        else:
            raise ResponseError("websocket.send without text or bytes")

    def _accept(self, message: Message) -> None:
        handshake = self._handshake
        assert handshake is not None
        extensions: list[Extension] = []
        offer = None
        if self._settings.per_message_deflate and handshake.extensions:
            extensions, offer = negotiate_deflate(handshake.extensions)
        headers = [(bytes(n), bytes(v)) for n, v in message.get("headers", ())]
        head = accept_head(handshake, message.get("subprotocol"), offer, headers)
        self._ws = Connection(ConnectionType.SERVER, extensions)
        self._slice = DEFLATE_SLICE_BYTES if extensions else 0
        self.state = OPEN
        self._channel.switch_protocols(self, head)
        self._schedule_ping()

    def _respond(self, status: int, headers: Headers, body: bytes) -> None:
        """A whole HTTP response instead of the upgrade; the connection closes after it."""
        self.state = CLOSED
        self._finish(ABNORMAL, "")
        try:
            self._channel.send_head(status, headers, body, True)
        except ResponseError:  # a denial's head was taken but its body refused: nothing sent
            self._channel.abort()

    def _send_response_body(self, body: bytes, more: bool) -> None:
        if not self._head_sent:
            self._channel.send_head(self._status, self._headers, body, not more)
            self._head_sent = True  # after: a head refused as invalid still allows a 500
        else:
            self._channel.send_body(body, not more)
        if not more:
            self.state = CLOSED
            self._finish(ABNORMAL, "")

    # -- the app task ---------------------------------------------------------------
    async def _run(self) -> None:
        adapter = self._adapter
        assert self._handshake is not None
        scope = build_websocket_scope(self._request, self._channel, self._handshake, adapter)
        try:
            await adapter.app(scope, self.receive, self.send)
        except ClientDisconnected:
            log.debug("WebSocket client %s went away", self._channel.client)
        except Exception as exc:
            if isinstance(exc, ResponseError):
                log.error("ASGI app %r: %s", adapter.app, exc)
            else:
                log.exception("Exception in ASGI app %r (WebSocket)", adapter.app)
            self._app_failed()
        else:
            if self.state in (CONNECTING, RESPONDING):
                log.error("ASGI app %r returned without completing the handshake", adapter.app)
                self._app_failed()
            self._close(NORMAL, "")

    def _app_failed(self) -> None:
        """500 while HTTP is still possible, abort mid-response, 1011 once open."""
        if self.state == CONNECTING or (self.state == RESPONDING and not self._head_sent):
            self._respond(500, [*ERROR_HEADERS, CLOSE_HEADER], ERROR_BODY)
        elif self.state == RESPONDING:
            self.state = CLOSED
            self._finish(ABNORMAL, "")
            self._channel.abort()
        else:
            self._close(INTERNAL_ERROR, "internal error")
