"""HTTPS with certificates from trustme, checked by a real client: refusals that carry an
alert, client certificates the app can see, and PROXY headers in front of the handshake."""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import httpx
import pytest
import trustme
from cryptography import x509
from websockets.sync.client import connect

from tests.conftest import ServeFactory
from tests.harness import APPS, Server, SocketReader, get, read_until_close

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def tls_args(certs: dict[str, Path], *extra: str) -> tuple[str, ...]:
    return ("-w", "1", "--certfile", str(certs["cert"]), "--keyfile", str(certs["key"]), *extra)


def mtls_args(certs: dict[str, Path], reqs: str = "2") -> tuple[str, ...]:
    return tls_args(certs, "--ca-certs", str(certs["ca"]), "--cert-reqs", reqs)


def trusting(certs: dict[str, Path], *, client_cert: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs["ca"]))
    if client_cert:
        context.load_cert_chain(str(certs["client"]))
    return context


def tls_socket(
    host: str, port: int, context: ssl.SSLContext, preface: bytes = b""
) -> ssl.SSLSocket:
    context.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection((host, port), timeout=10)
    if preface:
        raw.sendall(preface)
    return context.wrap_socket(raw, server_hostname=host)


def fetch_json(sock: ssl.SSLSocket) -> dict[str, object]:
    sock.sendall(get("/"))
    response = SocketReader(sock).read_response()
    assert response.status == 200, response
    data = json.loads(response.body)
    assert isinstance(data, dict)
    return data


def refusal(server: Server, context: ssl.SSLContext) -> str | None:
    """The alert the client hears: in its handshake, or (TLS 1.3) on its first read."""
    with pytest.raises(ssl.SSLError) as refused:
        sock = tls_socket(server.host, server.port, context)
        try:
            sock.sendall(get("/"))
            sock.recv(1)
        finally:
            sock.close()
    return refused.value.reason


@pytest.mark.parametrize("app", ["scheme_app:wsgi", "scheme_app:asgi"])
def test_https_scheme_reaches_the_app(
    serve: ServeFactory, certs: dict[str, Path], app: str
) -> None:
    server = serve(app, *tls_args(certs))
    assert server.url.startswith("https://")
    with httpx.Client(verify=trusting(certs)) as client:
        response = client.get(server.url + "/")
        assert response.json() == {"scheme": "https", "client": "127.0.0.1"}
        assert client.get(server.url + "/").status_code == 200  # keep-alive over TLS
    with tls_socket(server.host, server.port, trusting(certs)) as sock:
        assert sock.version() in ("TLSv1.2", "TLSv1.3")
        assert sock.selected_alpn_protocol() == "http/1.1"


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_tls_1_1_client_hears_protocol_version(
    serve: ServeFactory, certs: dict[str, Path], loop: str
) -> None:
    server = serve(*tls_args(certs, "--loop", loop))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let our side offer TLS 1.1 at all
    with warnings.catch_warnings():  # asking for an old version is the point here
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError) as refused:
        tls_socket(server.host, server.port, context)
    assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION"  # not a bare EOF
    assert httpx.get(server.url, verify=trusting(certs)).status_code == 200  # still serving


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_client_without_required_certificate_hears_certificate_required(
    serve: ServeFactory, certs: dict[str, Path], loop: str
) -> None:
    server = serve(*mtls_args(certs), "--loop", loop)
    context = trusting(certs)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    assert refusal(server, context) == "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    with tls_socket(server.host, server.port, trusting(certs, client_cert=True)) as sock:
        sock.sendall(get("/"))
        assert SocketReader(sock).read_response().status == 200


def test_client_certificate_from_another_ca_hears_unknown_ca(
    serve: ServeFactory, certs: dict[str, Path], tmp_path: Path
) -> None:
    server = serve(*mtls_args(certs))
    stranger = tmp_path / "stranger.pem"
    trustme.CA().issue_cert("mallory@example.test").private_key_and_cert_chain_pem.write_to_path(
        str(stranger)
    )
    context = trusting(certs)
    context.load_cert_chain(str(stranger))
    assert refusal(server, context) == "TLSV1_ALERT_UNKNOWN_CA"


def test_plain_http_to_a_tls_port_does_not_hurt_the_worker(
    serve: ServeFactory, certs: dict[str, Path]
) -> None:
    server = serve(*tls_args(certs, "--timeout-request-head", "60"))
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://{server.host}:{server.port}/")
    with server.connect(timeout_s=20) as sock:  # no alert to send: closed now, not in 60 s
        sock.sendall(get("/"))
        assert read_until_close(sock) == b""
    assert httpx.get(server.url, verify=trusting(certs)).status_code == 200


def first_pem(path: Path) -> str:
    text = path.read_text()
    start = text.index("-----BEGIN CERTIFICATE-----")
    end = text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    return text[start:end] + "\n"


