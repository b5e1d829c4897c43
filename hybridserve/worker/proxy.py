"""Proxy headers: who the client really is, when the peer is a proxy we trust.

Only a trusted peer (``--forwarded-allow-ips``: addresses or networks, ``*`` for all; a Unix
socket peer is always a local proxy) may tell us the client's address, scheme and host.
RFC 7239 ``Forwarded`` wins over the ``X-Forwarded-*`` family when both are sent. In a chain
``client, proxy1, proxy2`` the client is the right-most address that is not itself a trusted
proxy, so a client cannot forge its address by sending its own ``X-Forwarded-For``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from hybridserve.apps.types import Address
from hybridserve.errors import ConfigError
from hybridserve.sansio.events import Headers, Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SCHEMES = {"http", "https", "ws", "wss"}


@dataclass(frozen=True, slots=True)
class Forwarded:
    """What the proxy said; ``None`` fields were not said (or not trusted)."""

    client: Address
    scheme: str | None
    host: bytes | None


class TrustedProxies:
    """The parsed ``--forwarded-allow-ips`` list."""

    def __init__(self, spec: str) -> None:
        self.everyone = False
        self._networks: list[Network] = []
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            if item == "*":
                self.everyone = True
                continue
            try:
                self._networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigError(f"forwarded-allow-ips: {item!r} is not an address") from None

    def trusts(self, host: str | None) -> bool:
        """Whether ``host`` (None for a Unix socket peer) may speak for the client."""
        if host is None or self.everyone:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    def resolve(self, peer: Address, headers: Headers) -> Forwarded | None:
        """The forwarded view of a request from ``peer``, or None if nothing applies."""
        if not self.trusts(peer[0] if peer else None):
            return None
        return self.read(peer, headers)

    def read(self, peer: Address, headers: Headers) -> Forwarded | None:
        """Like ``resolve`` for a peer already known to be trusted (once per connection)."""
        xff = proto = xhost = forwarded = None
        for name, value in headers:
            if name == b"forwarded":
                forwarded = value if forwarded is None else forwarded + b"," + value
            elif name == b"x-forwarded-for":
                xff = value if xff is None else xff + b"," + value
            elif name == b"x-forwarded-proto":
                proto = value
            elif name == b"x-forwarded-host":
                xhost = value
        if forwarded is not None:
            hops, proto, xhost = _parse_forwarded(forwarded.decode("latin-1"))
        elif xff is not None:
            hops = [h.strip() for h in xff.decode("latin-1").split(",") if h.strip()]
        else:
            hops = []
        if not hops and proto is None and xhost is None:
            return None
        client = self._client(hops, peer)
        scheme = _scheme(proto)
        host = xhost.split(b",")[0].strip() if xhost else None
        return Forwarded(client, scheme, host or None)

    def _client(self, hops: list[str], peer: Address) -> Address:
        for hop in reversed(hops):
            if not self.trusts(_host_of(hop)):
                return _address(hop)
        return _address(hops[0]) if hops else peer


def _scheme(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    scheme = text.split(",")[-1].strip().lower()
    return scheme if scheme in SCHEMES else None


def _parse_forwarded(value: str) -> tuple[list[str], bytes | None, bytes | None]:
    """``for`` hops, and the first ``proto`` and ``host``, from RFC 7239 elements."""
    hops: list[str] = []
    proto = host = None
    for element in value.split(","):
        for pair in element.split(";"):
            key, _, raw = pair.strip().partition("=")
            item = raw.strip().strip('"')
            key = key.lower()
            if key == "for" and item:
                hops.append(item)
            elif key == "proto" and proto is None and item:
                proto = item.encode("latin-1")
            elif key == "host" and host is None and item:
                host = item.encode("latin-1")
    return hops, proto, host


def _host_of(hop: str) -> str:
    """The bare address of ``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80`` or ``::1``."""
    if hop.startswith("["):
        return hop[1:].partition("]")[0]
    if hop.count(":") == 1:
        return hop.partition(":")[0]
    return hop


def _address(hop: str) -> Address:
    host = _host_of(hop)
    port = 0
    tail = hop.rpartition("]")[2] if hop.startswith("[") else hop
    if tail.count(":") == 1 and tail.rpartition(":")[2].isdigit():
        port = int(tail.rpartition(":")[2])
    return (host, port)


class Peer:
    """The other end of one connection, and whether its word about the client counts."""

    def __init__(self, address: Address, scheme: str, proxies: TrustedProxies | None) -> None:
        self._proxies = proxies
        self.address = address
        self.scheme = scheme
        self.trusted = False
        self.moved_to(address)

    def moved_to(self, address: Address) -> None:
        """The PROXY protocol named the real peer: trust is judged on it (once)."""
        self.address = address
        proxies = self._proxies
        self.trusted = proxies is not None and proxies.trusts(address[0] if address else None)

    def view(self, request: Request) -> tuple[Address, str]:
        """Client and scheme for ``request``; a trusted proxy's Host replaces the request's."""
        if not self.trusted or self._proxies is None:
            return self.address, self.scheme
        seen = self._proxies.read(self.address, request.headers)
        if seen is None:
            return self.address, self.scheme
        if seen.host:
            host = seen.host
            request.headers = [(n, host if n == b"host" else v) for n, v in request.headers]
        return seen.client or self.address, seen.scheme or self.scheme
