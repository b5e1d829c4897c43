"""The seams between the worker and the app adapters, and the only home of ``Any``.

The worker implements ``Channel`` (one per connection, loop thread only); an adapter
implements ``Cycle`` (one per request). Adapters never see the transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from hybridserve.sansio.conditional import Piece
from hybridserve.sansio.events import Headers, Request

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

Environ = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], None]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

App = ASGIApp | WSGIApp
Address = tuple[str, int] | None


@dataclass(frozen=True, slots=True)
class TLSInfo:
    """What the TLS layer knows of a connection, for the ASGI ``tls`` extension and the
    mod_ssl-style ``SSL_*`` WSGI variables. Only a connection we decrypted has one."""

    version: int | None  # 0x0303 for TLS 1.2, 0x0304 for TLS 1.3
    protocol: str  # the same as OpenSSL names it: "TLSv1.3"
    cipher: str  # OpenSSL's name of the cipher suite
    cipher_suite: int | None  # its IANA number
    server_cert: str | None  # PEM
    client_cert_chain: tuple[str, ...]  # PEMs, the client's own first; empty without one
    client_cert_name: str | None  # its subject, RFC 4514


@dataclass(slots=True)
class FileBody:
    """A response body taken from an open file: whoever receives it must close ``fd``.

    ``pieces`` are literal bytes and ``(offset, count)`` ranges of the file, in order.
    """

    fd: int
    pieces: list[Piece]

    @property
    def length(self) -> int:
        return sum(len(p) if isinstance(p, bytes) else p[1] for p in self.pieces)


class Channel(Protocol):
    """What a request cycle may do to its connection. Loop thread only."""

    loop: asyncio.AbstractEventLoop
    client: Address
    server: Address
    scheme: str
    tls: TLSInfo | None  # None on plain TCP (and behind a TLS-terminating proxy)

    def send_head(self, status: int, headers: Headers, body: bytes, end: bool) -> None:
        """Write the response head and the first body bytes; raises ResponseError if invalid."""

    def send_body(self, data: bytes, end: bool) -> None:
        """Write body bytes; ``end`` completes the response."""

    def send_trailers(self, trailers: Headers) -> None:
        """End a chunked response with trailer fields."""

    def send_file(
        self, status: int, headers: Headers, body: FileBody, done: Callable[[bool], None]
    ) -> None:
        """Write a whole response whose body comes from a file, zero-copy where it can.

        The channel owns ``body.fd`` from here on and closes it in every case; ``done``
        learns whether the response went out whole (True) or was cut short. Raises
        ResponseError before writing anything if the head is invalid.
        """

    def send_continue(self) -> None:
        """Send ``100 Continue`` if the client is waiting for it."""

    def abort(self) -> None:
        """The response cannot be finished: close the connection."""

    def pause_reading(self) -> None:
        """Stop reading the request body until ``resume_reading``."""

    def resume_reading(self) -> None:
        """Start reading again."""


class Cycle(Protocol):
    """One request's progress through an app. Every method runs on the loop thread."""

    def feed_body(self, data: bytes) -> None: ...
    def feed_end(self) -> None: ...
    def start(self) -> None: ...
    def disconnected(self) -> None: ...
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...
    def expire(self) -> None:
        """It ran past --request-timeout: stop it if possible (the answer is the worker's)."""

    def shutdown(self) -> None:
        """The worker drains: an app waiting for the client to go is told it has, so it can
        end a long stream itself instead of being cut at the graceful timeout."""


class Adapter(Protocol):
    """Makes a Cycle for each request."""

    def new_cycle(self, request: Request, channel: Channel) -> Cycle: ...