def test_asgi_app_sees_the_tls_extension(serve: ServeFactory, certs: dict[str, Path]) -> None:
    server = serve("tls_app:asgi", *mtls_args(certs, "1"))
    expected_name = x509.load_pem_x509_certificate(first_pem(certs["client"]).encode()).subject
    with tls_socket(server.host, server.port, trusting(certs, client_cert=True)) as sock:
        tls = fetch_json(sock)["tls"]
        cipher = sock.cipher()
        assert isinstance(tls, dict)
        assert tls["client_cert_chain"] == [first_pem(certs["client"])]
        assert tls["client_cert_name"] == expected_name.rfc4514_string()
        assert tls["client_cert_name"].startswith("CN=alice,")
        assert "O=Example\\, Inc." in tls["client_cert_name"]
        assert tls["client_cert_error"] is None
        assert tls["tls_version"] == {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}[sock.version() or ""]
        ids = {c["name"]: c["id"] & 0xFFFF for c in ssl.create_default_context().get_ciphers()}
        assert cipher is not None and tls["cipher_suite"] == ids[cipher[0]]
        assert tls["server_cert"] == first_pem(certs["cert"])
    with tls_socket(server.host, server.port, trusting(certs)) as sock:  # optional: none sent
        tls = fetch_json(sock)["tls"]
        assert isinstance(tls, dict)
        assert tls["client_cert_chain"] == [] and tls["client_cert_name"] is None


def test_websocket_scope_carries_the_tls_extension(
    serve: ServeFactory, certs: dict[str, Path]
) -> None:
    server = serve("tls_app:asgi", *mtls_args(certs))
    url = f"wss://{server.host}:{server.port}/"
    with connect(url, ssl=trusting(certs, client_cert=True), open_timeout=10) as ws:
        tls = json.loads(ws.recv(timeout=10))["tls"]
    assert tls["client_cert_chain"] == [first_pem(certs["client"])]
    assert tls["client_cert_name"].startswith("CN=alice,")


def test_plain_http_has_no_tls_extension(serve: ServeFactory) -> None:
    server = serve("tls_app:asgi", "-w", "1")
    assert httpx.get(server.url).json()["tls"] is None


def test_wsgi_app_sees_mod_ssl_variables(serve: ServeFactory, certs: dict[str, Path]) -> None:
    server = serve("tls_app:wsgi", *mtls_args(certs))
    with tls_socket(server.host, server.port, trusting(certs, client_cert=True)) as sock:
        environ = fetch_json(sock)
        cipher = sock.cipher()
        assert environ["HTTPS"] == "on"
        assert environ["SSL_PROTOCOL"] == sock.version()
        assert cipher is not None and environ["SSL_CIPHER"] == cipher[0]
        assert environ["SSL_CLIENT_VERIFY"] == "SUCCESS"
        assert environ["SSL_CLIENT_CERT"] == first_pem(certs["client"])
        name = x509.load_pem_x509_certificate(first_pem(certs["client"]).encode()).subject
        assert environ["SSL_CLIENT_S_DN"] == name.rfc4514_string()


def proxy_v1(source: str, port: int) -> bytes:
    return f"PROXY TCP4 {source} 127.0.0.1 {port} 443\r\n".encode()


def proxy_v2(source: str, port: int) -> bytes:
    body = ipaddress.IPv4Address(source).packed + ipaddress.IPv4Address("127.0.0.1").packed
    body += struct.pack("!HH", port, 443)
    return V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x11, len(body)) + body


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("version", [1, 2])
def test_proxy_header_in_clear_then_tls(
    serve: ServeFactory, certs: dict[str, Path], version: int, loop: str
) -> None:
    server = serve("tls_app:asgi", *tls_args(certs, "--proxy-protocol", "--loop", loop))
    header = (proxy_v1 if version == 1 else proxy_v2)("203.0.113.9", 4711)
    with tls_socket(server.host, server.port, trusting(certs), header) as sock:
        assert fetch_json(sock)["client"] == ["203.0.113.9", 4711]
        assert fetch_json(sock)["client"] == ["203.0.113.9", 4711]  # the whole connection


def test_proxy_header_and_client_hello_in_one_segment(
    serve: ServeFactory, certs: dict[str, Path]
) -> None:
    """The header must be taken to its last byte and not one more: the TLS bytes follow."""
    server = serve("tls_app:asgi", *tls_args(certs, "--proxy-protocol"))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = trusting(certs).wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        with pytest.raises(ssl.SSLWantReadError):
            tls.do_handshake()
        sock.sendall(proxy_v2("198.51.100.1", 1234) + outgoing.read())
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(outgoing.read())
                data = sock.recv(65536)
                assert data, "the server closed during the handshake"
                incoming.write(data)
        tls.write(get("/", headers="Connection: close\r\n"))
        sock.sendall(outgoing.read())
        body = b""
        while b"}" not in body:
            try:
                body += tls.read(65536)
            except ssl.SSLWantReadError:
                data = sock.recv(65536)
                assert data, f"closed before the body: {body!r}"
                incoming.write(data)
    assert b'"client": ["198.51.100.1", 1234]' in body


def test_bad_proxy_header_before_tls_closes_only_that_connection(
    serve: ServeFactory, certs: dict[str, Path]
) -> None:
    server: Server = serve("tls_app:asgi", *tls_args(certs, "--proxy-protocol"))
    with pytest.raises((ssl.SSLError, OSError)):
        tls_socket(server.host, server.port, trusting(certs))  # a ClientHello, no header
    with tls_socket(server.host, server.port, trusting(certs), proxy_v1("192.0.2.1", 80)) as s:
        assert fetch_json(s)["client"] == ["192.0.2.1", 80]


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
