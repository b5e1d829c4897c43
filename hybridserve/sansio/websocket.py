"""The WebSocket opening handshake (RFC 6455 §4.2, RFC 7692), without I/O.

``read_handshake`` checks what the client asked for, ``negotiate_deflate`` picks the
compression we agree to, ``accept_head`` writes the 101. The session that runs afterwards,
with its transport and the app, lives in ``apps/websocket.py``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.utilities import generate_accept_token

from hybridserve.errors import ProtocolError, ResponseError
from hybridserve.sansio.events import Headers, Request
from hybridserve.sansio.writer import STATUS_LINES, header_line

OWN_HEADERS = {b"upgrade", b"connection", b"sec-websocket-accept", b"sec-websocket-extensions"}


def valid_close_code(code: object) -> bool:
    """Whether an app may send ``code`` in a Close frame (RFC 6455 §7.4, IANA registry)."""
    return isinstance(code, int) and (
        1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999
    )


@dataclass(frozen=True, slots=True)
class Handshake:
    """What a valid opening handshake asked for (RFC 6455 §4.2.1)."""

    key: bytes
    subprotocols: list[str] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)  # offers, as sent


def _tokens(value: bytes) -> list[str]:
    return [t for t in (p.strip() for p in value.decode("latin-1").split(",")) if t]


def read_handshake(request: Request) -> Handshake:
    """Check a client's opening handshake; raises ProtocolError (400, or 426 + version)."""
    if request.method != b"GET" or request.http_version != b"1.1":
        raise ProtocolError("a WebSocket handshake is an HTTP/1.1 GET", 400)
    key = version = None
    subprotocols: list[str] = []
    extensions: list[str] = []
    for name, value in request.headers:
        if name == b"sec-websocket-key":
            key = value.strip()
        elif name == b"sec-websocket-version":
            version = value.strip()
        elif name == b"sec-websocket-protocol":
            subprotocols += _tokens(value)
        elif name == b"sec-websocket-extensions":
            extensions += _tokens(value)
    if version != b"13":
        raise ProtocolError("unsupported Sec-WebSocket-Version", 426 if version else 400)
    if key is None or not _valid_key(key):
        raise ProtocolError("missing or invalid Sec-WebSocket-Key", 400)
    return Handshake(key, subprotocols, extensions)


def _valid_key(key: bytes) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        return False


def negotiate_deflate(offers: list[str]) -> tuple[list[Extension], bytes | None]:
    """The first permessage-deflate offer we can take: its extension and response header.

    An offer asking for ``*_no_context_takeover`` gets it (RFC 7692 §7.1.1); a malformed
    offer is skipped rather than failing the handshake.
    """
    for offer in offers:
        name, _, params = offer.partition(";")
        if name.strip() != PerMessageDeflate.name:
            continue
        asked = {param.split("=")[0].strip() for param in params.split(";")}
        deflate = PerMessageDeflate(
            client_no_context_takeover="client_no_context_takeover" in asked,
            server_no_context_takeover="server_no_context_takeover" in asked,
        )
        try:
            accepted = deflate.accept(offer)
        except ValueError:
            continue
        if isinstance(accepted, str):
            header = PerMessageDeflate.name + ("; " + accepted if accepted else "")
            return [deflate], header.encode("ascii")
    return [], None


def accept_head(
    handshake: Handshake, subprotocol: str | None, extensions: bytes | None, headers: Headers
) -> bytes:
    """The 101 response; raises ResponseError for a subprotocol or header we can't send."""
    lines = [
        STATUS_LINES[101],
        b"Upgrade: websocket\r\nConnection: Upgrade\r\n",
        b"Sec-WebSocket-Accept: %s\r\n" % generate_accept_token(handshake.key),
    ]
    if subprotocol is not None:
        if subprotocol not in handshake.subprotocols:
            raise ResponseError(f"subprotocol {subprotocol!r} was not offered by the client")
        lines.append(header_line(b"Sec-WebSocket-Protocol", subprotocol.encode("latin-1"))[0])
    if extensions:
        lines.append(b"Sec-WebSocket-Extensions: %s\r\n" % extensions)
    for name, value in headers:
        lowered = name.lower()
        if lowered in OWN_HEADERS or (subprotocol and lowered == b"sec-websocket-protocol"):
            continue
        lines.append(header_line(name, value)[0])
    lines.append(b"\r\n")
    return b"".join(lines)
