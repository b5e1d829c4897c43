"""Events an HTTP/2 connection produces, one stream at a time, in our own types.

The HTTP/2 library behind ``h2backend.py`` stays an implementation detail: the worker sees
only these, and a request head arrives as the same ``Request`` an HTTP/1.1 connection gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from hybridserve.sansio.events import Headers, Request


class ErrorCode(IntEnum):
    """RFC 9113 §7 error codes, carried by RST_STREAM and GOAWAY."""

    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    SETTINGS_TIMEOUT = 0x4
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    CONNECT_ERROR = 0xA
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC
    HTTP_1_1_REQUIRED = 0xD


@dataclass(slots=True)
class StreamRequest:
    """A valid request head on a stream; ``end_stream`` means no body follows.

    ``request.headers`` carries ``host`` (from ``:authority`` when the client sent no Host)
    and one joined ``cookie`` field; pseudo-headers are gone, ``scheme`` keeps ``:scheme``.
    """

    stream_id: int
    request: Request
    scheme: bytes
    end_stream: bool


@dataclass(slots=True)
class StreamData:
    """Body bytes on a stream. Call ``ack_consumed(stream_id, len(data))`` once used.

    ``end_stream`` is for the backends' use; the connection always follows the last body
    bytes with one ``StreamEnded``.
    """

    stream_id: int
    data: bytes
    end_stream: bool = False


@dataclass(slots=True)
class StreamEnded:
    """The client finished the request body; ``trailers`` are validated (no pseudo-headers)."""

    stream_id: int
    trailers: Headers = field(default_factory=list)


@dataclass(slots=True)
class StreamReset:
    """The stream is gone: the client sent RST_STREAM, or we reset it for its error.

    Either way its app sees a disconnect; ``remote`` tells who reset it.
    """

    stream_id: int
    error_code: int
    remote: bool


@dataclass(slots=True)
class WindowOpened:
    """The peer gave send credit; ``stream_id`` 0 means the whole connection (wake every writer)."""

    stream_id: int


@dataclass(slots=True)
class ConnectionEnded:
    """GOAWAY went out (our error) or came in (peer's); no new streams, close when idle.

    ``last_stream_id`` is the highest stream that may still complete.
    """

    error_code: int
    last_stream_id: int
    remote: bool
    reason: str = ""


@dataclass(slots=True)
class StreamRefused:
    """A request the connection answered or reset itself: no app ever sees it.

    ``status`` is the one sent (431, 413), or 0 when the answer was RST_STREAM with
    ``error_code``; ``request`` holds what could be read of the head, for the access log.
    """

    stream_id: int
    request: Request
    status: int
    error_code: int = ErrorCode.NO_ERROR


H2Event = (
    StreamRequest
    | StreamData
    | StreamEnded
    | StreamReset
    | StreamRefused
    | WindowOpened
    | ConnectionEnded
)

RESET_CODES = len(ErrorCode) + 1  # RFC 9113's codes, then one for any other


def code_name(code: int) -> str:
    """The RFC 9113 name of an error code, or OTHER for one it does not list."""
    return ErrorCode(code).name if 0 <= code < len(ErrorCode) else "OTHER"


class ResetCounts:
    """RST_STREAM frames on a worker's HTTP/2 connections, by error code (the last index
    for codes RFC 9113 does not list): ``sent`` by the server, ``received`` from clients.

    One per worker, given to each connection, which counts where the frame is made or read.
    """

    __slots__ = ("received", "sent")

    def __init__(self) -> None:
        self.sent = [0] * RESET_CODES
        self.received = [0] * RESET_CODES

    def count(self, code: int, *, remote: bool) -> None:
        index = code if 0 <= code < len(ErrorCode) else RESET_CODES - 1
        (self.received if remote else self.sent)[index] += 1
