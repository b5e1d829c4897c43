"""HAProxy's PROXY protocol, versions 1 and 2: the real peer, sent before the first byte of HTTP.

``parse(data)`` returns None while the header is incomplete, else how many bytes it took
and the source address it carried (None for ``LOCAL``/``UNKNOWN``: keep the socket's peer).
Anything that is not a valid header raises ProtocolError: on a listener configured for
the PROXY protocol, a client speaking plain HTTP is a misconfiguration or an attack.
"""

from __future__ import annotations

import ipaddress
import struct

from hybridserve.errors import ProtocolError

HEADER_MAX_BYTES = 536  # PROXY v2's bound for what we accept (v1 is 107)
V1_PREFIX = b"PROXY "
V1_MAX_BYTES = 107  # the specification's bound, CRLF included
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_V2_HEAD = struct.Struct("!12sBBH")

Source = tuple[str, int] | None


def parse(data: bytes) -> tuple[int, Source] | None:
    """``(consumed, source)`` once a whole header is in ``data``; None if more is needed."""
    if _starts(data, V2_SIGNATURE):
        return _parse_v2(data) if len(data) >= len(V2_SIGNATURE) else None
    if _starts(data, V1_PREFIX):
        return _parse_v1(data) if len(data) >= len(V1_PREFIX) else None
    raise ProtocolError("expected a PROXY protocol header", 400)


class HeaderReader:
    """Collects a PROXY header from a connection's first reads, wherever they are cut."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> tuple[Source, bytes] | None:
        """``(source, the bytes after the header)`` once it is whole, else None.

        Raises ProtocolError for anything that is not a header, or one too long.
        """
        self._buf += data
        parsed = parse(bytes(self._buf))
        if parsed is None:
            if len(self._buf) > HEADER_MAX_BYTES:
                raise ProtocolError("PROXY header too long", 400)
            return None
        consumed, source = parsed
        return source, bytes(self._buf[consumed:])


def _starts(data: bytes, prefix: bytes) -> bool:
    """``data`` begins with ``prefix``, or is a beginning of it."""
    n = min(len(data), len(prefix))
    return n > 0 and data[:n] == prefix[:n]


def _parse_v1(data: bytes) -> tuple[int, Source] | None:
    end = data.find(b"\r\n")
    if end < 0:
        if len(data) >= V1_MAX_BYTES:
            raise ProtocolError("PROXY v1 header too long", 400)
        return None
    parts = data[:end].decode("ascii", "replace").split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return end + 2, None
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProtocolError("malformed PROXY v1 header", 400)
    _, family, source, _dest, sport, _dport = parts
    try:
        address = ipaddress.ip_address(source)
        port = int(sport)
    except ValueError:
        raise ProtocolError("malformed PROXY v1 address", 400) from None
    if (address.version == 4) != (family == "TCP4") or not 0 <= port <= 65535:
        raise ProtocolError("malformed PROXY v1 address", 400)
    return end + 2, (str(address), port)


def _parse_v2(data: bytes) -> tuple[int, Source] | None:
    if len(data) < _V2_HEAD.size:
        return None
    signature, ver_cmd, family, length = _V2_HEAD.unpack_from(data)
    if signature != V2_SIGNATURE or ver_cmd >> 4 != 2:
        raise ProtocolError("malformed PROXY v2 header", 400)
    total = _V2_HEAD.size + length
    if len(data) < total:
        return None
    command = ver_cmd & 0x0F
    if command == 0:  # LOCAL: a health check from the proxy itself
        return total, None
    if command != 1:
        raise ProtocolError("unknown PROXY v2 command", 400)
    body = data[_V2_HEAD.size : total]
    if family >> 4 == 1 and len(body) >= 12:  # AF_INET
        return total, (str(ipaddress.IPv4Address(body[0:4])), struct.unpack("!H", body[8:10])[0])
    if family >> 4 == 2 and len(body) >= 36:  # AF_INET6
        return total, (str(ipaddress.IPv6Address(body[0:16])), struct.unpack("!H", body[32:34])[0])
    return total, None  # AF_UNIX or unspecified: nothing to say about an IP peer
