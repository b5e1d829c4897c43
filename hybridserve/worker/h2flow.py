"""H2Flow: a stream's bytes on an HTTP/2 connection, both ways, with backpressure.

Outgoing, the response: its head fields (checked, with Date and Server), body, file body
and trailers become frames in the sans-IO connection. Flow control is backpressure.
Incoming: a stream's body is credited back to the client (WINDOW_UPDATE) as the adapter
takes it, and not while the adapter says it is behind (``hold`` until ``release``).
Outgoing: a response waits in the sans-IO connection for the client's window; once more
than ``SEND_HIGH_BYTES`` wait, the stream's cycle is told to pause writing, and it goes on
once half of that has gone out. A file body is read only as the window takes it.

The session (``h2session.py``) owns the streams and the transport; this object owns only
the counts above, and reaches a stream's cycle through ``cycle_of``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from hybridserve.apps.types import Cycle, FileBody
from hybridserve.errors import ResponseError
from hybridserve.sansio.events import Headers
from hybridserve.sansio.http2 import Http2Connection
from hybridserve.worker.state import WorkerState
from hybridserve.worker.stream import NO_BODY_STATUSES, FileSent, Stream

SEND_HIGH_BYTES = 64 * 1024  # response bytes waiting for the client's window, per stream
FILE_CHUNK_BYTES = 64 * 1024  # a file body is read this much at a time, as the window allows
_BAD_VALUE = (b"\r", b"\n", b"\x00")  # never in a response field


class H2Flow:
    """Window credit held back, writers paused, and file bodies pumped, by stream id."""

    def __init__(
        self,
        conn: Http2Connection,
        state: WorkerState,
        *,
        cycle_of: Callable[[int], Cycle | None],
        flush_soon: Callable[[], None],
    ) -> None:
        self._conn = conn
        self._clock = state.clock  # its Date line goes in every head
        self._server_header = bool(state.server_line)
        self._cycle_of, self._flush_soon = cycle_of, flush_soon
        self._continued: set[int] = set()  # streams that had their 100 Continue
        self._unacked: dict[int, int] = {}  # body bytes held back from the window: app behind
        self._blocked: set[int] = set()  # streams told to pause writing (client's window)
        self._files: dict[int, tuple[FileBody, int, int, FileSent]] = {}
        self._sent_bytes: dict[int, int] = {}
        self.write_paused = False  # the transport's buffer is full

    # -- outgoing: the response ----------------------------------------------------------
    def head(
        self, sid: int, stream: Stream, status: int, headers: Headers, body: bytes, end: bool
    ) -> None:
        """The response head, and its first body bytes; ResponseError for a bad field."""
        for name, value in headers:
            if any(bad in name or bad in value for bad in _BAD_VALUE):
                raise ResponseError(f"invalid response header {name!r}")
        fields = [*headers, (b"date", self._clock.date_line[6:-2])]
        if self._server_header and not any(name.lower() == b"server" for name, _ in headers):
            fields.append((b"server", b"hybridserve"))
        if stream.request.method == b"HEAD" or status in NO_BODY_STATUSES:
            body = b""
        self._conn.send_head(sid, status, fields, end_stream=end and not body)
        if body:
            self._conn.send_data(sid, body, end_stream=end)
        self.written(sid)

    def body(self, sid: int, stream: Stream, data: bytes, end: bool) -> None:
        if stream.request.method == b"HEAD" or stream.status in NO_BODY_STATUSES:
            data = b""
        if data or end:
            self._conn.send_data(sid, data, end_stream=end)
            self.written(sid)

    def file(
        self,
        sid: int,
        stream: Stream,
        status: int,
        headers: Headers,
        body: FileBody,
        sent: FileSent,
    ) -> None:
        """A file response: its head, then the file read as the client's window opens."""
        if stream.request.method == b"HEAD" or status in NO_BODY_STATUSES or not body.length:
            os.close(body.fd)
            self.head(sid, stream, status, headers, b"", True)
            sent(0, True)
            return
        self.head(sid, stream, status, headers, b"", False)
        self._files[sid] = (body, 0, 0, sent)  # (body, next piece, offset in it, sent)
        self._pump(sid)

    def trailers(self, sid: int, trailers: Headers) -> None:
        self._conn.send_trailers(sid, trailers)
        self._flush_soon()

    def send_continue(self, sid: int, stream: Stream) -> bool:
        """``100 Continue``, once, to a client that waits for it; whether it was queued."""
        if not stream.request.expect_continue or sid in self._continued:
            return False
        self._continued.add(sid)
        self._conn.send_continue(sid)
        return True

    # -- incoming: the client's window follows the app ---------------------------------
    def consumed(self, sid: int, size: int) -> None:
        """The adapter took ``size`` body bytes: credit them, unless it asked to hold."""
        if sid in self._unacked:
            self._unacked[sid] += size
        else:
            self._conn.ack_consumed(sid, size)

    def hold(self, sid: int) -> None:
        self._unacked.setdefault(sid, 0)

    def release(self, sid: int) -> bool:
        """The adapter caught up: credit what was held; whether there is a frame to send."""
        if sid not in self._unacked:
            return False
        self._conn.ack_consumed(sid, self._unacked.pop(sid))
        return True

    def holding(self, sid: int) -> bool:
        """Whether this stream's body waits for its app (so the client is not late)."""
        return sid in self._unacked

    # -- outgoing: writers wait for the client's window ---------------------------------
    def written(self, sid: int) -> None:
        """Response bytes were queued: write them soon; pause the writer if too many wait."""
        self._flush_soon()
        if sid not in self._blocked and self._conn.pending_bytes(sid) > SEND_HIGH_BYTES:
            self._blocked.add(sid)
            cycle = self._cycle_of(sid)
            if cycle is not None:
                cycle.pause_writing()

    def is_blocked(self, sid: int) -> bool:
        return sid in self._blocked

    def window_opened(self, sid: int) -> None:
        """The client gave credit on ``sid`` (0: the whole connection)."""
        for file_sid in [s for s in self._files if sid in (0, s)]:
            self._pump(file_sid)
        self.resume_blocked(sid)

    def resume_blocked(self, sid: int) -> None:
        """Cycles told to pause writing go on once their queue is half drained."""
        if not self._blocked:
            return
        waiting = self._blocked if sid == 0 else self._blocked & {sid}
        for blocked in list(waiting):
            if self._conn.pending_bytes(blocked) <= SEND_HIGH_BYTES // 2:
                self._blocked.discard(blocked)
                cycle = self._cycle_of(blocked)
                if cycle is not None and not self.write_paused:
                    cycle.resume_writing()

    def forget(self, sid: int) -> None:
        """The stream is over: drop its counts; a file body still being sent is cut short."""
        self._unacked.pop(sid, None)
        self._blocked.discard(sid)
        self._continued.discard(sid)
        self._file_over(sid, whole=False)

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
