"""H1Session: HTTP/1.1 on one connection, one stream at a time.

It drives the sans-IO ``ServerConnection``: each request becomes a ``Stream`` (what the app
adapters see) whose ``Link`` is this session, so the stream's bytes are framed here and
written by the connection. It owns the HTTP/1.1 deadlines (idle keep-alive, request head,
request body, --request-timeout), holds pipelined requests behind the one in progress, and
is the one place that turns a ``ProtocolError`` into an error response. After a WebSocket
handshake the session the adapter made owns the connection's bytes.
"""

from __future__ import annotations

import enum
import logging
import os
from typing import TYPE_CHECKING

from hybridserve.apps.types import FileBody
from hybridserve.errors import ProtocolError
from hybridserve.sansio.connection import ServerConnection
from hybridserve.sansio.events import Body, EndOfRequest, Event, Headers, Request
from hybridserve.sansio.writer import error_response
from hybridserve.worker.protocol import HTTPProtocol, Pause
from hybridserve.worker.stream import FileSent, Stream

if TYPE_CHECKING:
    from hybridserve.apps.websocket import WebSocketSession

log = logging.getLogger("hybridserve.error")


class Deadline(enum.Enum):
    """What the session's one deadline currently means."""

    NONE = "none"
    IDLE = "idle"  # keep-alive: close quietly
    HEAD = "head"  # a request head is coming: 408
    BODY = "body"  # a request body is coming: 408


# The members as module globals: on CPython 3.11 ``Deadline.BODY`` costs ~80 ns (the enum
# metaclass's lookup), a global ~20 ns, and the per-request path reads several of them.
NONE, IDLE, HEAD, BODY = Deadline.NONE, Deadline.IDLE, Deadline.HEAD, Deadline.BODY
PIPELINED, BACKPRESSURE = Pause.PIPELINED, Pause.BACKPRESSURE


