"""The conformance cases' server in-process: an Http2Connection and a small app, no sockets.

The app answers with tests/apps/h2_apps.py's ``answer``, as the live server's app does, so
a case reads the same either way; ``/hold`` never reads its body (its window stays shut).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hybridserve.config_groups import Limits
from hybridserve.sansio.events import Headers, Request
from hybridserve.sansio.h2backend import H2Settings
from hybridserve.sansio.h2events import (
    ConnectionEnded,
    H2Event,
    StreamData,
    StreamEnded,
    StreamRequest,
    StreamReset,
)
from hybridserve.sansio.h2guard import FloodLimits
from hybridserve.sansio.http2 import Http2Connection
from tests.apps.h2_apps import answer


@dataclass
class _Exchange:
    request: Request
    body: bytearray = field(default_factory=bytearray)


class SansioDriver:
    """Implements the client's ``Driver`` against Http2Connection; the clock is ours."""

    def __init__(
        self,
        backend: str,
        limits: Limits | None = None,
        settings: H2Settings | None = None,
        floods: FloodLimits | None = None,
    ) -> None:
        self.conn = Http2Connection(limits or Limits(), settings, floods, backend)
        self.exchanges: dict[int, _Exchange] = {}
        self.events: list[H2Event] = []
        self.now_s = 0.0
        self._out = bytearray(self.conn.data_to_send())

    def send(self, data: bytes) -> None:
        if self.conn.failed:
            return  # a closed socket: the bytes go nowhere
        self.now_s += 0.001
        for event in self.conn.receive(data, self.now_s):
            self.events.append(event)
            self._handle(event)
        self._out += self.conn.data_to_send()

    def read(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def closed(self) -> bool:
        return self.conn.failed or (self.conn.closing and not self.conn.open_streams)

    def _handle(self, event: H2Event) -> None:
        if isinstance(event, StreamRequest):
            self.exchanges[event.stream_id] = _Exchange(event.request)
            if event.request.target == b"/early":
                self._respond(event.stream_id, [])
        elif isinstance(event, StreamData):
            exchange = self.exchanges.get(event.stream_id)
            if exchange is not None and exchange.request.target != b"/hold":
                exchange.body += event.data
                self.conn.ack_consumed(event.stream_id, len(event.data))
        elif isinstance(event, StreamEnded):
            exchange = self.exchanges.get(event.stream_id)
            if exchange is not None and exchange.request.target not in (b"/hold", b"/early"):
                self._respond(event.stream_id, event.trailers)
        elif isinstance(event, StreamReset | ConnectionEnded):
            pass  # recorded in self.events; the stream's app would see a disconnect

    def _respond(self, stream_id: int, trailers: Headers) -> None:
        exchange = self.exchanges[stream_id]
        request = exchange.request
        fields = request.headers
        headers, payload, end = answer(
            request.method, request.target, fields, bytes(exchange.body), trailers
        )
        self.conn.send_head(stream_id, 200, headers)
        self.conn.send_data(stream_id, payload, end_stream=not end)
        if end:
            self.conn.send_trailers(stream_id, end)
