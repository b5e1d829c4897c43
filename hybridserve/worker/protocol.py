"""HTTPProtocol: the glue between an asyncio transport and an HTTP/1.1 ServerConnection.

It owns what belongs to the transport: the reasons reading is paused, the connection's one
deadline and the write deadline, and the order of streams on the wire. Each request becomes
a ``Stream`` (what the app adapters see); this class is that stream's ``Link``, and the one
place that turns a ``ProtocolError`` into an error response. After a WebSocket handshake the
session the adapter made owns the connection's bytes.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from hybridserve.apps.types import Address, FileBody, TLSInfo
from hybridserve.errors import ProtocolError, ResponseError
from hybridserve.sansio import proxy_protocol
from hybridserve.sansio.connection import ServerConnection
from hybridserve.sansio.events import Body, EndOfRequest, Event, Headers, Request
from hybridserve.sansio.writer import error_response
from hybridserve.worker.preface import Preface
from hybridserve.worker.proxy import Peer
from hybridserve.worker.sendfile import FileSender
from hybridserve.worker.state import WorkerState
from hybridserve.worker.stream import Stream
from hybridserve.worker.tls import ServerTLS

if TYPE_CHECKING:
    from hybridserve.apps.websocket import WebSocketSession

log = logging.getLogger("hybridserve.error")


class Deadline(enum.Enum):
    """What the connection's one deadline currently means."""

    NONE = "none"
    IDLE = "idle"  # keep-alive: close quietly
    HEAD = "head"  # a request head is coming: 408
    BODY = "body"  # a request body is coming: 408


class Pause(enum.Enum):
    """Why reading is paused; it resumes only once no reason is left."""

    PIPELINED = "pipelined"  # a request waits behind the one in progress
    BACKPRESSURE = "backpressure"  # the app is behind on the body (or WebSocket messages)


def _nobody(body_bytes: int, whole: bool) -> None:
    """No file response in progress."""


def _address(info: object) -> Address:
    if isinstance(info, tuple) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    return None


class HTTPProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection in a worker."""

    def __init__(
        self, state: WorkerState, tls: ServerTLS | None = None, preface: Preface | None = None
    ) -> None:
        self._state = state
        self._capacity = state.capacity
        self._tls = tls
        self._preface = preface  # the PROXY header, when read before the TLS handshake
        self._transport: asyncio.Transport | None = None
        self._conn = ServerConnection(state.config.limits, state.http_backend)
        self._stream: Stream | None = None
        self._started = False  # the current stream's cycle has been started
        self._upgraded: WebSocketSession | None = None  # owns the connection after a 101
        self._paused: set[Pause] = set()
        self._fresh = True  # counted in capacity.fresh until its first request
        self._silent = True  # counted in capacity.silent until its first bytes
        self.connected = False  # connection_made ran (its counters are ours to settle)
        self._close_after = False  # draining: close once the current response is done
        self._deadline = Deadline.NONE
        self._deadline_at = 0.0
        self._write_deadline = 0.0  # set while the client leaves our output unread
        self._peer = Peer(None, "http", state.proxies)
        self._server: Address = None
        self._tls_info: TLSInfo | None = None
        self._proxy_header: proxy_protocol.HeaderReader | None = None
        self._sender: FileSender | None = None  # a file body going out
        self._file_sent: Callable[[int, bool], None] = _nobody

    # -- asyncio callbacks --------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._transport = transport
        self.connected = True
        self._server = _address(transport.get_extra_info("sockname"))
        peer = _address(transport.get_extra_info("peername"))
        if self._tls is not None:
            self._peer.scheme = "https"
            self._tls_info = self._tls.describe(transport.get_extra_info("ssl_object"))
        if self._preface is not None and self._preface.source is not None:
            peer = self._preface.source
        self._peer.moved_to(peer)
        if self._state.config.proxy_protocol and self._preface is None:
            self._proxy_header = proxy_protocol.HeaderReader()
        self._capacity.connection_opened(self)
        self._close_after = self._state.draining  # accepted before the drain: serve one
        self._set_deadline(Deadline.IDLE, self._state.config.timeouts.keep_alive_s)

    def data_received(self, data: bytes) -> None:
        if self._silent:
            self._silent = False
            self._capacity.first_bytes()
            self._dispatch(data)
            # No longer held in reserve (its request, if whole, now counts in flight):
            # the worker may take the next connection now rather than in 20 ms.
            self._capacity.room_changed()
        else:
            self._dispatch(data)

    def _dispatch(self, data: bytes) -> None:
        if self._proxy_header is not None:
            data = self._take_proxy_header(data)
            if not data:
                return
        if self._upgraded is not None:
            self._upgraded.data_received(data)
            return
        if self._stream is None:
            if self._deadline is Deadline.IDLE:
                self._set_deadline(Deadline.HEAD, self._state.config.timeouts.request_head_s)
        elif self._conn.request_complete:
            self._pause(Pause.PIPELINED)  # hold it behind the one in progress, read no further
        elif self._deadline is Deadline.BODY:
            self._deadline_at = self._state.clock.now + self._state.config.timeouts.body_read_s
        try:
            events = self._conn.receive(data)
        except ProtocolError as exc:
            self._reject(exc)
            return
        if events:
            self._handle(events)

    def _take_proxy_header(self, data: bytes) -> bytes:
        """The bytes after the PROXY header once it is whole; b"" until then."""
        assert self._proxy_header is not None and self._transport is not None
        try:
            done = self._proxy_header.feed(data)
        except ProtocolError as exc:
            log.debug("bad PROXY header from %s: %s", self._peer.address, exc)
            self._transport.close()
            return b""
        if done is None:
            return b""
        self._proxy_header = None
        source, rest = done
        if source is not None:
            self._peer.moved_to(source)
        return rest

    def eof_received(self) -> bool:
        if self._upgraded is not None:
            return self._upgraded.eof_received()
        try:
            events = self._conn.receive(b"")
        except ProtocolError:
            events = []
        if events:
            self._handle(events)
        # The client is gone, as uvicorn and hypercorn read an EOF too: close, so the
        # cycle hears of it (http.disconnect, or a WSGI response cut short).
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._sender is not None:
            self._sender.cancel()
            self._file_over(False)
        fresh, silent = self._fresh, self._silent
        self._fresh = self._silent = False
        stream, self._stream = self._stream, None
        if stream is not None:
            self._capacity.stream_finished()
            if stream.cycle is not None:
                stream.cycle.disconnected()
        upgraded, self._upgraded = self._upgraded, None
        if upgraded is not None:
            self._capacity.stream_finished()
            upgraded.connection_lost()
        self._capacity.connection_closed(self, fresh=fresh, silent=silent)

    def pause_writing(self) -> None:
        self._write_deadline = self._state.clock.now + self._state.config.timeouts.write_s
        if self._sender is not None:
            self._sender.pause_writing()
        if self._upgraded is not None:
            self._upgraded.pause_writing()
        elif self._stream is not None and self._stream.cycle is not None:
            self._stream.cycle.pause_writing()

    def resume_writing(self) -> None:
        self._write_deadline = 0.0
        if self._sender is not None:
            self._sender.resume_writing()
        if self._upgraded is not None:
            self._upgraded.resume_writing()
        elif self._stream is not None and self._stream.cycle is not None:
            self._stream.cycle.resume_writing()

    # -- requests -----------------------------------------------------------------
    def _handle(self, events: list[Event]) -> None:
        for event in events:
            kind = type(event)
            cycle = self._stream.cycle if self._stream is not None else None
            if kind is Body:
                if cycle is not None:
                    cycle.feed_body(event.data)  # type: ignore[union-attr]  # narrowed by kind
            elif kind is Request:
                self._begin(event)  # type: ignore[arg-type]  # narrowed by kind
            elif kind is EndOfRequest:
                if self._deadline is Deadline.BODY:
                    self._deadline = Deadline.NONE
                if cycle is not None:
                    cycle.feed_end()
            elif self._transport is not None:  # ConnectionClosed
                if self._stream is None:
                    self._transport.close()
                elif not self._conn.request_complete:  # gone in the middle of its body
                    self.close()
        stream = self._stream
        if stream is not None and stream.cycle is not None and not self._started:
            self._started = True
            stream.cycle.start()

    def _begin(self, request: Request) -> None:
        state = self._state
        if self._fresh:
            self._fresh = False
            self._capacity.first_request()
        limit = state.config.limit_concurrency
        if limit and self._capacity.in_flight >= limit:
            self._reject(ProtocolError("worker at --limit-concurrency", 503))
            return
        self._capacity.stream_started()
        self._set_deadline(Deadline.BODY, state.config.timeouts.body_read_s)
        request_s = state.config.timeouts.request_s
        client, scheme = self._peer.view(request)
        stream = Stream(
            self,
            request,
            loop=state.loop,
            client=client,
            server=self._server,
            scheme=scheme,
            tls=self._tls_info,
            request_deadline=state.clock.now + request_s if request_s else 0.0,
        )
        self._stream = stream
        stream.cycle = state.new_cycle(request, stream)

    def _reject(self, exc: ProtocolError) -> None:
        log.debug("bad request from %s: %s (%d)", self._peer.address, exc, exc.status)
        transport = self._transport
        if transport is None:
            return
        if not self._conn.response_started:
            state = self._state
            message = str(exc)
            transport.write(
                error_response(exc.status, message, state.clock.date_line, state.server_line)
            )
            if self._stream is None and self._upgraded is None:  # no app saw it: count it here
                request = self._conn.refused_request()
                state.record.refused(request, self._peer.address, exc.status, len(message) + 1)
        self._conn.abandon()
        transport.close()

    # -- Link: what a stream asks of its connection ---------------------------------
    def write_head(
        self, stream: Stream, status: int, headers: Headers, body: bytes, end: bool
    ) -> None:
        if self._transport is not None:
            state = self._state
            data = self._conn.send_head(
                status,
                headers,
                body=body,
                end=end,
                close=self._close_after or state.draining,
                date_line=state.clock.date_line,
                server_line=state.server_line,
            )
            self._transport.write(data)

    def write_body(self, stream: Stream, data: bytes, end: bool) -> None:
        if self._transport is not None:
            self.write_raw(self._conn.send_body(data, end=end))

    def write_file(
        self,
        stream: Stream,
        status: int,
        headers: Headers,
        body: FileBody,
        sent: Callable[[int, bool], None],
    ) -> None:
        try:
            has_body = self._file_head(status, headers, body)
        except BaseException:
            os.close(body.fd)
            raise
        if not has_body or not body.pieces or self._transport is None:
            os.close(body.fd)
            if self._transport is not None:
                self.write_raw(self._conn.send_body(b"", end=True))
            sent(0, self._transport is not None)
            return
        state = self._state
        self._file_sent = sent
        self._sender = FileSender(
            self._transport,
            body,
            zero_copy=self._tls is None and state.config.static.sendfile,
            offload=state.offload,
            clock=lambda: state.clock.now,
            on_done=self._file_over,
        )
        self._sender.start()

    def _file_head(self, status: int, headers: Headers, body: FileBody) -> bool:
        """Write a file response's head (with its Content-Length); whether a body follows.

        Raises ResponseError before writing anything if the head is invalid.
        """
        if self._transport is None:
            return False
        length = body.length
        declared = [v.strip() for n, v in headers if n.lower() == b"content-length"]
        if not declared:
            headers = [*headers, (b"content-length", b"%d" % length)]
        elif declared != [b"%d" % length]:
            raise ResponseError(f"Content-Length {declared!r} but the file body is {length} bytes")
        state = self._state
        data = self._conn.send_head(
            status,
            headers,
            close=self._close_after or state.draining,
            date_line=state.clock.date_line,
            server_line=state.server_line,
        )
        has_body = self._conn.send_file_body(length)
        self._transport.write(data)
        return has_body

    def _file_over(self, whole: bool) -> None:
        sender, sent = self._sender, self._file_sent
        if sender is None:
            return
        self._sender, self._file_sent = None, _nobody
        if whole and self._transport is not None:
            self.write_raw(self._conn.send_body(b"", end=True))
        elif self._transport is not None:
            self._conn.abandon()
            self.abort()  # a file cut short: the client must not wait for the rest
        sent(sender.sent_bytes, whole)

    def write_trailers(self, stream: Stream, trailers: Headers) -> None:
        if self._transport is not None:
            self.write_raw(self._conn.send_trailers(trailers))

    def write_continue(self, stream: Stream) -> None:
        if self._transport is not None:
            self.write_raw(self._conn.continue_bytes())

    def abort_stream(self, stream: Stream) -> None:
        """The response cannot be finished: HTTP/1.1 can only say so by closing."""
        self.close()

    def pause_stream(self, stream: Stream) -> None:
        if self._pause(Pause.BACKPRESSURE) and self._deadline is Deadline.BODY:
            self._deadline = Deadline.NONE  # we stopped reading: the client isn't late

    def resume_stream(self, stream: Stream) -> None:
        if self._resume(Pause.BACKPRESSURE) and not self._conn.request_complete:
            self._set_deadline(Deadline.BODY, self._state.config.timeouts.body_read_s)

    def stream_done(self, stream: Stream) -> None:
        """The response is complete: close, or start the next pipelined request."""
        self._stream = None
        self._started = False
        self._capacity.stream_finished()
        self._state.record.stream_finished(stream)
        if self._transport is not None:
            self._next()
        self._capacity.room_changed()

    def _next(self) -> None:
        if not self._conn.keep_alive or self._close_after or self._state.draining:
            self.close()
            return
        self._resume(Pause.PIPELINED)
        self._set_deadline(Deadline.IDLE, self._state.config.timeouts.keep_alive_s)
        try:
            events = self._conn.next_cycle()
        except ProtocolError as exc:
            self._reject(exc)
            return
        if events:
            self._handle(events)

    def switch_protocols(self, stream: Stream, session: WebSocketSession, head: bytes) -> None:
        """Write the 101; the request is done, and the connection (still in flight) is the
        session's from now on."""
        self.write_raw(head)
        self._conn.abandon()
        self._stream = None
        self._started = False
        self._upgraded = session
        self._deadline = Deadline.NONE  # a WebSocket lives as long as it is used
        self._state.record.stream_finished(stream)
        self._resume(Pause.PIPELINED)
        if self._close_after or self._state.draining:
            session.shutdown()

    def write_raw(self, data: bytes) -> None:
        if data and self._transport is not None:
            self._transport.write(data)

    # -- asyncio's words: close() flushes first, abort() drops ----------------------
    def close(self) -> None:
        self._conn.abandon()
        if self._transport is not None:
            self._transport.close()

    def reset(self) -> None:
        self.abort()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _pause(self, reason: Pause) -> bool:
        """Whether this reason was new; the transport pauses with the first reason."""
        if reason in self._paused or self._transport is None:
            return False
        if not self._paused:
            self._transport.pause_reading()
        self._paused.add(reason)
        return True

    def _resume(self, reason: Pause) -> bool:
        if reason not in self._paused:
            return False
        self._paused.discard(reason)
        if not self._paused and self._transport is not None:
            self._transport.resume_reading()
        return True

    # -- deadlines and draining, driven by the worker -----------------------------
    def _set_deadline(self, kind: Deadline, seconds: float) -> None:
        self._deadline = kind
        self._deadline_at = self._state.clock.now + seconds

    def check_deadline(self, now: float) -> None:
        """Called once a second by the worker's sweep."""
        if self._transport is None:
            return
        sender = self._sender  # a file the client stopped taking?
        write_s = self._state.config.timeouts.write_s
        if sender is not None and sender.blocked_at and now - sender.blocked_at >= write_s:
            self._write_deadline = now
        if self._write_deadline and now >= self._write_deadline:
            log.debug("client %s stopped reading; dropping it", self._peer.address)
            self._conn.abandon()
            self.abort()  # close() would wait for the unread bytes to flush
            return
        if self._upgraded is not None:
            self._upgraded.check_deadline(now)
            return
        stream = self._stream
        if stream is not None and stream.request_deadline and now >= stream.request_deadline:
            self._expire(stream)
            return
        kind = self._deadline
        if kind is Deadline.NONE or now < self._deadline_at:
            return
        self._deadline = Deadline.NONE
        if kind is Deadline.HEAD:
            self._reject(ProtocolError("request head not received in time", 408))
        elif kind is Deadline.BODY:
            self._reject(ProtocolError("request body not received in time", 408))
        else:
            self._transport.close()

    def _expire(self, stream: Stream) -> None:
        """The request ran past --request-timeout: 503 if we still can, then close."""
        stream.request_deadline = 0.0
        request = stream.request
        log.error(
            "%s %s ran past --request-timeout (%.0fs)",
            request.method.decode("latin-1"),
            request.target.decode("latin-1"),
            self._state.config.timeouts.request_s,
        )
        if stream.cycle is not None:
            stream.cycle.expire()
        stream.status = 503
        self._reject(ProtocolError("the request took too long", 503))

    def hand_over(self) -> bool:
        """Close after the next response, so the client reconnects to a less loaded sibling."""
        if self._close_after or self._upgraded is not None or self._transport is None:
            return False
        self._close_after = True
        return True

    def shutdown(self) -> None:
        """Graceful stop: close now if idle, else once the current response is done."""
        self._close_after = True
        if self._upgraded is not None:
            self._upgraded.shutdown()
        elif self._stream is not None:
            if self._stream.cycle is not None:
                self._stream.cycle.shutdown()
        # A fresh connection's request may be on its way: let it come (its deadline still
        # applies). Only an idle keep-alive connection is closed at once.
        elif not self._fresh and self._transport is not None:
            self._transport.close()
