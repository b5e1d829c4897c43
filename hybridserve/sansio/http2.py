"""Http2Connection: the HTTP/2 state of one connection, server side, with no I/O.

How it works: ``receive(data, now_s)`` checks the connection preface, feeds a backend (the
HTTP/2 library, see ``h2backend.py``) and turns what it reports into our events: one
``StreamRequest`` per stream, its ``StreamData``, then exactly one ``StreamEnded`` (also for
a request without a body), or a ``StreamReset`` once the stream is gone. The worker answers
with ``send_head``/``send_data``/``send_trailers`` and takes bytes from ``data_to_send()``.

Flow control is backpressure both ways. Incoming: the stream's window reopens only through
``ack_consumed``, as the app reads. Outgoing: ``send_data`` always takes the bytes, but
``pending_bytes`` says how many wait for the peer's window; a writer waits for a
``WindowOpened`` while that is above its high-water mark.

Defences live here, the same for every backend: HTTP semantics (RFC 9113 §8), size limits
(431 on the stream), content-length against the DATA received, and the flood counters of
``h2guard.py``. A connection error writes GOAWAY and the connection takes no more input.
"""

from __future__ import annotations

from hybridserve.config_groups import Limits
from hybridserve.sansio.events import Headers, Request
from hybridserve.sansio.h2backend import (
    BackendError,
    ControlFrame,
    H2Settings,
    RawEnd,
    RawHeaders,
    goaway_frame,
    make_backend,
)
from hybridserve.sansio.h2events import (
    ConnectionEnded,
    ErrorCode,
    H2Event,
    ResetCounts,
    StreamData,
    StreamEnded,
    StreamRefused,
    StreamRequest,
    StreamReset,
    WindowOpened,
)
from hybridserve.sansio.h2frames import PREFACE, FrameScanner
from hybridserve.sansio.h2guard import FloodGuard, FloodLimits
from hybridserve.sansio.h2headers import (
    CONNECTION_SPECIFIC,
    MalformedError,
    Refusal,
    TooLarge,
    admit,
    check_trailers,
    seen_request,
)

__all__ = ["PREFACE", "Http2Connection"]

SLICE_BYTES = 16 * 1024  # input fed to the backend at a time, flood counters checked between


class _Stream:
    """What we track per open stream: body accounting and which side has finished."""

    __slots__ = ("expected", "head_sent", "local_done", "received", "remote_done")

    def __init__(self, expected: int | None, remote_done: bool) -> None:
        self.expected = expected
        self.received = 0
        self.remote_done = remote_done
        self.local_done = False
        self.head_sent = False


