"""A real HAProxy (TCP mode, send-proxy / send-proxy-v2) in front of an HTTPS hybridserve.

HAProxy sends the PROXY header in clear text before the client's TLS bytes, as cloud load
balancers do: the app must see the client's own address and port, over TLS end to end.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ServeFactory
from tests.harness import Server, read_until_close, start_on_free_port
from tests.integration.test_tls import fetch_json, tls_args, tls_socket, trusting

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
pytestmark = pytest.mark.skipif(
    not Path(HAPROXY).exists(), reason="haproxy is not installed (make system-deps installs it)"
)

CONFIG = """
global
    maxconn 64
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend front
    bind 127.0.0.1:{port}
    default_backend app
backend app
    server hybridserve 127.0.0.1:{backend} {send_proxy}
"""


def start_haproxy(
    folder: Path, backend: int, send_proxy: str
) -> tuple[subprocess.Popen[bytes], int]:
    """HAProxy cannot report a port it picked: one of a few random loopback ports."""

    def launch(port: int) -> subprocess.Popen[bytes]:
        conf = folder / "haproxy.cfg"
        conf.write_text(CONFIG.format(port=port, backend=backend, send_proxy=send_proxy))
        return subprocess.Popen([HAPROXY, "-db", "-f", str(conf)], stderr=subprocess.PIPE)

    def probe(port: int) -> None:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()

    return start_on_free_port("haproxy", launch, probe)


@pytest.fixture(params=["send-proxy", "send-proxy-v2"])
def behind_haproxy(
    request: pytest.FixtureRequest, serve: ServeFactory, certs: dict[str, Path], tmp_path: Path
) -> Iterator[tuple[Server, int]]:
    server = serve("tls_app:asgi", *tls_args(certs, "--proxy-protocol"))
    proc, port = start_haproxy(tmp_path, server.port, request.param)
    try:
        yield server, port
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


def test_tls_through_haproxy_reaches_the_app_with_the_client_address(
    behind_haproxy: tuple[Server, int], certs: dict[str, Path]
) -> None:
    _, port = behind_haproxy
    for _ in range(3):  # each a new connection through the proxy
        with tls_socket("127.0.0.1", port, trusting(certs)) as sock:
            own_port = sock.getsockname()[1]
            info = fetch_json(sock)
            assert info["client"] == ["127.0.0.1", own_port]  # ours, not haproxy's
            tls = info["tls"]
            assert isinstance(tls, dict) and tls["tls_version"] in (0x0303, 0x0304)
            assert sock.version() in ("TLSv1.2", "TLSv1.3")


def test_plain_http_through_haproxy_is_closed_and_tls_still_works(
    behind_haproxy: tuple[Server, int], certs: dict[str, Path]
) -> None:
    _, port = behind_haproxy
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_until_close(sock) == b""  # not TLS: no answer, no alert, just a close
    with tls_socket("127.0.0.1", port, trusting(certs)) as sock:
        assert fetch_json(sock)["client"] == ["127.0.0.1", sock.getsockname()[1]]
