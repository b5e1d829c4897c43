"""ASGI 3 ``http`` on the event loop: one task per request (pathsend opens its file in a
thread; nothing else leaves the loop).

``receive`` hands out body chunks as the loop feeds them (reading pauses above
``INPUT_HIGH_BYTES`` queued); ``send`` writes through the channel and waits while the
transport is paused, so a slow client holds the app, not memory. The head is held back
until the first body message, so a small response is one ``transport.write``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from hybridserve.apps.failure import fail_response
from hybridserve.apps.types import ASGIApp, Channel, Cycle, FileBody, Message, Scope, TLSInfo
from hybridserve.errors import ClientDisconnected, ResponseError
from hybridserve.sansio.events import Headers, Request
from hybridserve.sansio.websocket import Handshake

log = logging.getLogger("hybridserve.error")

INPUT_HIGH_BYTES = 256 * 1024
ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}
WEBSOCKET_ASGI_VERSION = {"version": "3.0", "spec_version": "2.5"}  # 2.5: disconnect ``reason``
DISCONNECT: Message = {"type": "http.disconnect"}


def open_regular_file(path: str) -> tuple[int, int]:
    """Open a regular file for sending (in a thread): its descriptor and size."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ResponseError(f"http.response.pathsend: {path!r} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd, st.st_size


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """``(raw_path, query_string)`` of an origin-form or absolute-form target."""
    if not target.startswith(b"/") and b"://" in target:
        target = b"/" + target.split(b"://", 1)[1].partition(b"/")[2]
    raw_path, _, query = target.partition(b"?")
    return raw_path, query


def build_scope(request: Request, channel: Channel, root_path: str, state: dict[str, Any]) -> Scope:
    """The ``http`` scope. ``path`` includes ``root_path``, as uvicorn and the spec do."""
    raw_path, query = split_target(request.target)
    path = raw_path.decode("latin-1")
    if "%" in path:
        path = unquote(path)
    extensions: dict[str, Any] = {"http.response.pathsend": {}}
    if request.accepts_trailers:
        extensions["http.response.trailers"] = {}
    if channel.tls is not None:
        extensions["tls"] = tls_extension(channel.tls)
    return {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": request.http_version.decode("latin-1"),
        "method": request.method.decode("latin-1"),
        "scheme": channel.scheme,
        "path": root_path + path,
        "raw_path": root_path.encode("latin-1") + raw_path if root_path else raw_path,
        "query_string": query,
        "root_path": root_path,
        "headers": request.headers,
        "client": channel.client,
        "server": channel.server,
        "state": state.copy(),
        "extensions": extensions,
    }


def build_websocket_scope(
    request: Request, channel: Channel, handshake: Handshake, adapter: ASGIAdapter
) -> Scope:
    """The ``websocket`` scope: the ``http`` one's paths and headers, ws/wss, subprotocols."""
    scope = build_scope(request, channel, adapter.root_path, adapter.state)
    del scope["method"]
    scope["type"] = "websocket"
    scope["asgi"] = dict(WEBSOCKET_ASGI_VERSION)
    scope["scheme"] = "wss" if channel.scheme == "https" else "ws"
    scope["subprotocols"] = list(handshake.subprotocols)
    extensions: dict[str, object] = {"websocket.http.response": {}}
    if "tls" in scope["extensions"]:
        extensions["tls"] = scope["extensions"]["tls"]
    scope["extensions"] = extensions
    return scope


def tls_extension(tls: TLSInfo) -> dict[str, Any]:
    """The ``tls`` scope extension (ASGI TLS extension 0.2); only over TLS we terminated."""
    return {
        "server_cert": tls.server_cert,
        "client_cert_chain": list(tls.client_cert_chain),
        "client_cert_name": tls.client_cert_name,
        "client_cert_error": None,  # a certificate that fails verification fails the handshake
        "tls_version": tls.version,
        "cipher_suite": tls.cipher_suite,
    }