class Http2Connection:
    """One HTTP/2 connection; ``backend`` is "auto", "ngh2" or "h2".

    ``resets`` counts every RST_STREAM sent or received (the worker's, shared by all its
    connections); a connection of its own when none is given.
    """

    def __init__(
        self,
        limits: Limits,
        settings: H2Settings | None = None,
        floods: FloodLimits | None = None,
        backend: str = "auto",
        resets: ResetCounts | None = None,
    ) -> None:
        self._limits = limits
        self.resets = resets if resets is not None else ResetCounts()
        self._settings = settings or H2Settings()
        self._guard = FloodGuard(floods or FloodLimits())
        self._backend = make_backend(backend, self._settings)
        self._checked = self._backend.checks_fields
        self._streams: dict[int, _Stream] = {}
        self._finishing: set[int] = set()  # answered, body still queued, request still open
        self._scanner = FrameScanner()
        self._out = bytearray()
        self._events: list[H2Event] = []
        self._new: set[int] = set()  # streams that opened in the input at hand
        self._withdrawn: set[int] = set()  # ...and were reset in it: the app never sees them
        self.last_stream_id = 0
        self.failed = False  # a connection error: write what is queued, then close
        self.closing = False  # GOAWAY either way: no new streams; close once none is open

    @property
    def open_streams(self) -> int:
        """Streams in flight: a request arrived and its exchange has not finished."""
        return len(self._streams)

    def receive(self, data: bytes, now_s: float) -> list[H2Event]:
        """Feed bytes from the client; ``now_s`` is the worker's monotonic clock."""
        if self.failed:
            return []
        data, broken = self._scanner.feed(data)
        if broken is not None:
            self._fail(ErrorCode.PROTOCOL_ERROR, broken)
            return self._take_events()
        # A flood is judged after each slice, so one read full of it costs little work.
        for at in range(0, len(data), SLICE_BYTES):
            self._feed(data[at : at + SLICE_BYTES] if len(data) > SLICE_BYTES else data, now_s)
            if self.failed:
                break
        return self._take_events()

    def _feed(self, data: bytes, now_s: float) -> None:
        try:
            raw = self._backend.receive(data)
        except BackendError as exc:
            self._fail(exc.code, str(exc), written=exc.goaway_sent)
            return
        for event in raw:
            if self.failed:
                return
            if type(event) is StreamData:
                self._on_data(event, now_s)
            elif type(event) is RawHeaders:
                self._on_headers(event, now_s)
            elif type(event) is RawEnd:
                self._on_end(event.stream_id, [], now_s)
            else:
                self._on_control(event, now_s)

    def _take_events(self) -> list[H2Event]:
        events, self._events = self._events, []
        self._new.clear()
        if self._withdrawn:
            gone = self._withdrawn
            events = [e for e in events if getattr(e, "stream_id", 0) not in gone]
            self._withdrawn = set()
        return events

    def _on_headers(self, event: RawHeaders, now_s: float) -> None:
        sid, block = event.stream_id, event.headers
        if event.trailers:
            self._on_trailers(sid, block, now_s)
            return
        self.last_stream_id = max(self.last_stream_id, sid)
        if self.closing or len(self._streams) >= self._settings.max_concurrent_streams:
            self._reset(sid, ErrorCode.REFUSED_STREAM)  # §8.7: safe to retry
            self._events.append(
                StreamRefused(sid, seen_request(block), 0, ErrorCode.REFUSED_STREAM)
            )
            return
        try:
            request, scheme, expected = admit(block, self._limits, self._checked, event.end_stream)
        except Refusal as refusal:
            if refusal.status:
                self._answer(sid, refusal.status, event.end_stream, refusal.request)
            else:
                self._client_error(sid, now_s, refusal.request)
            return
        self._streams[sid] = _Stream(expected, event.end_stream)
        self._new.add(sid)
        self._events.append(StreamRequest(sid, request, scheme, event.end_stream))
        if event.end_stream:
            self._events.append(StreamEnded(sid))

    def _on_trailers(self, sid: int, block: Headers, now_s: float) -> None:
        if sid in self._streams:
            try:
                trailers = check_trailers(block, self._limits)
            except (MalformedError, TooLarge):
                self._client_error(sid, now_s)
                return
            self._on_end(sid, trailers, now_s)

    def _on_data(self, event: StreamData, now_s: float) -> None:
        sid, size = event.stream_id, len(event.data)
        stream = self._streams.get(sid)
        if stream is None or stream.remote_done or stream.local_done:  # not wanted: credit it
            if size:
                self._backend.ack_consumed(sid, size)
            return
        if not size and not event.end_stream and (reason := self._guard.empty_data(now_s)):
            self._fail(ErrorCode.ENHANCE_YOUR_CALM, reason)
            return
        stream.received += size
        if stream.expected is not None and stream.received > stream.expected:
            self._backend.ack_consumed(sid, size)
            self._client_error(sid, now_s)
            return
        limit = self._limits.max_body_bytes
        if limit and stream.received > limit:
            self._backend.ack_consumed(sid, size)
            self._over_body_limit(sid, stream)
            return
        if size:
            self._events.append(StreamData(sid, event.data))
        if event.end_stream:
            self._on_end(sid, [], now_s)

    def _on_end(self, sid: int, trailers: Headers, now_s: float) -> None:
        stream = self._streams.get(sid)
        if stream is None or stream.remote_done:
            return
        if stream.expected is not None and stream.received != stream.expected:
            self._client_error(sid, now_s)  # §8.1.1: content-length and DATA disagree
            return
        stream.remote_done = True
        self._events.append(StreamEnded(sid, trailers))
        if stream.local_done:
            del self._streams[sid]

    def _on_control(self, event: object, now_s: float) -> None:
        reason: str | None = None
        if isinstance(event, WindowOpened):
            reason = self._guard.window_update(now_s)
            self._events.append(event)
        elif isinstance(event, ControlFrame):
            reason = self._guard.control(event.kind, now_s)
        elif isinstance(event, StreamReset):
            reason = self._guard.reset(now_s)  # the client's RST, or its error we answered
            self.resets.count(event.error_code, remote=event.remote)
            self._on_reset(event)
        elif isinstance(event, ConnectionEnded):
            self._ended(event)
        if reason is not None:
            self._fail(ErrorCode.ENHANCE_YOUR_CALM, reason)

    def _on_reset(self, event: StreamReset) -> None:
        sid = event.stream_id
        if self._streams.pop(sid, None) is not None:
            self._events.append(event)
            if sid in self._new:  # opened and reset in one read (rapid reset)
                self._withdrawn.add(sid)
        elif not event.remote and sid > self.last_stream_id:  # the library refused its head
            self.last_stream_id = sid
            self._events.append(StreamRefused(sid, seen_request([]), 0, event.error_code))

    def _ended(self, event: ConnectionEnded) -> None:
        if self.closing and not event.error_code:
            return  # our own graceful GOAWAY, or the last stream after the peer's
        if not event.remote:
            event.last_stream_id = self.last_stream_id
            self.failed = self.failed or bool(event.error_code)
        self.closing = True
        self._events.append(event)

    def _client_error(self, sid: int, now_s: float, refused: Request | None = None) -> None:
        """A malformed stream: RST_STREAM PROTOCOL_ERROR, counted as a reset we were made to
        do. ``refused``: the head, when the stream is refused before any app saw it."""
        self._reset(sid, ErrorCode.PROTOCOL_ERROR)
        if refused is not None:
            self._events.append(StreamRefused(sid, refused, 0, ErrorCode.PROTOCOL_ERROR))
        elif self._streams.pop(sid, None) is not None:
            self._events.append(StreamReset(sid, ErrorCode.PROTOCOL_ERROR, remote=False))
        if reason := self._guard.reset(now_s):
            self._fail(ErrorCode.ENHANCE_YOUR_CALM, reason)

    def _reset(self, sid: int, code: int) -> None:
        self._backend.reset(sid, code)
        self.resets.count(code, remote=False)

    def _answer(
        self, sid: int, status: int, remote_done: bool, refused: Request | None = None
    ) -> None:
        """Refuse a request ourselves with a bodiless response; the app never sees it.
        ``refused``: its head, for the access log, when no app has seen the stream."""
        self._backend.send_head(sid, [(b":status", str(status).encode())], True)
        if refused is not None:
            self._events.append(StreamRefused(sid, refused, status))
        if not remote_done:  # §8.1: ask the client to stop sending, once the answer is out
            self._finishing.add(sid)

    def _over_body_limit(self, sid: int, stream: _Stream) -> None:
        del self._streams[sid]
        if stream.head_sent:
            self._reset(sid, ErrorCode.CANCEL)
        else:
            self._answer(sid, 413, False)
        self._events.append(StreamReset(sid, ErrorCode.CANCEL, remote=False))

    def _fail(self, code: int, reason: str, *, written: bool = False) -> None:
        """A connection error (RFC 9113 §5.4.1): GOAWAY, then no more input."""
        self._out += self._backend.data_to_send()
        if not written:
            self._out += goaway_frame(self.last_stream_id, code, reason.encode()[:256])
        self.failed = self.closing = True
        self._events.append(ConnectionEnded(code, self.last_stream_id, False, reason))

    # -- the worker's side --------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Bytes for the transport: frames of every stream, in the order they were made."""
        out = self._backend.data_to_send()
        if self._finishing and not self.failed:  # resets that must follow what just went out
            self._finish_answered()
            out += self._backend.data_to_send()
        if self._out:
            out = bytes(self._out) + out
            self._out.clear()
        return out

    def send_head(
        self, stream_id: int, status: int, headers: Headers, end_stream: bool = False
    ) -> None:
        """The response head; names lower-cased, hop-by-hop fields dropped (§8.2.2)."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.head_sent or self.failed:
            return  # reset meanwhile: the worker has its StreamReset
        fields = [(b":status", str(status).encode())]
        for name, value in headers:
            name = name.lower()
            if name not in CONNECTION_SPECIFIC:
                fields.append((name, value))
        stream.head_sent = True
        self._backend.send_head(stream_id, fields, end_stream)
        if end_stream:
            self._local_done(stream_id, stream)

    def send_continue(self, stream_id: int) -> None:
        """``100 Continue`` for a client that waits for it (RFC 9110 §10.1.1)."""
        stream = self._streams.get(stream_id)
        if stream is not None and not stream.head_sent and not self.failed:
            self._backend.send_informational(stream_id, [(b":status", b"100")])

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Body bytes; they wait in the backend for the peer's window (see pending_bytes)."""
        stream = self._streams.get(stream_id)
        if stream is None or self.failed:
            return
        self._backend.send_data(stream_id, data, end_stream)
        self._guard.data_sent(len(data), self._settings.max_frame_size)
        if end_stream:
            self._local_done(stream_id, stream)

    def send_trailers(self, stream_id: int, headers: Headers) -> None:
        """Trailer fields, which end the response; pseudo-headers are not allowed (§8.1)."""
        stream = self._streams.get(stream_id)
        if stream is None or self.failed:
            return
        fields = [(name.lower(), value) for name, value in headers if not name.startswith(b":")]
        self._backend.send_trailers(stream_id, fields)
        self._local_done(stream_id, stream)

    def _local_done(self, stream_id: int, stream: _Stream) -> None:
        stream.local_done = True
        if stream.remote_done:
            del self._streams[stream_id]
        else:  # §8.1: the response is complete, the rest of the request is not needed
            self._finishing.add(stream_id)

    def _finish_answered(self) -> None:
        """RST_STREAM NO_ERROR for answered streams whose request is still open, once sent."""
        for stream_id in list(self._finishing):
            if not self._backend.pending_bytes(stream_id):
                self._finishing.discard(stream_id)
                self._streams.pop(stream_id, None)
                self._reset(stream_id, ErrorCode.NO_ERROR)

    def reset(self, stream_id: int, code: int = ErrorCode.INTERNAL_ERROR) -> None:
        """Abort one stream (the app failed after its head went out); others go on."""
        if self._streams.pop(stream_id, None) is not None and not self.failed:
            self._reset(stream_id, code)

    def ack_consumed(self, stream_id: int, n: int) -> None:
        """The app used ``n`` body bytes of this stream: give the client that window back."""
        if n > 0 and not self.failed:
            self._backend.ack_consumed(stream_id, n)

    def send_window(self, stream_id: int) -> int:
        """Bytes the peer's windows (stream and connection) let us send on this stream now."""
        return 0 if self.failed else self._backend.send_window(stream_id)

    def pending_bytes(self, stream_id: int) -> int:
        """Body bytes handed to ``send_data`` that still wait for the peer's window."""
        return 0 if self.failed else self._backend.pending_bytes(stream_id)

    def close(self, code: int = ErrorCode.NO_ERROR) -> None:
        """GOAWAY: streams up to ``last_stream_id`` finish, newer ones are refused (drain)."""
        if not self.closing:
            self.closing = True
            self._backend.goaway(code, self.last_stream_id)
