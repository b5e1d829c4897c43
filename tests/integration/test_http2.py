"""HTTP/2 through real clients: httpx (h2), curl and h2load (nghttp2), over h2c and TLS."""

from __future__ import annotations

import shutil
import signal
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
from hyperframe.frame import GoAwayFrame

from tests.conformance_h2.client import H2Client, request_fields
from tests.conformance_h2.socket_driver import SocketDriver
from tests.conftest import ServeFactory
from tests.harness import Server, wait_until

APP = "h2_apps:app"


def h2c() -> httpx.Client:
    """httpx speaking HTTP/2 with prior knowledge on plain TCP (http1=False)."""
    return httpx.Client(http1=False, http2=True, timeout=10)


def test_h2c_prior_knowledge_serves_asgi_streams(serve: ServeFactory) -> None:
    server = serve("-w", "1", APP)
    with h2c() as client:
        got = client.post(server.url + "/", content=b"hello")
        scope = client.get(server.url + "/scope")
        big = client.get(server.url + "/big/300000")  # past every window: flow control works
    assert got.http_version == "HTTP/2" and got.text == "POST / 5"
    assert scope.text == "2"
    assert len(big.content) == 300_000


def test_file_body_over_http2(serve: ServeFactory) -> None:
    server = serve("-w", "1", APP)
    source = (Path(__file__).parent.parent / "apps" / "h2_apps.py").read_bytes()
    with h2c() as client:
        response = client.get(server.url + "/file")
    assert response.http_version == "HTTP/2" and response.content == source


def test_wsgi_app_is_told_http2(serve: ServeFactory) -> None:
    server = serve("-w", "1", "h2_apps:wsgi_app", "--interface", "wsgi")
    with h2c() as client:
        response = client.post(server.url + "/", content=b"x" * 100_000)
    assert response.http_version == "HTTP/2" and response.text == "HTTP/2 100000"


def test_http1_still_served_beside_http2(serve: ServeFactory) -> None:
    server = serve("-w", "1", APP)
    with httpx.Client() as client:
        response = client.get(server.url + "/scope")
    assert response.http_version == "HTTP/1.1" and response.text == "1.1"


def test_alpn_h2_over_tls(serve: ServeFactory, certs: dict[str, Path]) -> None:
    server = serve("-w", "1", "--certfile", str(certs["cert"]), "--keyfile", str(certs["key"]), APP)
    context = ssl.create_default_context(cafile=str(certs["ca"]))
    with httpx.Client(http2=True, verify=context) as client:
        response = client.get(server.url + "/scope")
    assert response.http_version == "HTTP/2" and response.text == "2"


def test_no_http2_offers_only_http1(serve: ServeFactory, certs: dict[str, Path]) -> None:
    server = serve(
        "-w",
        "1",
        "--no-http2",
        "--certfile",
        str(certs["cert"]),
        "--keyfile",
        str(certs["key"]),
        APP,
    )
    context = ssl.create_default_context(cafile=str(certs["ca"]))
    with httpx.Client(http2=True, verify=context) as client:
        assert client.get(server.url + "/scope").http_version == "HTTP/1.1"


def test_no_http2_refuses_the_preface(serve: ServeFactory) -> None:
    server = serve("-w", "1", "--no-http2", APP)
    with h2c() as client, pytest.raises(httpx.HTTPError):
        client.get(server.url + "/")


def test_app_error_resets_only_its_stream(serve: ServeFactory) -> None:
    server = serve("-w", "1", APP)
    with h2c() as client:
        assert client.get(server.url + "/fail-before").status_code == 500
        with pytest.raises(httpx.HTTPError):
            client.get(server.url + "/fail-after").read()
        assert client.get(server.url + "/").text == "GET / 0"  # the connection goes on


def test_drain_sends_goaway_and_finishes_the_open_stream(serve: ServeFactory) -> None:
    server = serve("-w", "1", "--graceful-timeout", "10", APP)
    driver = SocketDriver(server.host, server.port)
    client = H2Client(driver)
    client.handshake()
    client.send(client.headers(1, request_fields(b"POST", b"/"), end_stream=False))
    client.sync()  # the stream is open in the server
    server.send_signal(signal.SIGTERM)
    goaway = next(f for f in iter(client.read_frame, None) if isinstance(f, GoAwayFrame))
    assert (goaway.error_code, goaway.last_stream_id) == (0, 1)
    client.send(client.headers(3, request_fields()))  # after the GOAWAY: refused or ignored
    client.send(b"\x00\x00\x03\x00\x01\x00\x00\x00\x01abc")  # DATA "abc", END_STREAM
    assert client.response(1).body == b"POST / 3"
    assert server.wait() == 0
    driver.close()


def test_access_log_says_http2(serve: ServeFactory, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    server = serve("-w", "1", "--access-log", str(log), APP)
    with h2c() as client:
        client.get(server.url + "/")
    assert wait_until(lambda: log.exists() and "HTTP/2.0" in log.read_text(), 10), log


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed (make system-deps)")
def test_curl_prior_knowledge_and_tls(serve: ServeFactory, certs: dict[str, Path]) -> None:
    plain = serve("-w", "1", APP)
    out = subprocess.run(
        ["curl", "-sS", "--http2-prior-knowledge", "-w", " %{http_version}", plain.url + "/"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    assert out.stdout == "GET / 0 2"
    tls = serve("-w", "1", "--certfile", str(certs["cert"]), "--keyfile", str(certs["key"]), APP)
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "--http2",
            "--cacert",
            str(certs["ca"]),
            "-w",
            " %{http_version}",
            tls.url + "/scope",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    assert out.stdout == "2 2"


@pytest.mark.skipif(
    shutil.which("h2load") is None, reason="h2load not installed (make system-deps)"
)
def test_h2load_multiplexed_requests_all_succeed(serve: ServeFactory) -> None:
    server: Server = serve("-w", "1", APP)
    out = subprocess.run(
        ["h2load", "-n", "2000", "-c", "4", "-m", "10", server.url + "/"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "2000 succeeded, 0 failed, 0 errored" in out.stdout, out.stdout
