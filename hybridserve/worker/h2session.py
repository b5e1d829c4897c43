"""H2Session: the HTTP/2 side of a connection, between its transport and its streams.

HTTPProtocol keeps the transport; ``sessions.make_session`` gives it this session when the
client's first bytes are the HTTP/2 connection preface (after ALPN "h2" over TLS, or with prior
knowledge on plain TCP), else the HTTP/1.1 one. Each request becomes a ``Stream``, the same
the HTTP/1.1 path makes, so the ASGI and WSGI adapters serve it unchanged; this class is
those streams' ``Link``: it finds the stream's id and hands the bytes to ``H2Flow``
(``h2flow.py``: framing and backpressure both ways); time limits are ``H2Deadlines``'s.
Streams the sans-IO connection refused itself (431, 413, RST_STREAM) are logged and
counted here, as HTTP/1.1 does its parser's refusals.
"""

from __future__ import annotations

import logging
import os

from hybridserve.apps.types import Cycle, FileBody
from hybridserve.config import Config
from hybridserve.errors import ResponseError
from hybridserve.sansio.events import Headers, Request
from hybridserve.sansio.h2backend import H2Settings
from hybridserve.sansio.h2events import (
    ConnectionEnded,
    ErrorCode,
    StreamData,
    StreamEnded,
    StreamRefused,
    StreamRequest,
    StreamReset,
    WindowOpened,
    code_name,
)
from hybridserve.sansio.http2 import Http2Connection
from hybridserve.worker.capacity import Capacity
from hybridserve.worker.h2deadlines import H2Deadlines
from hybridserve.worker.h2flow import H2Flow
from hybridserve.worker.protocol import HTTPProtocol
from hybridserve.worker.stream import FileSent, Stream

log = logging.getLogger("hybridserve.error")

LINGER_S = 2.0  # after a connection error, how long the client may take to close its side


def announced_streams(config: Config, capacity: Capacity) -> int:
    """SETTINGS_MAX_CONCURRENT_STREAMS: no more streams than the worker can run at once
    (a WSGI worker's threads, an ASGI worker's --limit-concurrency), at least one."""
    streams = config.http2_max_concurrent_streams
    for bound in (capacity.streams_limit, config.limit_concurrency):
        if bound:
            streams = min(streams, bound)
    return max(1, streams)


