"""HTTP/2 backend on python-hyper's ``h2``: pure Python, the fallback where ngh2 has no wheel.

About 30x slower than libnghttp2 per request (bench/h2_sansio_libs.py) but mature and
everywhere. h2 treats most stream errors as connection errors (RFC 9113 §5.4.1 allows it)
and writes its own GOAWAY before raising. It refuses a DATA frame larger than the peer's
window, so the bytes the window cannot take yet wait here, per stream, in order.
"""

from __future__ import annotations

from collections import deque

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

from hybridserve.sansio.events import Headers
from hybridserve.sansio.h2backend import (
    BackendError,
    BackendEvent,
    ControlFrame,
    H2Settings,
    RawEnd,
    RawHeaders,
    announce_streams,
    goaway_frame,
)
from hybridserve.sansio.h2events import (
    ConnectionEnded,
    ErrorCode,
    StreamData,
    StreamReset,
    WindowOpened,
)

_PING = ControlFrame("ping")
_SETTINGS = ControlFrame("settings")
_MAX_CONCURRENT = h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS


class HyperBackend:
    """One server-side h2 connection, with per-stream send queues for flow control."""

    checks_fields = False  # its checks would close the connection: http2.py does them

    def __init__(self, settings: H2Settings) -> None:
        # http2.py checks the fields itself, as stream errors; h2 would close the connection
        config = h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_inbound_headers=False
        )
        self._conn = h2.connection.H2Connection(config=config)
        self._conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                _MAX_CONCURRENT: settings.hard_concurrent_streams,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: settings.initial_window_size,
                h2.settings.SettingCodes.MAX_FRAME_SIZE: settings.max_frame_size,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: settings.max_header_list_bytes,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            },
        )
        self._conn.initiate_connection()
        extra = settings.connection_window_bytes - 65_535
        if extra > 0:
            self._conn.increment_flow_control_window(extra)
        self._hard_header_bytes = settings.hard_header_list_bytes
        self._conn.decoder.max_header_list_size = self._hard_header_bytes
        self._queued: dict[int, deque[tuple[bytes, bool]]] = {}
        self._out = announce_streams(self._conn.data_to_send(), settings.max_concurrent_streams)
        self._trailers: dict[int, Headers] = {}

    def receive(self, data: bytes) -> list[BackendEvent]:
        try:
            raw = self._conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            code = _code_for(exc)
            if code == exc.error_code:
                raise BackendError(str(exc), code, goaway_sent=True) from exc
            self._out = _without_goaway(self._conn.data_to_send())  # ours has the right code
            raise BackendError(str(exc), code) from exc
        finally:  # h2 lowers it to the announced size once the client acks our SETTINGS
            self._conn.decoder.max_header_list_size = self._hard_header_bytes
        events: list[BackendEvent] = []
        ended: set[int] = set()  # streams whose END_STREAM rode on an event already mapped
        for event in raw:
            self._translate(event, events, ended)
        return events

    def _translate(
        self, event: h2.events.Event, events: list[BackendEvent], ended: set[int]
    ) -> None:
        if isinstance(event, h2.events.RequestReceived):
            end = event.stream_ended is not None
            if end:
                ended.add(event.stream_id)
            events.append(RawHeaders(event.stream_id, _headers(event.headers), end))
        elif isinstance(event, h2.events.DataReceived):
            end = event.stream_ended is not None
            if end:
                ended.add(event.stream_id)
            padding = event.flow_controlled_length - len(event.data)
            if padding:
                self._conn.acknowledge_received_data(padding, event.stream_id)
            events.append(StreamData(event.stream_id, event.data, end))
        elif isinstance(event, h2.events.TrailersReceived):
            ended.add(event.stream_id)
            events.append(RawHeaders(event.stream_id, _headers(event.headers), True, trailers=True))
        elif isinstance(event, h2.events.StreamEnded):
            if event.stream_id not in ended:
                events.append(RawEnd(event.stream_id))
        elif isinstance(event, h2.events.StreamReset):
            self._drop(event.stream_id)
            remote = event.remote_reset
            events.append(StreamReset(event.stream_id, event.error_code or 0, remote=remote))
        elif isinstance(event, h2.events.WindowUpdated):
            self._flush()
            events.append(WindowOpened(event.stream_id or 0))
        elif isinstance(event, h2.events.PingReceived):
            events.append(_PING)
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self._flush()
            events.append(_SETTINGS)
            events.append(WindowOpened(0))
        elif isinstance(event, h2.events.ConnectionTerminated):
            code, last = event.error_code or 0, event.last_stream_id or 0
            events.append(ConnectionEnded(code, last, remote=True))

    def data_to_send(self) -> bytes:
        if self._out:
            out, self._out = self._out + self._conn.data_to_send(), b""
            return out
        return self._conn.data_to_send()

    def send_head(self, stream_id: int, headers: Headers, end_stream: bool) -> None:
        self._conn.send_headers(stream_id, headers, end_stream=end_stream)

    def send_informational(self, stream_id: int, headers: Headers) -> None:
        self._conn.send_headers(stream_id, headers)

    def send_data(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        self._queued.setdefault(stream_id, deque()).append((data, end_stream))
        self._flush_stream(stream_id)

    def send_trailers(self, stream_id: int, headers: Headers) -> None:
        if self._queued.get(stream_id):
            self._trailers[stream_id] = headers  # after the body the window still holds
        else:
            self._conn.send_headers(stream_id, headers, end_stream=True)

    def reset(self, stream_id: int, code: int) -> None:
        self._drop(stream_id)
        try:
            self._conn.reset_stream(stream_id, code)
        except h2.exceptions.StreamClosedError:
            pass  # closed meanwhile: nothing left to reset

    def ack_consumed(self, stream_id: int, n: int) -> None:
        try:
            self._conn.acknowledge_received_data(n, stream_id)
        except h2.exceptions.StreamClosedError:
            pass  # h2 credits the connection window before it looks for the stream

    def send_window(self, stream_id: int) -> int:
        try:
            return self._conn.local_flow_control_window(stream_id)
        except (h2.exceptions.StreamClosedError, h2.exceptions.NoSuchStreamError):
            return 0

    def pending_bytes(self, stream_id: int) -> int:
        return sum(len(data) for data, _ in self._queued.get(stream_id, ()))

    def goaway(self, code: int, last_stream_id: int) -> None:
        if code:
            self._conn.close_connection(code, last_stream_id=last_stream_id)
        else:  # h2 would take no more frames: the open streams must still finish (§6.8)
            self._out += self._conn.data_to_send() + goaway_frame(last_stream_id, code)

    def _drop(self, stream_id: int) -> None:
        self._queued.pop(stream_id, None)
        self._trailers.pop(stream_id, None)

    def _flush(self) -> None:
        for stream_id in list(self._queued):
            self._flush_stream(stream_id)

    def _flush_stream(self, stream_id: int) -> None:
        """Send what the windows allow, frame by frame; keep the rest queued in order."""
        queue = self._queued[stream_id]
        while queue:
            data, end = queue[0]
            room = min(self.send_window(stream_id), self._conn.max_outbound_frame_size)
            if room <= 0 and data:
                return
            chunk, rest = data[:room], data[room:]
            self._conn.send_data(stream_id, chunk, end_stream=end and not rest)
            if rest:
                queue[0] = (rest, end)
            else:
                queue.popleft()
        del self._queued[stream_id]
        trailers = self._trailers.pop(stream_id, None)
        if trailers is not None:
            self._conn.send_headers(stream_id, trailers, end_stream=True)


def _headers(raw: list[tuple[bytes, bytes]] | list[tuple[str, str]]) -> Headers:
    return [(bytes(name), bytes(value)) for name, value in raw]  # type: ignore[arg-type]  # header_encoding=None gives bytes


def _code_for(exc: h2.exceptions.ProtocolError) -> int:
    """The RFC's code where h2's differs: HPACK errors are COMPRESSION_ERROR (RFC 9113 §4.3)."""
    message = f"{exc} {exc.__cause__}".lower()
    if "too many continuation" in message:
        return ErrorCode.ENHANCE_YOUR_CALM
    if "decoding header block" in message:
        return ErrorCode.COMPRESSION_ERROR
    if "ack frame must not have payload" in message:  # RFC 9113 §6.5
        return ErrorCode.FRAME_SIZE_ERROR
    return int(exc.error_code)


_GOAWAY_BYTES = 17  # h2 writes its GOAWAY with no debug data: 9 bytes of header, 8 of payload


def _without_goaway(out: bytes) -> bytes:
    """The bytes h2 queued, less the GOAWAY it ended them with."""
    tail = out[-_GOAWAY_BYTES:]
    if len(tail) == _GOAWAY_BYTES and tail[:5] == b"\x00\x00\x08\x07\x00":
        return out[:-_GOAWAY_BYTES]
    return out
