"""HTTP/2 backend on ngh2: libnghttp2 (the C engine of curl and Apache httpd) behind a sans-IO API.

libnghttp2 checks frames, stream states, HPACK and most HTTP rules itself; its own limits
(CONTINUATION count, decoded header list size, queued PING/SETTINGS acks, reset rate) turn
into ``BackendError``. Window updates are ours to send (``auto_window_update=False``): the
stream's window reopens only as the app consumes, so a slow app holds a bounded body.

Frames are pulled out of the library after every input, because libnghttp2 reports a stream
it reset (bad content-length, say) only once its RST_STREAM has been serialized.
"""

from __future__ import annotations

import ngh2

from hybridserve.sansio.events import Headers
from hybridserve.sansio.h2backend import (
    BackendError,
    BackendEvent,
    ControlFrame,
    H2Settings,
    RawHeaders,
    announce_streams,
)
from hybridserve.sansio.h2events import (
    ConnectionEnded,
    ErrorCode,
    StreamData,
    StreamReset,
    WindowOpened,
)

_UNLIMITED = 1 << 32
_PING = ControlFrame("ping")
_SETTINGS = ControlFrame("settings")


class Ngh2Backend:
    """One server-side libnghttp2 session."""

    checks_fields = True  # libnghttp2 applies RFC 9113 §8.2 to every field it decodes

    def __init__(self, settings: H2Settings) -> None:
        config = ngh2.Configuration(
            auto_window_update=False,
            max_continuations=settings.max_continuations,
            max_inbound_header_list_size=settings.hard_header_list_bytes,
            peer_max_concurrent_streams=settings.max_concurrent_streams,
            # our FloodGuard counts resets; libnghttp2's own limit answers INTERNAL_ERROR
            stream_reset_rate_limit=(_UNLIMITED, _UNLIMITED),
        )
        self._conn = ngh2.Connection(ngh2.Role.SERVER, config)
        self._conn.initiate_connection(
            {
                ngh2.Setting.MAX_CONCURRENT_STREAMS: settings.hard_concurrent_streams,
                ngh2.Setting.INITIAL_WINDOW_SIZE: settings.initial_window_size,
                ngh2.Setting.MAX_FRAME_SIZE: settings.max_frame_size,
                ngh2.Setting.MAX_HEADER_LIST_SIZE: settings.max_header_list_bytes,
                ngh2.Setting.ENABLE_PUSH: 0,
            }
        )
        extra = settings.connection_window_bytes - 65_535
        if extra > 0:
            self._conn.set_local_window_size(settings.connection_window_bytes)
        first = self._conn.data_to_send()
        self._out = bytearray(announce_streams(first, settings.max_concurrent_streams))
        self._reset_remote: set[int] = set()

    def receive(self, data: bytes) -> list[BackendEvent]:
        try:
            self._conn.receive_data(data)
            events = self._translate(self._conn.events())
            self._out += self._conn.data_to_send()
            events += self._translate(self._conn.events())
        except ngh2.DenialOfServiceError as exc:
            raise BackendError(str(exc), ErrorCode.ENHANCE_YOUR_CALM) from exc
        except ngh2.NGH2Error as exc:
            raise BackendError(str(exc), _code_for(str(exc))) from exc
        return events

    def _translate(self, raw: list[ngh2.Event]) -> list[BackendEvent]:
        events: list[BackendEvent] = []
        add = events.append
        for event in raw:
            if type(event) is ngh2.RequestReceived:
                add(RawHeaders(event.stream_id, list(event.headers), event.end_stream))
            elif type(event) is ngh2.DataReceived:
                add(StreamData(event.stream_id, event.data, event.end_stream))
            elif type(event) is ngh2.TrailersReceived:
                add(RawHeaders(event.stream_id, list(event.headers), True, trailers=True))
            elif type(event) is ngh2.StreamReset:
                self._reset_remote.add(event.stream_id)
                add(StreamReset(event.stream_id, event.error_code, remote=True))
            elif type(event) is ngh2.StreamClosed:
                if event.stream_id in self._reset_remote:
                    self._reset_remote.discard(event.stream_id)
                elif event.error_code != ErrorCode.NO_ERROR:  # the library reset it
                    add(StreamReset(event.stream_id, event.error_code, remote=False))
            elif type(event) is ngh2.WindowUpdated:
                add(WindowOpened(event.stream_id))
            elif type(event) is ngh2.PingReceived:
                add(_PING)
            elif type(event) is ngh2.SettingsReceived:
                add(_SETTINGS)
                if ngh2.Setting.INITIAL_WINDOW_SIZE in event.settings:
                    add(WindowOpened(0))
            elif type(event) is ngh2.GoAwayReceived:
                add(ConnectionEnded(event.error_code, event.last_stream_id, remote=True))
            elif type(event) is ngh2.ConnectionClosed:  # the library sent GOAWAY, or all is done
                reason = event.debug_data.decode("ascii", "replace")
                add(ConnectionEnded(event.error_code, 0, remote=False, reason=reason))
        return events

    def data_to_send(self) -> bytes:
        try:
            self._out += self._conn.data_to_send()
        except ngh2.NGH2Error:
            pass  # the session died on a fatal input; http2.py writes the GOAWAY
        out = bytes(self._out)
        self._out.clear()
        return out

    def send_head(self, stream_id: int, headers: Headers, end_stream: bool) -> None:
        self._conn.send_response(stream_id, headers, end_stream=end_stream)

    def send_informational(self, stream_id: int, headers: Headers) -> None:
        self._conn.send_informational_response(stream_id, headers)

    def send_data(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        self._conn.send_data(stream_id, data, end_stream=end_stream)

    def send_trailers(self, stream_id: int, headers: Headers) -> None:
        self._conn.send_trailers(stream_id, headers)

    def reset(self, stream_id: int, code: int) -> None:
        self._reset_remote.add(stream_id)  # we know: its close is no news
        try:
            self._conn.reset_stream(stream_id, code)
        except ngh2.NGH2Error:
            self._reset_remote.discard(stream_id)  # already closed

    def ack_consumed(self, stream_id: int, n: int) -> None:
        try:
            self._conn.acknowledge_received_data(n, stream_id)
        except (ValueError, ngh2.NGH2Error):
            pass  # the stream closed meanwhile: libnghttp2 credited the connection itself

    def send_window(self, stream_id: int) -> int:
        try:
            stream = self._conn.stream_remote_window_size(stream_id)
        except ngh2.NGH2Error:
            return 0
        return min(stream, self._conn.remote_window_size)

    def pending_bytes(self, stream_id: int) -> int:
        try:
            return self._conn.queued_body_size(stream_id)
        except ngh2.NGH2Error:
            return 0

    def goaway(self, code: int, last_stream_id: int) -> None:
        try:
            self._conn.send_goaway(code, last_stream_id=last_stream_id)
        except ngh2.NGH2Error:
            pass  # a dead or closing session: http2.py writes the frame


def _code_for(message: str) -> int:
    """The GOAWAY code for a libnghttp2 error message (ngh2 has one exception class for all)."""
    lowered = message.lower()
    if "flow control" in lowered or "window" in lowered:
        return ErrorCode.FLOW_CONTROL_ERROR
    if "frame size" in lowered or "too large" in lowered:
        return ErrorCode.FRAME_SIZE_ERROR
    if "header compression" in lowered or "hpack" in lowered:
        return ErrorCode.COMPRESSION_ERROR
    if "stream closed" in lowered:
        return ErrorCode.STREAM_CLOSED
    return ErrorCode.PROTOCOL_ERROR
