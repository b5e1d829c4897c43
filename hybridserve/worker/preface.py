"""The PROXY protocol header in front of TLS, read off the raw socket before the handshake.

HAProxy's ``send-proxy``/``send-proxy-v2`` and cloud load balancers send the header in clear
text, then the client's TLS bytes. So on a TLS listener the header cannot wait for the
decrypted stream: we peek at the socket and consume exactly the header's bytes, leaving the
ClientHello behind it for the TLS layer. Plain-TCP listeners never come here; their
HTTPProtocol takes the header from its first ``data_received``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass

from hybridserve.apps.types import Address
from hybridserve.errors import ProtocolError
from hybridserve.sansio import proxy_protocol

PROXY_HEADER_MAX_BYTES = proxy_protocol.HEADER_MAX_BYTES


@dataclass(frozen=True, slots=True)
class Preface:
    """A PROXY header already taken off the socket; ``source`` None keeps the socket's peer."""

    source: Address


async def read_proxy_header(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, timeout_s: float
) -> Preface:
    """Consume the header and no byte more; ProtocolError if it is not one, TimeoutError or
    ConnectionError if it does not come."""
    got = b""
    async with asyncio.timeout(timeout_s):
        while True:
            await _readable(loop, sock)
            try:
                peeked = sock.recv(PROXY_HEADER_MAX_BYTES - len(got), socket.MSG_PEEK)
            except (BlockingIOError, InterruptedError):
                continue
            if not peeked:
                raise ConnectionResetError("closed before sending its PROXY header")
            parsed = proxy_protocol.parse(got + peeked)
            if parsed is None:  # all of it is header (the header ends with what is missing)
                got += sock.recv(len(peeked))
                if len(got) >= PROXY_HEADER_MAX_BYTES:
                    raise ProtocolError("PROXY header too long", 400)
                continue
            consumed, source = parsed
            sock.recv(consumed - len(got))  # already in the buffer: a short read cannot happen
            return Preface(source)


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        await ready
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(sock.fileno())
