"""ASGI ``websocket`` over HTTP/1.1: the app's messages mapped to a sans-IO connection.

How this works: an upgrade request for an ASGI app gets a ``WebSocketSession`` as its
request cycle. While the app decides, the session answers through the ordinary HTTP
channel: a bad handshake (400, or 426 for a version we don't speak), a close before
accept (403), an app error (500) and a ``websocket.http.response`` denial all go out as
plain responses that close the connection. On ``websocket.accept`` the session has the
channel write the 101 and hand it the connection's bytes: they go to the sans-IO
``WebSocketConnection`` (framing, limits, close state), whose events become the app's
messages, queued in an ``Inbox`` that pauses reading while the app is behind. The
worker's once-a-second sweep calls ``check_deadline``, and the sans-IO ``Deadlines`` say
whether a ping or the close timeout is due: no timer of its own runs here.

States only move forward: CONNECTING (the app has not answered), RESPONDING (a denial
response is under way), OPEN, CLOSING (we sent a Close and wait for the peer's), CLOSED.
The server closes TCP once both Close frames have crossed (RFC 6455 §7.1.1), or after
the close timeout. The app sees ``websocket.disconnect`` once: with the peer's code if
the peer closed first, with ours if we did (1000, 1009 too big, 1011 error or ping
timeout, 1001 server stopping), and 1006 if the connection was lost without a Close.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Protocol, runtime_checkable

from hybridserve.apps.asgi import ASGIAdapter, build_websocket_scope
from hybridserve.apps.failure import fail_response
from hybridserve.apps.inbox import Inbox
from hybridserve.apps.types import Channel, Cycle, Message
from hybridserve.config_groups import WebSocket as WebSocketSettings
from hybridserve.errors import ClientDisconnected, ProtocolError, ResponseError
from hybridserve.sansio.events import Headers, Request
from hybridserve.sansio.websocket import (
    Closing,
    Deadlines,
    Due,
    Ended,
    Handshake,
    MessageReceived,
    PongReceived,
    WebSocketConnection,
    WebSocketEvent,
    accept,
    read_handshake,
    refusal_headers,
    valid_close_code,
)

log = logging.getLogger("hybridserve.error")

INPUT_HIGH_BYTES = 256 * 1024  # messages queued for the app above this pause reading
CLOSE_HEADER = (b"connection", b"close")
TEXT_HEADERS: Headers = [(b"content-type", b"text/plain; charset=utf-8"), CLOSE_HEADER]

NORMAL, GOING_AWAY, ABNORMAL, INTERNAL_ERROR = 1000, 1001, 1006, 1011
CONNECTING, RESPONDING, OPEN, CLOSING, CLOSED = range(5)


# -- the session ------------------------------------------------------------------
@runtime_checkable
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
        self._conn: WebSocketConnection | None = None
        self._inbox = Inbox(channel, INPUT_HIGH_BYTES)
        self._inbox.put({"type": "websocket.connect"}, 0)
        self._drain: asyncio.Future[None] | None = None
        self._write_paused = False
        self._status = 0
        self._headers: Headers = []
        self._head_sent = False
        self._deadlines = Deadlines(settings.ping_interval_s, settings.ping_timeout_s)
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
            headers = [*TEXT_HEADERS, *refusal_headers(exc.status)]
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
        self._flush()  # with the pong owed while we could not write
        self._release_senders()

    # -- after the handshake: the connection's events, forwarded by the protocol ----
    def data_received(self, data: bytes) -> None:
        conn = self._conn
        if conn is None or self.state == CLOSED:
            return
        for event in conn.receive(data):
            self._on_event(event)
        self._flush()

    def eof_received(self) -> bool:
        return False  # the peer's half-close ends the connection: close our side too

    def connection_lost(self) -> None:
        self.state = CLOSED
        self._deadlines.stop()
        self._finish(ABNORMAL, "")

    def shutdown(self) -> None:
        """The worker is stopping: 1001, going away (RFC 6455 §7.4.1), so the client
        reconnects, to a sibling or the next generation."""
        self._close(GOING_AWAY, "server shutting down")

    def check_deadline(self, now: float) -> None:
        """The worker's sweep: server pings, the pong they wait for, the close timeout."""
        due = self._deadlines.due(now)
        if due is Due.NO_CLOSE:
            self._channel.reset()  # the peer never answered our Close
        elif due is Due.NO_PONG:
            log.debug("WebSocket client %s sent no pong; closing", self._channel.client)
            self._close(INTERNAL_ERROR, "keepalive ping timeout")
            self._channel.close()  # the peer is unresponsive: don't wait for its Close
        elif due is Due.PING and self._conn is not None:
            self._conn.ping(os.urandom(4))
            self._flush()

    # -- frames from the client, as events ------------------------------------------
    def _on_event(self, event: WebSocketEvent) -> None:
        if isinstance(event, MessageReceived):
            if self.state == OPEN:
                self._deliver(event)
        elif isinstance(event, PongReceived):
            self._deadlines.pong()
        elif isinstance(event, Closing):  # the connection began it (a message too big)
            self._closing(event.code, event.reason)
        elif isinstance(event, Ended):
            self.state = CLOSED
            self._deadlines.stop()
            self._finish(event.code, event.reason)
            self._flush()
            self._channel.close()

    def _deliver(self, event: MessageReceived) -> None:
        data = event.data
        message: Message = {"type": "websocket.receive"}
        message["text" if isinstance(data, str) else "bytes"] = data
        self._inbox.put(message, event.size)

    def _flush(self) -> None:
        conn = self._conn
        if conn is not None:
            data = conn.data_to_send(pong=not self._write_paused)
            if data:
                self._channel.write(data)

    # -- closing --------------------------------------------------------------------
    def _close(self, code: int, reason: str) -> None:
        """Send our Close (state OPEN only); the app hears of it at once."""
        conn = self._conn
        if conn is None or self.state != OPEN:
            return
        conn.close(code, reason)
        self._flush()
        self._closing(code, reason)

    def _closing(self, code: int, reason: str) -> None:
        self.state = CLOSING
        self._deadlines.closing()
        self._finish(code, reason)

    def _finish(self, code: int, reason: str) -> None:
        """The WebSocket is over: ``receive`` says so, and no ``send`` waits any longer."""
        self._inbox.end({"type": "websocket.disconnect", "code": code, "reason": reason})
        self._release_senders()

    def _release_senders(self) -> None:
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- the app's side -------------------------------------------------------------
    async def receive(self) -> Message:
        return await self._inbox.receive()

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
        conn = self._conn
        assert conn is not None
        text, data = message.get("text"), message.get("bytes")
        if text is not None:
            conn.send_message(str(text))
        elif data is not None:
            conn.send_message(bytes(data))
        else:
            raise ResponseError("websocket.send without text or bytes")
        self._flush()

    def _accept(self, message: Message) -> None:
        assert self._handshake is not None
        settings = self._settings
        head, self._conn = accept(
            self._handshake,
            message.get("subprotocol"),
            [(bytes(n), bytes(v)) for n, v in message.get("headers", ())],
            deflate=settings.per_message_deflate,
            max_size_bytes=settings.max_size_bytes,
        )
        self.state = OPEN
        self._deadlines.opened()  # before the switch: a draining worker closes at once
        self._channel.switch_protocols(self, head)

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
        if self.state in (CONNECTING, RESPONDING):
            self.state = CLOSED
            self._finish(ABNORMAL, "")
            fail_response(self._channel, head_sent=self._head_sent, extra=[CLOSE_HEADER])
        else:
            self._close(INTERNAL_ERROR, "internal error")


class WebSocketFactory:
    """Makes a session for each WebSocket handshake an ``ASGIAdapter`` is given.

    The worker's streams speak both HTTP and, after a 101, raw bytes: the channel a
    handshake arrives on is a ``WebSocketChannel`` (an HTTP/2 stream never carries one).
    """

    def __init__(self, settings: WebSocketSettings) -> None:
        self._settings = settings

    def __call__(self, adapter: ASGIAdapter, request: Request, channel: Channel) -> Cycle:
        assert isinstance(channel, WebSocketChannel), "a handshake came on an HTTP/1.1 stream"
        return WebSocketSession(adapter, request, channel, self._settings)
