"""HTTPS with certificates from trustme, checked by a real client."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from tests.conftest import ServeFactory
from tests.harness import APPS


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("certs")
    paths = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(str(paths["cert"]), append=True)
    cert.private_key_pem.write_to_path(str(paths["key"]))
    yield paths


@pytest.mark.parametrize("app", ["scheme_app:wsgi", "scheme_app:asgi"])
def test_https_scheme_reaches_the_app(
    serve: ServeFactory, certs: dict[str, Path], app: str
) -> None:
    server = serve(app, "-w", "1", "--certfile", str(certs["cert"]), "--keyfile", str(certs["key"]))
    assert server.url.startswith("https://")
    context = ssl.create_default_context(cafile=str(certs["ca"]))
    with httpx.Client(verify=context) as client:
        response = client.get(server.url + "/")
        assert response.json() == {"scheme": "https", "client": "127.0.0.1"}
        assert client.get(server.url + "/").status_code == 200  # keep-alive over TLS
    with _tls_socket(server.host, server.port, context) as sock:
        assert sock.version() in ("TLSv1.2", "TLSv1.3")
        assert sock.selected_alpn_protocol() == "http/1.1"


def trusting(certs: dict[str, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs["ca"]))


def _tls_socket(host: str, port: int, context: ssl.SSLContext) -> ssl.SSLSocket:
    context.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection((host, port), timeout=10)
    return context.wrap_socket(raw, server_hostname=host)


def test_tls_1_1_is_refused(serve: ServeFactory, certs: dict[str, Path]) -> None:
    server = serve("-w", "1", "--certfile", str(certs["cert"]), "--keyfile", str(certs["key"]))
    context = ssl.create_default_context(cafile=str(certs["ca"]))
    with warnings.catch_warnings():  # asking for an old version is the point here
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError):
        _tls_socket(server.host, server.port, context)
    assert httpx.get(server.url, verify=trusting(certs)).status_code == 200  # still serving


def test_plain_http_to_a_tls_port_does_not_hurt_the_worker(
    serve: ServeFactory, certs: dict[str, Path]
) -> None:
    server = serve("-w", "1", "--certfile", str(certs["cert"]), "--keyfile", str(certs["key"]))
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://{server.host}:{server.port}/")
    assert httpx.get(server.url, verify=trusting(certs)).status_code == 200


def test_missing_certificate_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hybridserve",
            "--certfile",
            str(tmp_path / "none.pem"),
            "--bind",
            "127.0.0.1:0",
        ],
        cwd=APPS,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "none.pem" in result.stderr
    assert "Traceback" not in result.stderr
