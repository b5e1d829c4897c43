"""The seam between our HTTP/2 connection and an HTTP/2 library.

A backend frames, decodes HPACK, tracks stream states and flow-control windows, and turns
the library's events into the few below; ``http2.py`` does the rest (HTTP semantics, limits,
attack counters) the same way for every backend. Two backends exist, chosen by measurement
(bench/h2_sansio_libs.py): ``ngh2`` (libnghttp2 in C, about 30x the speed) and python-hyper's
``h2`` (pure Python), the fallback where ngh2 has no wheel.

A backend raises ``BackendError`` for a connection error; the connection may then be
unusable, so ``http2.py`` writes the GOAWAY itself.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Protocol

from hybridserve.sansio.events import Headers
from hybridserve.sansio.h2events import (
    ConnectionEnded,
    ErrorCode,
    StreamData,
    StreamReset,
    WindowOpened,
)

BACKENDS = ("ngh2", "h2")


@dataclass(frozen=True, slots=True, kw_only=True)
class H2Settings:
    """What we announce in SETTINGS, and the hard limits the library itself enforces."""

    max_concurrent_streams: int = 100  # RFC 9113 §6.5.2 suggests no less than 100
    initial_window_size: int = 65_535  # per stream: bounds the body bytes buffered per stream
    connection_window_bytes: int = 1 << 20  # all streams together, before the app consumes
    max_frame_size: int = 16_384  # RFC 9113 default; larger frames only cost us memory
    max_header_list_bytes: int = 64 * 1024  # announced; over it the stream gets a 431
    max_continuations: int = 8  # a header block in more frames is a CONTINUATION flood

    @property
    def hard_header_list_bytes(self) -> int:
        """Decoded header bytes past which the library gives up (HPACK bomb): GOAWAY."""
        return 4 * self.max_header_list_bytes

    @property
    def hard_concurrent_streams(self) -> int:
        """Open streams past which the library gives up: GOAWAY. Below it, ``http2.py``
        refuses each stream over the announced limit itself, as the stream error RFC 9113
        §5.1.2 asks for (REFUSED_STREAM), and the worker logs and counts it; both libraries
        would make it a connection error, or refuse it unseen. (The library may count a
        few more than we do: those answered 431 or 413 whose frames are not out yet.)"""
        return max(2 * self.max_concurrent_streams, self.max_concurrent_streams + 100)


def announce_streams(out: bytes, streams: int) -> bytes:
    """The library's first bytes, its SETTINGS_MAX_CONCURRENT_STREAMS (0x3) made ``streams``:
    the library is given ``hard_concurrent_streams``, the client is told the real limit."""
    at = 0
    while at + 9 <= len(out):
        length = int.from_bytes(out[at : at + 3], "big")
        if out[at + 3] == 0x4:  # SETTINGS: six-byte entries, identifier then value
            for entry in range(at + 9, at + 9 + length - 5, 6):
                if out[entry : entry + 2] == b"\x00\x03":
                    return out[: entry + 2] + streams.to_bytes(4, "big") + out[entry + 6 :]
        at += 9 + length
    return out


class BackendError(Exception):
    """A connection error found by the library: GOAWAY with ``code`` (queued already, or not)."""

    def __init__(
        self, reason: str, code: int = ErrorCode.PROTOCOL_ERROR, *, goaway_sent: bool = False
    ) -> None:
        super().__init__(reason)
        self.code = code
        self.goaway_sent = goaway_sent


@dataclass(slots=True)
class RawHeaders:
    """A decoded header block as the library validated it: a request head or trailers."""

    stream_id: int
    headers: Headers
    end_stream: bool
    trailers: bool = False


@dataclass(slots=True)
class RawEnd:
    """The client's END_STREAM, when it came without DATA or trailers."""

    stream_id: int


@dataclass(slots=True)
class ControlFrame:
    """A PING or SETTINGS frame was received (counted against floods, answered by the library)."""

    kind: str  # "ping" | "settings"


BackendEvent = (
    RawHeaders | RawEnd | StreamData | StreamReset | WindowOpened | ConnectionEnded | ControlFrame
)


class H2Backend(Protocol):
    """One HTTP/2 connection inside a library, server side."""

    checks_fields: bool  # refuses bad names/values and hop-by-hop fields itself (§8.2)

    def receive(self, data: bytes) -> list[BackendEvent]: ...
    def data_to_send(self) -> bytes: ...
    def send_head(self, stream_id: int, headers: Headers, end_stream: bool) -> None: ...
    def send_informational(self, stream_id: int, headers: Headers) -> None: ...
    def send_data(self, stream_id: int, data: bytes, end_stream: bool) -> None: ...
    def send_trailers(self, stream_id: int, headers: Headers) -> None: ...
    def reset(self, stream_id: int, code: int) -> None: ...
    def ack_consumed(self, stream_id: int, n: int) -> None: ...
    def send_window(self, stream_id: int) -> int: ...
    def pending_bytes(self, stream_id: int) -> int: ...
    def goaway(self, code: int, last_stream_id: int) -> None: ...


def goaway_frame(last_stream_id: int, code: int, debug: bytes = b"") -> bytes:
    """A GOAWAY frame (RFC 9113 §6.8) as bytes, for when a library will not write one."""
    payload = last_stream_id.to_bytes(4, "big") + code.to_bytes(4, "big") + debug
    return len(payload).to_bytes(3, "big") + b"\x07\x00\x00\x00\x00\x00" + payload


def available_backends() -> list[str]:
    """The backends whose library is installed, fastest first."""
    return [name for name in BACKENDS if importlib.util.find_spec(name) is not None]


def make_backend(name: str, settings: H2Settings) -> H2Backend:
    """Build the named backend; "auto" takes the fastest installed one."""
    if name == "auto":
        installed = available_backends()
        if not installed:
            raise ImportError("no HTTP/2 library installed (pip install ngh2, or h2)")
        name = installed[0]
    if name == "ngh2":
        from hybridserve.sansio.h2_ngh2 import Ngh2Backend

        return Ngh2Backend(settings)
    if name == "h2":
        from hybridserve.sansio.h2_hyper import HyperBackend

        return HyperBackend(settings)
    raise ValueError(f"unknown HTTP/2 backend {name!r}; expected auto, {', '.join(BACKENDS)}")