class H2Session:
    """One HTTP/2 connection's streams; HTTPProtocol forwards its transport's callbacks."""

    def __init__(self, wire: HTTPProtocol) -> None:
        self._wire = wire
        self._state = state = wire.state
        self._capacity = state.capacity
        limits = state.config.limits
        settings = H2Settings(
            max_concurrent_streams=announced_streams(state.config, self._capacity),
            max_header_list_bytes=limits.max_head_bytes,
        )
        self._conn = Http2Connection(limits, settings, resets=state.record.h2_resets)
        self._streams: dict[int, Stream] = {}
        self._ids: dict[Stream, int] = {}
        self._flow = H2Flow(self._conn, state, cycle_of=self._cycle_of, flush_soon=self._flush_soon)
        self._deadlines = H2Deadlines(self, self._conn, state, self._flow.holding)
        self._linger_until = 0.0  # after a connection error: reading the client out, then close
        self._flush_pending = False  # a flush is scheduled for the end of this loop turn
        self.flush()  # our SETTINGS: the server's preface (RFC 9113 §3.4)

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
                self._deadlines.body_ended(event.stream_id)  # type: ignore[union-attr]
                stream = self._streams.get(event.stream_id)  # type: ignore[union-attr]
                if stream is not None and stream.cycle is not None:
                    stream.cycle.feed_end()
            elif kind is StreamReset:
                self.gone(event.stream_id)  # type: ignore[union-attr]
            elif kind is WindowOpened:
                self._flow.window_opened(event.stream_id)  # type: ignore[union-attr]
            elif kind is ConnectionEnded:
                self._ended(event)  # type: ignore[arg-type]
            elif kind is StreamRefused:
                self._refused(event)  # type: ignore[arg-type]
        for stream in starting:
            if stream.cycle is not None and not stream.done:
                stream.cycle.start()
        self.flush()

    def eof_received(self) -> None:
        """The client is gone (or done after our GOAWAY): HTTPProtocol closes."""

    def connection_lost(self) -> None:
        for sid in list(self._streams):
            self.gone(sid)

    def pause_writing(self) -> None:
        self._flow.write_paused = True
        for stream in self._streams.values():
            if stream.cycle is not None:
                stream.cycle.pause_writing()

    def resume_writing(self) -> None:
        self._flow.write_paused = False
        for sid, stream in self._streams.items():
            if stream.cycle is not None and not self._flow.is_blocked(sid):
                stream.cycle.resume_writing()

    def _cycle_of(self, sid: int) -> Cycle | None:
        stream = self._streams.get(sid)
        return None if stream is None else stream.cycle

    # -- requests --------------------------------------------------------------------------
    def _open(self, event: StreamRequest) -> Stream | None:
        state, sid = self._state, event.stream_id
        self._wire.first_request()
        limit = state.config.limit_concurrency
        if (limit and self._capacity.in_flight >= limit) or state.draining:
            self._conn.reset(sid, ErrorCode.REFUSED_STREAM)  # safe for the client to retry
            self._log_refusal(event.request, 0, ErrorCode.REFUSED_STREAM)
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
            self._deadlines.body_expected(sid)
        self._ids[stream] = sid
        stream.cycle = state.new_cycle(event.request, stream)
        if self._flow.write_paused:
            stream.cycle.pause_writing()
        return stream

    def _refused(self, event: StreamRefused) -> None:
        """A stream the sans-IO connection answered (431, 413) or reset itself."""
        log.debug(
            "HTTP/2 stream %d from %s refused (%s)",
            event.stream_id,
            self._wire.peer.address,
            event.status or code_name(event.error_code),
        )
        self._log_refusal(event.request, event.status, event.error_code)

    def _log_refusal(self, request: Request, status: int, code: int) -> None:
        """In the access log and the metrics, as HTTP/1.1 refusals are (no app saw it)."""
        reset = "" if status else code_name(code)
        self._state.record.refused(request, self._wire.peer.address, status, 0, reset)

    def _on_data(self, event: StreamData) -> None:
        sid, size = event.stream_id, len(event.data)
        stream = self._streams.get(sid)
        if stream is None or stream.cycle is None:
            self._conn.ack_consumed(sid, size)
            return
        stream.cycle.feed_body(event.data)  # may call pause_stream at once
        self._deadlines.body_arrived(sid)
        self._flow.consumed(sid, size)

    def gone(self, sid: int) -> None:
        """The stream is over before its response: the client reset it, or the connection died."""
        stream = self._streams.pop(sid, None)
        if stream is None:
            return
        self._forget(sid, stream)
        stream.done = True  # whatever the app still sends goes nowhere
        self._capacity.stream_finished()
        if stream.cycle is not None:
            stream.cycle.disconnected()
            stream.cycle = None  # it refers back to the stream: no garbage cycle
        self._capacity.room_changed()

    def _forget(self, sid: int, stream: Stream) -> None:
        self._ids.pop(stream, None)
        self._flow.forget(sid)
        self._deadlines.forget(sid, idle=not self._streams)

    def _ended(self, event: ConnectionEnded) -> None:
        if event.remote:
            log.debug("HTTP/2 peer %s sent GOAWAY (%d)", self._wire.peer.address, event.error_code)
        else:
            log.debug("HTTP/2 connection error with %s: %s", self._wire.peer.address, event.reason)

    def _flush_soon(self) -> None:
        """Write at the end of this loop turn: the streams answered in it share one write."""
        if not self._flush_pending:
            self._flush_pending = True
            self._state.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_pending = False
        wire = self._wire
        if not wire.open:
            return
        wire.write(self._conn.data_to_send())
        self._flow.resume_blocked(0)  # what waited in the connection may have gone out now
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
            self.gone(sid)
        if self._wire.write_eof():
            self._linger_until = self._state.clock.now + LINGER_S
        else:
            self._wire.close()

    # -- Link: what a stream asks of its connection ------------------------------------
    def write_head(
        self, stream: Stream, status: int, headers: Headers, body: bytes, end: bool
    ) -> None:
        sid = self._ids.get(stream)
        if sid is not None:
            self._flow.head(sid, stream, status, headers, body, end)

    def write_body(self, stream: Stream, data: bytes, end: bool) -> None:
        sid = self._ids.get(stream)
        if sid is not None:
            self._flow.body(sid, stream, data, end)

    def write_file(
        self, stream: Stream, status: int, headers: Headers, body: FileBody, sent: FileSent
    ) -> None:
        sid = self._ids.get(stream)
        if sid is None:
            os.close(body.fd)
            sent(0, False)
        else:
            self._flow.file(sid, stream, status, headers, body, sent)

    def write_trailers(self, stream: Stream, trailers: Headers) -> None:
        sid = self._ids.get(stream)
        if sid is not None:
            self._flow.trailers(sid, trailers)

    def write_continue(self, stream: Stream) -> None:
        sid = self._ids.get(stream)
        if sid is not None and self._flow.send_continue(sid, stream):
            self.flush()

    def abort_stream(self, stream: Stream) -> None:
        """The app failed after its head went out: reset this stream only (RFC 9113 §8.1)."""
        sid = self._ids.get(stream)
        if sid is not None:
            self._conn.reset(sid, ErrorCode.INTERNAL_ERROR)
            self.gone(sid)
            self.flush()

    def pause_stream(self, stream: Stream) -> None:
        sid = self._ids.get(stream)
        if sid is not None:
            self._flow.hold(sid)

    def resume_stream(self, stream: Stream) -> None:
        sid = self._ids.get(stream)
        if sid is not None and self._flow.release(sid):
            self.flush()

    def stream_done(self, stream: Stream) -> None:
        """The response is complete."""
        sid = self._ids.get(stream)
        if sid is None or self._streams.pop(sid, None) is None:
            return
        self._forget(sid, stream)
        self._capacity.stream_finished()
        self._state.record.stream_finished(stream)
        stream.cycle = None  # it refers back to the stream: no garbage cycle
        self._capacity.room_changed()
        if self._conn.closing and not self._streams:
            self.flush()

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
        if not self._linger_until:
            self._deadlines.check(now, self._streams)
        elif now >= self._linger_until:
            self._wire.close()

    def shutdown(self) -> None:
        """GOAWAY with the last stream we took: those finish, newer ones are refused."""
        self._conn.close()
        for stream in self._streams.values():
            if stream.cycle is not None:
                stream.cycle.shutdown()
        self.flush()

    def hand_over(self) -> bool:
        """GOAWAY now: the client opens its next streams on a new connection (a sibling)."""
        if self._conn.closing:
            return False
        self._conn.close()
        self.flush()
        return True
