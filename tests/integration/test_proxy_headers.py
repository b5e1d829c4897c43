"""Proxy headers through the real CLI: believed from trusted peers only."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import ServeFactory
from tests.harness import Server

FORWARDED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


@pytest.mark.parametrize("app", ["scheme_app:wsgi", "scheme_app:asgi"])
def test_loopback_proxy_is_trusted_by_default(serve: ServeFactory, app: str) -> None:
    server = serve(app, "-w", "1")
    assert httpx.get(server.url, headers=FORWARDED).json() == {
        "scheme": "https",
        "client": "203.0.113.9",
    }
    # The next request on the same connection says nothing: the peer is itself again.
    with httpx.Client() as client:
        client.get(server.url, headers=FORWARDED)
        assert client.get(server.url).json() == {"scheme": "http", "client": "127.0.0.1"}


def test_untrusted_peer_headers_are_ignored(serve: ServeFactory) -> None:
    server = serve("scheme_app:wsgi", "-w", "1", "--forwarded-allow-ips", "10.0.0.0/8")
    assert httpx.get(server.url, headers=FORWARDED).json() == {
        "scheme": "http",
        "client": "127.0.0.1",
    }


def test_unix_socket_peer_and_forwarded_host(serve: ServeFactory, tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    server = serve("-w", "1", "-b", f"unix:{path}", "-b", "127.0.0.1:0")
    transport = httpx.HTTPTransport(uds=str(path))
    with httpx.Client(transport=transport) as client:
        response = client.post(
            "http://localhost/echo",
            headers={**FORWARDED, "X-Forwarded-Host": "public.example"},
        )
    headers = dict(response.json()["headers"])
    assert headers["host"] == "public.example"
    assert server.url


def test_bad_allow_list_is_a_usage_error() -> None:
    server = Server("--forwarded-allow-ips", "127.0.0.1,not-an-ip").start(ready=False)
    assert server.wait() == 2
    assert "'not-an-ip' is not an address" in server.log
