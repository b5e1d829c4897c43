"""Proxy headers are believed only from trusted peers, and only as far as the chain is."""

from __future__ import annotations

import pytest

from hybridserve.errors import ConfigError
from hybridserve.worker.proxy import Forwarded, TrustedProxies

PROXY = ("127.0.0.1", 5000)


def resolve(spec: str, peer: tuple[str, int] | None, **headers: str) -> Forwarded | None:
    raw = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return TrustedProxies(spec).resolve(peer, raw)


def test_untrusted_peer_is_ignored() -> None:
    assert resolve("127.0.0.1", ("10.0.0.9", 1), x_forwarded_for="1.2.3.4") is None


def test_trusted_peer_gives_client_scheme_and_host() -> None:
    view = resolve(
        "127.0.0.1",
        PROXY,
        x_forwarded_for="1.2.3.4",
        x_forwarded_proto="https",
        x_forwarded_host="example.com",
    )
    assert view == Forwarded(("1.2.3.4", 0), "https", b"example.com")


def test_client_is_the_rightmost_untrusted_hop() -> None:
    view = resolve("127.0.0.1, 10.0.0.0/8", PROXY, x_forwarded_for="6.6.6.6, 1.2.3.4, 10.1.1.1")
    assert view is not None and view.client == ("1.2.3.4", 0)


def test_all_hops_trusted_gives_the_leftmost() -> None:
    view = resolve("*", PROXY, x_forwarded_for="1.2.3.4, 5.6.7.8")
    assert view is not None and view.client == ("1.2.3.4", 0)


def test_rfc7239_forwarded_wins() -> None:
    view = resolve(
        "127.0.0.1",
        PROXY,
        forwarded='for="[2001:db8::1]:4711";proto=https;host=a.example, for=127.0.0.1',
        x_forwarded_for="9.9.9.9",
    )
    assert view == Forwarded(("2001:db8::1", 4711), "https", b"a.example")


def test_unix_socket_peer_is_a_local_proxy() -> None:
    view = resolve("127.0.0.1", None, x_forwarded_for="1.2.3.4")
    assert view is not None and view.client == ("1.2.3.4", 0)


def test_unknown_scheme_is_dropped() -> None:
    view = resolve("127.0.0.1", PROXY, x_forwarded_proto="javascript")
    assert view is not None and view.scheme is None


def test_no_proxy_headers_means_nothing_to_apply() -> None:
    assert resolve("127.0.0.1", PROXY) is None


def test_bad_spec_names_the_item() -> None:
    with pytest.raises(ConfigError, match="not-an-ip"):
        TrustedProxies("127.0.0.1, not-an-ip")