WebSocketMaker = Callable[["ASGIAdapter", Request, Channel], Cycle]


class ASGIAdapter:
    """Starts an ``http`` task per request; ``state`` is what lifespan startup left.

    It decides upgrades: with ``websocket`` (the session maker, None when WebSockets are
    off) a WebSocket handshake gets a session, anything else an ``http`` cycle.
    """

    def __init__(
        self, app: ASGIApp, *, root_path: str, websocket: WebSocketMaker | None = None
    ) -> None:
        self.app = app
        self.root_path = root_path
        self.state: dict[str, Any] = {}
        self._websocket = websocket

    def new_cycle(self, request: Request, channel: Channel) -> Cycle:
        if request.upgrade == b"websocket" and self._websocket is not None:
            return self._websocket(self, request, channel)
        return HTTPCycle(self, request, channel)


class HTTPCycle:
    """One request's ``receive``/``send`` pair and the task running the app."""

    __slots__ = (
        "_adapter",
        "_body",
        "_body_done",
        "_channel",
        "_closing",
        "_complete",
        "_delivered",
        "_drain",
        "_gone",
        "_head_sent",
        "_headers",
        "_queued",
        "_reading_paused",
        "_request",
        "_status",
        "_trailer_headers",
        "_trailers",
        "_waiter",
        "_write_paused",
        "task",
    )

    def __init__(self, adapter: ASGIAdapter, request: Request, channel: Channel) -> None:
        self._adapter = adapter
        self._request = request
        self._channel = channel
        self._body: deque[bytes] = deque()
        self._queued = 0
        self._body_done = False
        self._delivered = False  # the app has seen more_body=False
        self._gone = False
        self._closing = False  # the worker drains: a receive() past the body says disconnect
        self._reading_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._write_paused = False
        self._status = 0
        self._headers: Headers | None = None
        self._head_sent = False
        self._complete = False
        self._trailers = False  # the app announced http.response.trailers
        self._trailer_headers: Headers = []
        self.task: asyncio.Task[None] | None = None

    # -- loop side, called by the protocol ----------------------------------------
    def feed_body(self, data: bytes) -> None:
        self._body.append(data)
        self._queued += len(data)
        if self._queued > INPUT_HIGH_BYTES and not self._reading_paused:
            self._reading_paused = True
            self._channel.pause_reading()
        self._wake()

    def feed_end(self) -> None:
        self._body_done = True
        self._wake()

    def start(self) -> None:
        self.task = self._channel.loop.create_task(self._run())

    def expire(self) -> None:
        """Past --request-timeout: cancel the app's task (a coroutine can be stopped)."""
        self._gone = True
        if self.task is not None:
            self.task.cancel()

    def disconnected(self) -> None:
        self._gone = True
        self._wake()
        self.resume_writing()

    def shutdown(self) -> None:
        """Only an app that waits past its body (SSE, long poll) sees it; sends still work."""
        self._closing = True
        self._wake()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the app's side -----------------------------------------------------------
    async def receive(self) -> Message:
        while True:
            if self._body:
                data = self._body.popleft()
                self._queued -= len(data)
                if self._reading_paused and self._queued <= INPUT_HIGH_BYTES // 2:
                    self._reading_paused = False
                    self._channel.resume_reading()
                more = bool(self._body) or not self._body_done
                self._delivered = not more
                return {"type": "http.request", "body": data, "more_body": more}
            if self._gone or self._complete or (self._closing and self._delivered):
                return DISCONNECT
            if self._body_done and not self._delivered:
                self._delivered = True
                return {"type": "http.request", "body": b"", "more_body": False}
            if not self._body_done:
                self._channel.send_continue()
            self._waiter = self._channel.loop.create_future()
            await self._waiter
            self._waiter = None

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if self._gone:
            raise ClientDisconnected("client disconnected")
        if kind == "http.response.start":
            if self._headers is not None:
                raise ResponseError("http.response.start sent twice")
            self._status = message["status"]
            headers = message.get("headers", ())
            if type(headers) is not list or any(
                type(n) is not bytes or type(v) is not bytes for n, v in headers
            ):
                headers = [(bytes(n), bytes(v)) for n, v in headers]
            self._headers = headers
            self._trailers = bool(message.get("trailers", False))
        elif kind == "http.response.body":
            if self._headers is None:
                raise ResponseError("http.response.body sent before http.response.start")
            if self._complete:
                raise ResponseError("http.response.body sent after the response completed")
            more = message.get("more_body", False)
            if not more and not self._trailers and not self._head_sent:
                # The whole response in one message (most are): no extra coroutine frame.
                self._channel.send_head(self._status, self._headers, message.get("body", b""), True)
                self._head_sent = self._complete = True
                self._wake()
            else:
                await self._send_body(message.get("body", b""), more)
        elif kind == "http.response.trailers":
            if not self._trailers or not self._head_sent or self._complete:
                raise ResponseError("http.response.trailers without trailers=True, or too late")
            self._trailer_headers += [(bytes(n), bytes(v)) for n, v in message.get("headers", ())]
            if not message.get("more_trailers", False):
                self._complete = True
                self._channel.send_trailers(self._trailer_headers)
                self._wake()
        elif kind == "http.response.pathsend":
            await self._pathsend(message["path"])
        else:
            raise ResponseError(f"unexpected ASGI message type {kind!r}")

    async def _send_body(self, body: bytes, more: bool) -> None:
        if self._headers is None:
            raise ResponseError("http.response.body sent before http.response.start")
        if self._complete:
            raise ResponseError("http.response.body sent after the response completed")
        end = not more and not self._trailers  # with trailers, they end the response
        if not self._head_sent:
            # Raises ResponseError for an invalid head, before writing: still room for a 500.
            self._channel.send_head(self._status, self._headers, body, end)
            self._head_sent = True
        else:
            self._channel.send_body(body, end)
        if end:
            self._complete = True
            self._wake()
        elif self._write_paused:
            self._drain = self._channel.loop.create_future()
            await self._drain
            self._drain = None

    async def _pathsend(self, path: str) -> None:
        """``http.response.pathsend``: the file goes out through the channel, zero-copy
        on plain TCP; opening and stat'ing it run in a thread, never on the loop."""
        if self._headers is None or self._head_sent:
            raise ResponseError("http.response.pathsend needs a fresh http.response.start")
        loop = self._channel.loop
        fd, size = await loop.run_in_executor(None, open_regular_file, path)
        sent: asyncio.Future[bool] = loop.create_future()

        def done(whole: bool) -> None:
            if not sent.done():
                sent.set_result(whole)

        body = FileBody(fd, [(0, size)] if size else [])
        self._channel.send_file(self._status, self._headers, body, done)  # raises before writing
        self._head_sent = self._complete = True
        self._trailers = False  # the file ends the response
        self._wake()
        await sent

    async def _run(self) -> None:
        adapter = self._adapter
        scope = build_scope(self._request, self._channel, adapter.root_path, adapter.state)
        try:
            await adapter.app(scope, self.receive, self.send)
        except ClientDisconnected:
            log.debug("client %s went away", self._channel.client)
            return
        except Exception as exc:
            if isinstance(exc, ResponseError):
                log.error("ASGI app %r: %s", adapter.app, exc)
            else:
                log.exception("Exception in ASGI app %r", adapter.app)
            self._fail()
            return
        if not self._complete and not self._gone:
            log.error("ASGI app %r returned without completing the response", adapter.app)
            self._fail()

    def _fail(self) -> None:
        if self._gone or self._complete:
            return
        self._complete = True
        head_sent, self._head_sent = self._head_sent, True
        fail_response(self._channel, head_sent=head_sent)
