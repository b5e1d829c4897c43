"""PROXY protocol v1 and v2 headers, sans-IO."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from hybridserve.errors import ProtocolError
from hybridserve.sansio.proxy_protocol import V2_SIGNATURE, parse


def v2(command: int, family: int, body: bytes) -> bytes:
    return V2_SIGNATURE + struct.pack("!BBH", 0x20 | command, family, len(body)) + body


def test_v1_tcp4() -> None:
    data = b"PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\nGET / HTTP/1.1\r\n"
    consumed, source = parse(data)  # type: ignore[misc]
    assert data[consumed:].startswith(b"GET /")
    assert source == ("192.0.2.1", 56324)


def test_v1_tcp6_and_unknown() -> None:
    assert parse(b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n") == (40, ("2001:db8::1", 1))
    assert parse(b"PROXY UNKNOWN\r\n") == (15, None)


def test_v1_incomplete_then_complete() -> None:
    header = b"PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n"
    for cut in range(1, len(header)):
        assert parse(header[:cut]) is None
    assert parse(header) is not None


def test_v2_inet_and_local() -> None:
    body = ipaddress.IPv4Address("203.0.113.7").packed + bytes(4) + struct.pack("!HH", 4242, 80)
    data = v2(1, 0x11, body) + b"GET"
    consumed, source = parse(data)  # type: ignore[misc]
    assert source == ("203.0.113.7", 4242)
    assert data[consumed:] == b"GET"
    assert parse(v2(0, 0x00, b"")) == (16, None)
    for cut in range(1, len(data) - 3):
        assert parse(data[:cut]) is None


def test_v2_inet6() -> None:
    body = ipaddress.IPv6Address("2001:db8::7").packed + bytes(16) + struct.pack("!HH", 1, 2)
    assert parse(v2(1, 0x21, body)) == (16 + 36, ("2001:db8::7", 1))


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n",
        b"PROXY TCP4 nonsense 1.1.1.1 1 2\r\n",
        b"PROXY TCP4 2001:db8::1 1.1.1.1 1 2\r\n",
        b"PROXY " + b"9" * 200,
        V2_SIGNATURE + b"\x10\x11\x00\x00",
        v2(5, 0x11, b""),
    ],
)
def test_invalid_headers_are_refused(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse(data)
