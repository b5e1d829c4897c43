"""H2Session: the HTTP/2 side of a connection, between its transport and its streams.

HTTPProtocol keeps the transport; ``sessions.make_session`` gives it this session when the
client's first bytes are the HTTP/2 connection preface (after ALPN "h2" over TLS, or with prior
knowledge on plain TCP), else the HTTP/1.1 one. Each request becomes a ``Stream``, the same
the HTTP/1.1 path makes, so the ASGI and WSGI adapters serve it unchanged; this class is
those streams' ``Link``.

Flow control is backpressure both ways. A stream's body is credited back to the client
(WINDOW_UPDATE) as the adapter takes it, and not while the adapter says it is behind
(``pause_stream``). A response waits in the sans-IO connection for the client's window; once
more than ``SEND_HIGH_BYTES`` wait, the stream's cycle is told to pause writing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from hybridserve.apps.types import FileBody
from hybridserve.errors import ResponseError
from hybridserve.sansio.events import Headers
from hybridserve.sansio.h2backend import H2Settings
from hybridserve.sansio.h2events import (
    ConnectionEnded,
    ErrorCode,
    StreamData,
    StreamEnded,
    StreamRequest,
    StreamReset,
    WindowOpened,
)
from hybridserve.sansio.http2 import Http2Connection
from hybridserve.worker.protocol import HTTPProtocol
from hybridserve.worker.stream import NO_BODY_STATUSES, Stream

log = logging.getLogger("hybridserve.error")

SEND_HIGH_BYTES = 64 * 1024  # response bytes waiting for the client's window, per stream
LINGER_S = 2.0  # after a connection error, how long the client may take to close its side
FILE_CHUNK_BYTES = 64 * 1024  # a file body is read this much at a time, as the window allows
_BAD_VALUE = (b"\r", b"\n", b"\x00")  # never in a response field


class H2Session:
    """One HTTP/2 connection's streams; HTTPProtocol forwards its transport's callbacks."""

    def __init__(self, wire: HTTPProtocol) -> None:
        self._wire = wire
        self._state = state = wire.state
        self._capacity = state.capacity
        config = state.config
        streams = config.http2_max_concurrent_streams
        if self._capacity.streams_limit:  # a WSGI worker runs no more than its threads
            streams = max(1, min(streams, self._capacity.streams_limit))
        self._conn = Http2Connection(
            config.limits,
            H2Settings(
                max_concurrent_streams=streams, max_header_list_bytes=config.limits.max_head_bytes
            ),
        )
        self._streams: dict[int, Stream] = {}
        self._ids: dict[Stream, int] = {}
        self._unacked: dict[int, int] = {}  # body bytes held back from the window: app behind
        self._blocked: set[int] = set()  # streams told to pause writing (client's window)
        self._continued: set[int] = set()
        self._body_due: dict[int, float] = {}  # streams whose body is coming: next byte by then
        self._files: dict[int, tuple[FileBody, int, int, Callable[[int, bool], None]]] = {}
        self._sent_bytes: dict[int, int] = {}
        self._write_paused = False  # the transport's buffer is full
        self._idle_since = state.clock.now
        self._linger_until = 0.0  # after a connection error: reading the client out, then close
        self._flush_pending = False  # a flush is scheduled for the end of this loop turn
        self._flush()  # our SETTINGS: the server's preface (RFC 9113 §3.4)

    # -- the transport's side, forwarded by HTTPProtocol --------------------------------
    def data_received(self, data: bytes) -> None:
        if self._linger_until:
            return  # after our GOAWAY: read and drop, so the close sends no RST over it
        starting: list[Stream] = []
        for event in self._conn.receive(data, self._state.clock.now):
            kind = type(event)
            if kind is StreamData:
                self._on_data(event)  # type: ignore[arg-type]  # narrowed by kind
            elif kind is StreamRequest:
                stream = self._open(event)  # type: ignore[arg-type]  # narrowed by kind
                if stream is not None:
                    starting.append(stream)
            elif kind is StreamEnded:
                self._body_due.pop(event.stream_id, None)  # type: ignore[union-attr]
                stream = self._streams.get(event.stream_id)  # type: ignore[union-attr]
                if stream is not None and stream.cycle is not None:
                    stream.cycle.feed_end()
            elif kind is StreamReset:
                self._gone(event.stream_id)  # type: ignore[union-attr]
            elif kind is WindowOpened:
                self._window_opened(event.stream_id)  # type: ignore[union-attr]
            elif kind is ConnectionEnded:
                self._ended(event)  # type: ignore[arg-type]
        for stream in starting:
            if stream.cycle is not None and not stream.done:
                stream.cycle.start()
        self._flush()

    def eof_received(self) -> None:
        """The client is gone (or done after our GOAWAY): HTTPProtocol closes."""

    def connection_lost(self) -> None:
        for sid in list(self._streams):
            self._gone(sid)

    def pause_writing(self) -> None:
        self._write_paused = True
        for stream in self._streams.values():
            if stream.cycle is not None:
                stream.cycle.pause_writing()

    def resume_writing(self) -> None:
        self._write_paused = False
        for sid, stream in self._streams.items():
            if stream.cycle is not None and sid not in self._blocked:
                stream.cycle.resume_writing()

    # -- requests --------------------------------------------------------------------------
    def _open(self, event: StreamRequest) -> Stream | None:
        state, sid = self._state, event.stream_id
        self._wire.first_request()
        limit = state.config.limit_concurrency
        if (limit and self._capacity.in_flight >= limit) or state.draining:
            self._conn.reset(sid, ErrorCode.REFUSED_STREAM)  # safe for the client to retry
            return None
        self._capacity.stream_started()
        client, scheme = self._wire.peer.view(event.request)
        request_s = state.config.timeouts.request_s
        stream = Stream(
            self,
            event.request,
            loop=state.loop,
            client=client,
            server=self._wire.server,
            scheme=scheme,
            tls=self._wire.tls,
            request_deadline=state.clock.now + request_s if request_s else 0.0,
        )
        self._streams[sid] = stream
        if not event.end_stream:
            self._body_due[sid] = state.clock.now + state.config.timeouts.body_read_s
        self._ids[stream] = sid
        stream.cycle = state.new_cycle(event.request, stream)
        if self._write_paused:
            stream.cycle.pause_writing()
        return stream

    def _on_data(self, event: StreamData) -> None:
        sid, size = event.stream_id, len(event.data)
        stream = self._streams.get(sid)
        if stream is None or stream.cycle is None:
            self._conn.ack_consumed(sid, size)
            return
        stream.cycle.feed_body(event.data)  # may call pause_stream at once
        if sid in self._body_due:
            self._body_due[sid] = self._state.clock.now + self._state.config.timeouts.body_read_s
        if sid in self._unacked:
            self._unacked[sid] += size
        else:
            self._conn.ack_consumed(sid, size)

    def _gone(self, sid: int) -> None:
        """The stream is over before its response: the client reset it, or the connection died."""
        stream = self._streams.pop(sid, None)
        if stream is None:
            return
        self._forget(sid, stream)
        self._file_over(sid, whole=False)
        stream.done = True  # whatever the app still sends goes nowhere
        self._capacity.stream_finished()
        if stream.cycle is not None:
            stream.cycle.disconnected()
        self._capacity.room_changed()

    def _forget(self, sid: int, stream: Stream) -> None:
        self._ids.pop(stream, None)
        self._unacked.pop(sid, None)
        self._blocked.discard(sid)
        self._continued.discard(sid)
        self._body_due.pop(sid, None)
        if not self._streams:
            self._idle_since = self._state.clock.now

    def _window_opened(self, sid: int) -> None:
        for file_sid in [s for s in self._files if sid in (0, s)]:
            self._pump(file_sid)
        self._resume_blocked(sid)

    def _resume_blocked(self, sid: int) -> None:
        """Cycles told to pause writing go on once their queue is half drained."""
        waiting = self._blocked if sid == 0 else self._blocked & {sid}
        for blocked in list(waiting):
            if self._conn.pending_bytes(blocked) <= SEND_HIGH_BYTES // 2:
                self._blocked.discard(blocked)
                stream = self._streams.get(blocked)
                if stream is not None and stream.cycle is not None and not self._write_paused:
                    stream.cycle.resume_writing()

    def _ended(self, event: ConnectionEnded) -> None:
        if event.remote:
            log.debug("HTTP/2 peer %s sent GOAWAY (%d)", self._wire.peer.address, event.error_code)
        else:
            log.debug("HTTP/2 connection error with %s: %s", self._wire.peer.address, event.reason)

    def _flush_soon(self) -> None:
        """Write at the end of this loop turn: the streams answered in it share one write."""
        if not self._flush_pending:
            self._flush_pending = True
            self._state.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        wire = self._wire
        if not wire.open:
            return
        wire.write(self._conn.data_to_send())
        if self._blocked:
            self._resume_blocked(0)  # what waited in the connection may have gone out now
        if self._conn.failed:
            self._linger()
        elif self._conn.closing and not self._streams:
            wire.close()

    def _linger(self) -> None:
        """After a connection error: send our FIN behind the GOAWAY, keep reading until the
        client closes (or LINGER_S): closing on unread input would RST the GOAWAY away."""
        if self._linger_until:
            return
        for sid in list(self._streams):
            self._gone(sid)
        if self._wire.write_eof():
            self._linger_until = self._state.clock.now + LINGER_S
        else:
            self._wire.close()

    # -- Link: what a stream asks of its connection ------------------------------------
    def write_head(
        self, stream: Stream, status: int, headers: Headers, body: bytes, end: bool
    ) -> None:
        sid = self._ids.get(stream)
        if sid is None:
            return
        for name, value in headers:
            if any(bad in name or bad in value for bad in _BAD_VALUE):
                raise ResponseError(f"invalid response header {name!r}")
        fields = [*headers, (b"date", self._state.clock.date_line[6:-2])]
        if self._state.server_line and not any(name.lower() == b"server" for name, _ in headers):
            fields.append((b"server", b"hybridserve"))
        bodiless = stream.request.method == b"HEAD" or status in NO_BODY_STATUSES
        body = b"" if bodiless else body
        self._conn.send_head(sid, status, fields, end_stream=end and not body)
        if body:
            self._conn.send_data(sid, body, end_stream=end)
        self._after_write(sid, stream)

    def write_body(self, stream: Stream, data: bytes, end: bool) -> None:
        sid = self._ids.get(stream)
        if sid is None:
            return
        if stream.request.method == b"HEAD" or stream.status in NO_BODY_STATUSES:
            data = b""
        if data or end:
            self._conn.send_data(sid, data, end_stream=end)
            self._after_write(sid, stream)

    def write_file(
        self,
        stream: Stream,
        status: int,
        headers: Headers,
        body: FileBody,
        sent: Callable[[int, bool], None],
    ) -> None:
        """A file response: its head, then the file read as the client's window opens."""
        sid = self._ids.get(stream)
        length = body.length
        if sid is None:
            os.close(body.fd)
            sent(0, False)
            return
        bodiless = stream.request.method == b"HEAD" or status in NO_BODY_STATUSES
        if bodiless or not length:
            os.close(body.fd)
            self.write_head(stream, status, headers, b"", True)
            sent(0, True)
            return
        self.write_head(stream, status, headers, b"", False)
        self._files[sid] = (body, 0, 0, sent)  # (body, next piece, offset in it, sent)
        self._pump(sid)

    def _pump(self, sid: int) -> None:
        """Read more of a file body while the stream's queue is under its high-water mark."""
        body, index, offset, sent = self._files[sid]
        total = 0
        while index < len(body.pieces) and self._conn.pending_bytes(sid) < SEND_HIGH_BYTES:
            piece = body.pieces[index]
            if isinstance(piece, bytes):
                chunk, index = piece, index + 1
            else:
                start, count = piece
                chunk = os.pread(body.fd, min(FILE_CHUNK_BYTES, count - offset), start + offset)
                offset += len(chunk)
                if offset >= count or not chunk:
                    index, offset = index + 1, 0
            total += len(chunk)
            self._conn.send_data(sid, chunk, end_stream=index >= len(body.pieces))
        self._files[sid] = (body, index, offset, sent)
        self._sent_bytes[sid] = self._sent_bytes.get(sid, 0) + total
        self._flush_soon()
        if index >= len(body.pieces):
            self._file_over(sid, whole=True)

    def _file_over(self, sid: int, *, whole: bool) -> None:
        file = self._files.pop(sid, None)
        if file is not None:
            os.close(file[0].fd)
            file[3](self._sent_bytes.pop(sid, 0), whole)

    def write_trailers(self, stream: Stream, trailers: Headers) -> None:
        sid = self._ids.get(stream)
        if sid is not None:
            self._conn.send_trailers(sid, trailers)
            self._flush_soon()

    def write_continue(self, stream: Stream) -> None:
        sid = self._ids.get(stream)
        if sid is not None and stream.request.expect_continue and sid not in self._continued:
            self._continued.add(sid)
            self._conn.send_continue(sid)
            self._flush()

    def _after_write(self, sid: int, stream: Stream) -> None:
        self._flush_soon()
        if sid not in self._blocked and self._conn.pending_bytes(sid) > SEND_HIGH_BYTES:
            self._blocked.add(sid)
            if stream.cycle is not None:
                stream.cycle.pause_writing()

    def abort_stream(self, stream: Stream) -> None:
        """The app failed after its head went out: reset this stream only (RFC 9113 §8.1)."""
        sid = self._ids.get(stream)
        if sid is not None:
            self._conn.reset(sid, ErrorCode.INTERNAL_ERROR)
            self._gone(sid)
            self._flush()

    def pause_stream(self, stream: Stream) -> None:
        sid = self._ids.get(stream)
        if sid is not None:
            self._unacked.setdefault(sid, 0)

    def resume_stream(self, stream: Stream) -> None:
        sid = self._ids.get(stream)
        if sid is not None and sid in self._unacked:
            self._conn.ack_consumed(sid, self._unacked.pop(sid))
            self._flush()

    def stream_done(self, stream: Stream) -> None:
        """The response is complete."""
        sid = self._ids.get(stream)
        if sid is None or self._streams.pop(sid, None) is None:
            return
        self._forget(sid, stream)
        self._capacity.stream_finished()
        self._state.record.stream_finished(stream)
        self._capacity.room_changed()
        if self._conn.closing and not self._streams:
            self._flush()

    def switch_protocols(self, stream: Stream, session: object, head: bytes) -> None:
        """HTTP/1.1 only; WebSockets over HTTP/2 (RFC 8441) are not offered."""
        raise ResponseError("no protocol switch on HTTP/2")

    def write_raw(self, data: bytes) -> None:
        self._wire.write(data)

    def close(self) -> None:
        self.shutdown()

    def reset(self) -> None:
        self._wire.abort()

    # -- the worker's side: deadlines and draining -----------------------------------------
    def check_deadline(self, now: float) -> None:
        if self._linger_until:
            if now >= self._linger_until:
                self._wire.close()
            return
        for sid, stream in list(self._streams.items()):
            if stream.request_deadline and now >= stream.request_deadline:
                self._expire(sid, stream)
            elif sid not in self._unacked and now >= self._body_due.get(sid, now + 1):
                self._body_late(sid, stream)  # (a paused stream waits for its app, not us)
        idle_s = self._state.config.timeouts.keep_alive_s
        if not self._streams and now - self._idle_since >= idle_s:
            self.shutdown()

    def _body_late(self, sid: int, stream: Stream) -> None:
        """The client stopped sending this stream's body (--timeout-body-read): 408 if we
        still can, else a reset; the app hears of a disconnect. Other streams go on."""
        log.debug(
            "HTTP/2 stream %d from %s: body not received in time", sid, self._wire.peer.address
        )
        if stream.status:
            self._conn.reset(sid, ErrorCode.CANCEL)
        else:
            self._conn.send_head(sid, 408, [(b"content-length", b"0")], end_stream=True)
        self._gone(sid)
        self._flush()

    def _expire(self, sid: int, stream: Stream) -> None:
        """Past --request-timeout: 503 if the head is not out yet, else a reset."""
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
        if stream.status:
            self._conn.reset(sid, ErrorCode.CANCEL)
            self._gone(sid)
        else:
            stream.status = 503
            self._conn.send_head(sid, 503, [(b"content-length", b"0")], end_stream=True)
            stream.done = True
            self.stream_done(stream)
        self._flush()

    def shutdown(self) -> None:
        """GOAWAY with the last stream we took: those finish, newer ones are refused."""
        self._conn.close()
        for stream in self._streams.values():
            if stream.cycle is not None:
                stream.cycle.shutdown()
        self._flush()

    def hand_over(self) -> bool:
        """GOAWAY now: the client opens its next streams on a new connection (a sibling)."""
        if self._conn.closing:
            return False
        self._conn.close()
        self._flush()
        return True
