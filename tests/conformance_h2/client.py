"""A raw HTTP/2 test client: frames built with hyperframe/hpack, sent through a ``Driver``.

A driver is where the server lives: in-process (``sansio_driver.py``) or over a socket. The
client only sends bytes and reads frames, so every case runs the same against both. Reads
never guess with sleeps: ``sync()`` sends a PING and everything before its ACK is all the
server had to say.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from hpack import Decoder, Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
Fields = list[tuple[bytes, bytes]]

PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
STREAM_CLOSED = 0x5
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9
ENHANCE_YOUR_CALM = 0xB


class Driver(Protocol):
    """One connection to the server under test."""

    def send(self, data: bytes) -> None: ...
    def read(self) -> bytes:
        """What the server wrote since the last read; b"" when it has nothing more (for now)."""
        ...

    def closed(self) -> bool:
        """Whether the server has closed the connection (after a connection error)."""
        ...


class CaseFailed(AssertionError):
    """The server's answer is not what the case's RFC section asks for."""


@dataclass
class Response:
    status: int
    headers: Fields
    body: bytes = b""
    trailers: Fields = field(default_factory=list)
    ended: bool = False

    def header(self, name: bytes) -> bytes | None:
        return next((v for n, v in self.headers if n == name), None)


def frame_bytes(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    """Any frame, well-formed or not, from its parts (RFC 9113 §4.1)."""
    head = len(payload).to_bytes(3, "big") + bytes((kind, flags))
    return head + stream_id.to_bytes(4, "big") + payload


def raw_headers(stream_id: int, block: bytes, flags: int = 0x5) -> bytes:
    """A HEADERS frame around a hand-made header block (END_STREAM|END_HEADERS by default)."""
    return frame_bytes(0x1, flags, stream_id, block)


def request_fields(
    method: bytes = b"GET",
    path: bytes = b"/",
    authority: bytes = b"test",
    extra: Fields | None = None,
) -> Fields:
    fields = [(b":method", method), (b":scheme", b"http"), (b":authority", authority)]
    return [*fields, (b":path", path), *(extra or [])]


class H2Client:
    """Builds frames, keeps the HPACK state of both directions, reads and checks answers."""

    def __init__(self, driver: Driver, escalation_ok: bool = False) -> None:
        self.driver = driver
        # a server may answer a stream error with GOAWAY (§5.4.1); only the pure-Python
        # fallback backend is allowed to, the main one must keep the connection
        self.escalation_ok = escalation_ok
        self.escalated = False
        self.encoder = Encoder()
        self.decoder = Decoder()
        self.frames: deque[Frame] = deque()
        self._buffer = b""
        self._pings = itertools.count(1)
        self._max_stream_id = 0
        self.server_settings: dict[int, int] = {}

    # -- sending ----------------------------------------------------------------------

    def send(self, *parts: bytes | Frame) -> None:
        self.driver.send(b"".join(p if isinstance(p, bytes) else p.serialize() for p in parts))

    def handshake(self, settings: dict[int, int] | None = None) -> None:
        """Preface and SETTINGS, then the server's SETTINGS read and acknowledged."""
        self.send(PREFACE, SettingsFrame(0, settings=settings or {}))
        first = self.read_frame()
        if not isinstance(first, SettingsFrame) or "ACK" in first.flags:
            raise CaseFailed(f"RFC 9113 §3.4: server preface must be SETTINGS, got {first}")
        self.server_settings = dict(first.settings)
        self.send(SettingsFrame(0, flags=["ACK"]))

    def block(self, fields: Fields) -> bytes:
        return bytes(self.encoder.encode(fields))

    def headers(
        self, stream_id: int, fields: Fields, end_stream: bool = True, end_headers: bool = True
    ) -> HeadersFrame:
        flags = (["END_STREAM"] if end_stream else []) + (["END_HEADERS"] if end_headers else [])
        self._max_stream_id = max(self._max_stream_id, stream_id)
        return HeadersFrame(stream_id, self.block(fields), flags=flags)

    def send_block(self, stream_id: int, block: bytes, end_stream: bool = True) -> None:
        """A header block in HEADERS plus as many CONTINUATION frames as 16 KiB frames need."""
        size = 16384
        parts = [block[at : at + size] for at in range(0, len(block), size)] or [b""]
        frames = []
        for i, part in enumerate(parts):
            flags = 0x4 if i == len(parts) - 1 else 0
            if i == 0:
                frames.append(frame_bytes(0x1, flags | (0x1 if end_stream else 0), stream_id, part))
            else:
                frames.append(frame_bytes(0x9, flags, stream_id, part))
        self._max_stream_id = max(self._max_stream_id, stream_id)
        self.send(*frames)

    def request(
        self, stream_id: int, fields: Fields | None = None, body: bytes | None = None
    ) -> None:
        """A whole request: HEADERS, then one DATA with END_STREAM when there is a body."""
        fields = fields if fields is not None else request_fields()
        frame = self.headers(stream_id, fields, end_stream=body is None)
        if body is None:
            self.send(frame)
        else:
            self.send(frame, DataFrame(stream_id, body, flags=["END_STREAM"]))

    # -- reading ----------------------------------------------------------------------

    def _fill(self) -> bool:
        data = self.driver.read()
        if not data:
            return False
        self._buffer += data
        while len(self._buffer) >= 9:
            length = int.from_bytes(self._buffer[:3], "big")
            if len(self._buffer) < 9 + length:
                break
            frame, _ = Frame.parse_frame_header(memoryview(self._buffer[:9]))
            frame.parse_body(memoryview(self._buffer[9 : 9 + length]))
            self._buffer = self._buffer[9 + length :]
            self.frames.append(frame)
        return True

    def read_frame(self) -> Frame | None:
        """The next frame from the server; None once it has closed or gone quiet."""
        while not self.frames:
            if not self._fill():
                return None
        return self.frames.popleft()

    def sync(self) -> list[Frame]:
        """Every frame the server sends before answering two PINGs of ours, one after the
        other: a PING read together with earlier frames may be answered before the server's
        reaction to them (an ACK is urgent, DATA is not); the second one cannot be."""
        seen: list[Frame] = []
        for _ in range(2):
            payload = next(self._pings).to_bytes(8, "big")
            self.send(PingFrame(0, opaque_data=payload))
            while (frame := self.read_frame()) is not None:
                ack = isinstance(frame, PingFrame) and "ACK" in frame.flags
                if ack and frame.opaque_data == payload:  # type: ignore[attr-defined]  # a PING
                    break
                seen.append(frame)
            else:
                return seen
        return seen

    def head_then_sync(self, stream_id: int) -> list[Frame]:
        """Frames up to the response head on ``stream_id`` (an app may take its time),
        then every frame sent before our PING's answer."""
        seen: list[Frame] = []
        while (frame := self.read_frame()) is not None:
            seen.append(frame)
            if isinstance(frame, HeadersFrame) and frame.stream_id == stream_id:
                return seen + self.sync()
        raise CaseFailed(f"no response head on stream {stream_id}")

    def _decode(self, frame: HeadersFrame, response: Response | None) -> Response:
        block = bytes(frame.data)
        while "END_HEADERS" not in frame.flags:
            nxt = self.read_frame()
            if not isinstance(nxt, ContinuationFrame):
                raise CaseFailed("server broke a header block")
            block += bytes(nxt.data)
            for flag in nxt.flags:
                frame.flags.add(flag)
        fields = [(bytes(n), bytes(v)) for n, v in self.decoder.decode(block, raw=True)]
        if response is None:
            status = int(dict(fields).get(b":status", b"0"))
            response = Response(status, fields)
        else:
            response.trailers = fields
        response.ended = "END_STREAM" in frame.flags
        return response

    def response(self, stream_id: int, others: dict[int, Response] | None = None) -> Response:
        """Read until stream ``stream_id`` has a complete response; other streams' go to others."""
        got: dict[int, Response] = {} if others is None else others
        while True:
            frame = self.read_frame()
            if frame is None:
                raise CaseFailed(f"connection closed before the response on stream {stream_id}")
            sid = frame.stream_id
            if isinstance(frame, HeadersFrame):
                got[sid] = self._decode(frame, got.get(sid))
            elif isinstance(frame, DataFrame):
                if sid not in got:
                    raise CaseFailed(f"DATA before HEADERS on stream {sid}")
                got[sid].body += bytes(frame.data)
                got[sid].ended = "END_STREAM" in frame.flags
                if frame.data:
                    self.send(WindowUpdateFrame(0, window_increment=len(frame.data)))
                    if not got[sid].ended:
                        self.send(WindowUpdateFrame(sid, window_increment=len(frame.data)))
            elif isinstance(frame, RstStreamFrame) and sid == stream_id and sid not in got:
                raise CaseFailed(f"stream {sid} reset ({frame.error_code}) instead of answered")
            elif isinstance(frame, GoAwayFrame):
                raise CaseFailed(f"GOAWAY ({frame.error_code}) instead of a response")
            elif isinstance(frame, PingFrame) and "ACK" not in frame.flags:
                self.send(PingFrame(0, flags=["ACK"], opaque_data=frame.opaque_data))
            if stream_id in got and got[stream_id].ended:
                return got[stream_id]

    def goaway(self, *codes: int) -> GoAwayFrame:
        """A connection error (RFC 9113 §5.4.1): GOAWAY with one of ``codes``, then close."""
        while (frame := self.read_frame()) is not None:
            if isinstance(frame, GoAwayFrame):
                if frame.error_code not in codes:
                    raise CaseFailed(f"GOAWAY code {frame.error_code}, expected one of {codes}")
                return frame
        raise CaseFailed(f"no GOAWAY (expected codes {codes}); the server closed silently")

    def stream_error(self, stream_id: int, *codes: int, connection_ok: bool = False) -> Frame:
        """RST_STREAM with one of ``codes``.

        GOAWAY with one counts too where ``connection_ok`` says so: a frame-layer error of a
        broken client, which libnghttp2 treats as a connection error (RFC 9113 §5.4.1 allows
        it); an HTTP-level error must leave the other streams alone.
        """
        escalate = connection_ok or self.escalation_ok
        while (frame := self.read_frame()) is not None:
            if isinstance(frame, GoAwayFrame) and frame.error_code in codes and escalate:
                self.escalated = True
                return frame
            if isinstance(frame, RstStreamFrame) and frame.stream_id == stream_id:
                if frame.error_code not in codes:
                    raise CaseFailed(f"RST_STREAM code {frame.error_code}, expected {codes}")
                return frame
            if isinstance(frame, HeadersFrame) and frame.stream_id == stream_id:
                raise CaseFailed(f"stream {stream_id} was answered, expected a stream error")
            if isinstance(frame, GoAwayFrame):
                raise CaseFailed(f"GOAWAY code {frame.error_code}, expected one of {codes}")
        raise CaseFailed(f"no RST_STREAM on stream {stream_id} (expected codes {codes})")

    def alive(self) -> None:
        """The connection still serves: a new request on a fresh stream is answered."""
        if self.escalated:
            return  # the stream error was (allowed to be) a connection error
        sid = self.next_stream_id()
        self.request(sid)
        if self.response(sid).status != 200:
            raise CaseFailed("the connection stopped serving")

    def next_stream_id(self) -> int:
        """The next odd stream id above every one this client used."""
        return (self._max_stream_id | 1) + 2 if self._max_stream_id else 1


__all__ = [
    "ContinuationFrame",
    "DataFrame",
    "GoAwayFrame",
    "HeadersFrame",
    "PingFrame",
    "RstStreamFrame",
    "SettingsFrame",
    "WindowUpdateFrame",
]