class H1Session:
    """The HTTP/1.1 side of one connection, and the ``Link`` of its streams."""

    def __init__(self, wire: HTTPProtocol, first: bytes = b"") -> None:
        self._wire = wire
        self._state = state = wire.state
        self._capacity = state.capacity
        self._timeouts = timeouts = state.config.timeouts
        self._clock = state.clock
        self._record = state.record
        self._loop = state.loop
        # Read once per connection, not per request: the hot path is short.
        self._limit = state.config.limit_concurrency
        self._head_s = timeouts.request_head_s
        self._body_read_s = timeouts.body_read_s
        self._request_s = timeouts.request_s
        self._keep_alive_s = timeouts.keep_alive_s
        self._conn = ServerConnection(state.config.limits, state.http_backend)
        self._stream: Stream | None = None
        self._started = False  # the current stream's cycle has been started
        self._upgraded: WebSocketSession | None = None  # owns the connection after a 101
        # Whether a stream may still write: not once the session chose to close (the
        # transport goes only later, and a thread may deliver bytes until then).
        self._open = True
        self._deadline = IDLE
        self._deadline_at = state.clock.now + self._timeouts.keep_alive_s

    # -- the connection's events --------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._upgraded is not None:
            self._upgraded.data_received(data)
            return
        if self._stream is None:
            if self._deadline is IDLE:
                self._deadline = HEAD
                self._deadline_at = self._clock.now + self._head_s
        elif self._conn.request_complete:
            self._wire.pause(PIPELINED)  # hold it behind the one in progress
        elif self._deadline is BODY:
            self._deadline_at = self._clock.now + self._body_read_s
        try:
            events = self._conn.receive(data)
        except ProtocolError as exc:
            self._reject(exc)
            return
        if events:
            self._handle(events)

    def eof_received(self) -> None:
        if self._upgraded is not None:
            self._upgraded.eof_received()
            return
        try:
            events = self._conn.receive(b"")
        except ProtocolError:
            events = []
        if events:
            self._handle(events)

    def connection_lost(self) -> None:
        self._open = False
        stream, self._stream = self._stream, None
        if stream is not None:
            self._capacity.stream_finished()
            if stream.cycle is not None:
                stream.cycle.disconnected()
                stream.cycle = None  # it refers back to the stream: no garbage cycle
        upgraded, self._upgraded = self._upgraded, None
        if upgraded is not None:
            self._capacity.stream_finished()
            upgraded.connection_lost()

    def pause_writing(self) -> None:
        if self._upgraded is not None:
            self._upgraded.pause_writing()
        elif self._stream is not None and self._stream.cycle is not None:
            self._stream.cycle.pause_writing()

    def resume_writing(self) -> None:
        if self._upgraded is not None:
            self._upgraded.resume_writing()
        elif self._stream is not None and self._stream.cycle is not None:
            self._stream.cycle.resume_writing()

    # -- requests -----------------------------------------------------------------------
    def _handle(self, events: list[Event]) -> None:
        for event in events:
            kind = type(event)
            if kind is Request:
                self._begin(event)  # type: ignore[arg-type]  # narrowed by kind
            elif kind is Body:
                if self._stream is not None and self._stream.cycle is not None:
                    self._stream.cycle.feed_body(event.data)  # type: ignore[union-attr]  # kind
            elif kind is EndOfRequest:
                if self._deadline is BODY:
                    self._deadline = NONE
                if self._stream is not None and self._stream.cycle is not None:
                    self._stream.cycle.feed_end()
            elif self._stream is None or not self._conn.request_complete:
                self._close()  # ConnectionClosed: idle, or gone in the middle of its body
        stream = self._stream
        if stream is not None and stream.cycle is not None and not self._started:
            self._started = True
            stream.cycle.start()

    def _begin(self, request: Request) -> None:
        wire, capacity, now = self._wire, self._capacity, self._clock.now
        if wire.fresh:
            wire.first_request()
        if self._limit and capacity.in_flight >= self._limit:
            self._reject(ProtocolError("worker at --limit-concurrency", 503))
            return
        capacity.stream_started()
        self._deadline = BODY
        self._deadline_at = now + self._body_read_s
        peer = wire.peer
        client, scheme = peer.view(request) if peer.trusted else (peer.address, peer.scheme)
        request_s = self._request_s
        deadline = now + request_s if request_s else 0.0
        stream = Stream(self, request, self._loop, client, wire.server, scheme, wire.tls, deadline)
        self._stream = stream
        stream.cycle = self._state.new_cycle(request, stream)

    def _reject(self, exc: ProtocolError) -> None:
        """The one place a refusal becomes a response (if none has begun); then close."""
        log.debug("bad request from %s: %s (%d)", self._wire.peer.address, exc, exc.status)
        if not self._open:
            return
        if not self._conn.response_started:
            state, message = self._state, str(exc)
            date, server = state.clock.date_line, state.server_line
            self._wire.write(error_response(exc.status, message, date, server))
            if self._stream is None and self._upgraded is None:  # no app saw it: count it here
                request = self._conn.refused_request()
                state.record.refused(request, self._wire.peer.address, exc.status, len(message) + 1)
        self._close()

    def _close(self) -> None:
        self._open = False
        self._conn.abandon()
        self._wire.close()

    # -- Link: what a stream asks of its connection -------------------------------------
    def write_head(
        self, stream: Stream, status: int, headers: Headers, body: bytes, end: bool
    ) -> None:
        if self._open:
            state = self._state
            data = self._conn.send_head(
                status,
                headers,
                body=body,
                end=end,
                close=self._wire.close_after or self._capacity.draining,
                date_line=state.clock.date_line,
                server_line=state.server_line,
            )
            self._wire.write(data)

    def write_body(self, stream: Stream, data: bytes, end: bool) -> None:
        if self._open:
            self._wire.write(self._conn.send_body(data, end=end))

    def write_file(
        self, stream: Stream, status: int, headers: Headers, body: FileBody, sent: FileSent
    ) -> None:
        try:
            has_body = self._file_head(status, headers, body)
        except BaseException:
            os.close(body.fd)
            raise
        if not has_body or not body.pieces or not self._open:
            os.close(body.fd)
            self.write_body(stream, b"", True)
            sent(0, self._open)
            return

        def over(body_bytes: int, whole: bool) -> None:
            if whole:
                self.write_body(stream, b"", True)
            else:
                self._conn.abandon()
                self._wire.abort()  # a file cut short: the client must not wait for the rest
            sent(body_bytes, whole)

        self._wire.send_file(body, over)

    def _file_head(self, status: int, headers: Headers, body: FileBody) -> bool:
        """Write a file response's head (with its Content-Length); whether a body follows.

        Raises ResponseError before writing anything if the head is invalid.
        """
        if not self._open:
            return False
        state = self._state
        data = self._conn.send_head(
            status,
            headers,
            close=self._wire.close_after or self._capacity.draining,
            date_line=state.clock.date_line,
            server_line=state.server_line,
        )
        has_body = self._conn.send_file_body(body.length)
        self._wire.write(data)
        return has_body

    def write_trailers(self, stream: Stream, trailers: Headers) -> None:
        if self._open:
            self._wire.write(self._conn.send_trailers(trailers))

    def write_continue(self, stream: Stream) -> None:
        if self._open:
            self._wire.write(self._conn.continue_bytes())

    def abort_stream(self, stream: Stream) -> None:
        """The response cannot be finished: HTTP/1.1 can only say so by closing."""
        self._close()

    def pause_stream(self, stream: Stream) -> None:
        if self._wire.pause(BACKPRESSURE) and self._deadline is BODY:
            self._deadline = NONE  # we stopped reading: the client isn't late

    def resume_stream(self, stream: Stream) -> None:
        if self._wire.resume(BACKPRESSURE) and not self._conn.request_complete:
            self._set_deadline(BODY, self._timeouts.body_read_s)

    def stream_done(self, stream: Stream) -> None:
        """The response is complete: close, or start the next pipelined request."""
        self._stream = None
        self._started = False
        self._capacity.stream_finished()
        self._record.stream_finished(stream)
        # The stream and its cycle refer to each other; untied here, both go as soon as
        # the app lets go, instead of piling up for the GC (whose gen2 passes showed as
        # p99 spikes).
        stream.cycle = None
        if self._open:
            self._next()
        self._capacity.room_changed()

    def _next(self) -> None:
        if not self._conn.keep_alive or self._wire.close_after or self._capacity.draining:
            self._close()
            return
        if self._wire.reading_paused:
            self._wire.resume(PIPELINED, BACKPRESSURE)  # that stream's reasons end
        self._deadline = IDLE
        self._deadline_at = self._clock.now + self._keep_alive_s
        try:
            events = self._conn.next_cycle()
        except ProtocolError as exc:
            self._reject(exc)
            return
        if events:
            self._handle(events)

    def switch_protocols(self, stream: Stream, session: WebSocketSession, head: bytes) -> None:
        """Write the 101; the request is done, and the connection (still in flight) is the
        WebSocket session's from now on."""
        self._wire.write(head)
        self._conn.abandon()
        self._stream = None
        self._started = False
        self._upgraded = session
        self._deadline = NONE  # a WebSocket lives as long as it is used
        self._record.stream_finished(stream)
        self._wire.resume(PIPELINED, BACKPRESSURE)
        if self._wire.close_after or self._capacity.draining:
            session.shutdown()

    def write_raw(self, data: bytes) -> None:
        self._wire.write(data)

    def close(self) -> None:
        self._close()

    def reset(self) -> None:
        self._wire.abort()

    # -- deadlines and draining ---------------------------------------------------------
    def _set_deadline(self, kind: Deadline, seconds: float) -> None:
        self._deadline = kind
        self._deadline_at = self._clock.now + seconds

    def check_deadline(self, now: float) -> None:
        if self._upgraded is not None:
            self._upgraded.check_deadline(now)
            return
        stream = self._stream
        if stream is not None and stream.request_deadline and now >= stream.request_deadline:
            self._expire(stream)
            return
        kind = self._deadline
        if kind is NONE or now < self._deadline_at:
            return
        self._deadline = NONE
        if kind is HEAD:
            self._reject(ProtocolError("request head not received in time", 408))
        elif kind is BODY:
            self._reject(ProtocolError("request body not received in time", 408))
        else:
            self._wire.close()

    def _expire(self, stream: Stream) -> None:
        """The request ran past --request-timeout: 503 if we still can, then close."""
        stream.overdue(self._timeouts.request_s)
        stream.status = 503
        self._reject(ProtocolError("the request took too long", 503))

    def shutdown(self) -> None:
        """The worker drains (``close_after`` is set on the connection): close now if idle."""
        if self._upgraded is not None:
            self._upgraded.shutdown()
        elif self._stream is not None:
            if self._stream.cycle is not None:
                self._stream.cycle.shutdown()
        elif not self._wire.fresh:
            self._wire.close()

    def hand_over(self) -> bool:
        """A WebSocket cannot be handed over; an HTTP/1.1 client reconnects."""
        return self._upgraded is None
