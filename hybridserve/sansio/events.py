"""Events a ServerConnection produces from the bytes a client sent.

They are our own types, so the parser backends (h11, httptools) stay an implementation
detail of ``connection.py``: apps and the worker never see a backend's objects.
"""

from __future__ import annotations

from dataclasses import dataclass

Headers = list[tuple[bytes, bytes]]


@dataclass(slots=True)
class Request:
    """A complete request head. Header names are lower-cased; values are as sent."""

    method: bytes
    target: bytes
    http_version: bytes
    headers: Headers
    keep_alive: bool
    expect_continue: bool = False
    upgrade: bytes | None = None
    accepts_trailers: bool = False  # sent "TE: trailers"


@dataclass(slots=True)
class Body:
    """Part of a request body, already de-chunked."""

    data: bytes


@dataclass(slots=True)
class EndOfRequest:
    """The request body is complete (trailers, if any, are dropped)."""


@dataclass(slots=True)
class ConnectionClosed:
    """The client closed its sending side."""


END_OF_REQUEST = EndOfRequest()
CONNECTION_CLOSED = ConnectionClosed()

Event = Request | Body | EndOfRequest | ConnectionClosed
