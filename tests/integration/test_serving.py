"""Serving the demo app through the real CLI: HTTP/1.1 behaviour in both interfaces."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.harness import Server, SocketReader, get, read_response

INTERFACES = ["wsgi", "asgi"]


@pytest.fixture(scope="module", params=INTERFACES)
def demo(request: pytest.FixtureRequest) -> Iterator[Server]:
    server = Server("--interface", request.param, "-w", "1", "--threads", "4").start()
    yield server
    assert server.stop() == 0, server.log


def test_hello(demo: Server) -> None:
    response = httpx.get(demo.url + "/")
    assert response.status_code == 200
    assert response.content == b"Hello, world!"
    assert response.headers["content-length"] == "13"
    assert response.headers["server"] == "hybridserve"
    assert "date" in response.headers


def test_echo_returns_method_headers_and_body(demo: Server) -> None:
    response = httpx.post(demo.url + "/echo?x=1", content=b"payload", headers={"X-Test": "yes"})
    data = response.json()
    assert data["method"] == "POST"
    assert data["path"] == "/echo"
    assert data["query"] == "x=1"
    assert ["x-test", "yes"] in data["headers"]
    assert data["body"] == "payload"


def test_bytes_and_stream(demo: Server) -> None:
    assert len(httpx.get(demo.url + "/bytes?n=200000").content) == 200000
    with demo.connect() as sock:
        sock.sendall(get("/stream?chunks=5&size=3"))
        response = read_response(sock)
    assert response.header("transfer-encoding") == "chunked"
    assert response.body == b"xxx" * 5


def test_status_and_caps(demo: Server) -> None:
    assert httpx.get(demo.url + "/status/418").status_code == 418
    assert httpx.get(demo.url + "/status/204").content == b""
    capped = httpx.get(demo.url + "/delay?ms=999999")
    assert capped.status_code == 400
    assert b"ms must be an integer from 0 to 60000" in capped.content
    assert httpx.get(demo.url + "/nowhere").status_code == 404


def test_head_has_headers_but_no_body(demo: Server) -> None:
    with demo.connect() as sock:
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n" + get("/"))
        reader = SocketReader(sock)
        head = reader.read_response(head_request=True)
        after = reader.read_response()
    assert head.status == 200
    assert head.header("content-length") == "13"
    assert after.body == b"Hello, world!"  # no stray body bytes between the two


def test_keep_alive_and_pipelining_answer_in_order(demo: Server) -> None:
    with demo.connect() as sock:
        reader = SocketReader(sock)
        sock.sendall(get("/status/201") + get("/delay?ms=50") + get("/status/202"))
        statuses = [reader.read_response().status for _ in range(3)]
        sock.sendall(get("/"))
        last = reader.read_response()
    assert statuses == [201, 200, 202]
    assert last.body == b"Hello, world!"


def test_chunked_request_body(demo: Server) -> None:
    body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    raw = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    with demo.connect() as sock:
        sock.sendall(raw)
        response = read_response(sock)
    assert json.loads(response.body)["body"] == "hello world"


def test_http10_client_gets_a_close_delimited_or_sized_answer(demo: Server) -> None:
    raw = demo.exchange(b"GET /stream?chunks=3&size=2 HTTP/1.0\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"chunked" not in head.lower()
    assert body == b"xxxxxx"


def test_malformed_request_gets_400_and_the_connection_closes(demo: Server) -> None:
    raw = demo.exchange(b"GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n" + get("/"))
    assert raw.startswith(b"HTTP/1.1 400 ")
    assert raw.count(b"HTTP/1.1") == 1  # the pipelined request after it is not served


def test_client_disconnect_mid_request_leaves_the_worker_serving(demo: Server) -> None:
    sock = socket.create_connection((demo.host, demo.port))
    sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\npartial")
    sock.close()
    assert httpx.get(demo.url + "/").status_code == 200


def test_idle_keep_alive_connection_is_closed(serve: object) -> None:
    server = Server("-w", "1", "--keep-alive", "1").start()
    try:
        with server.connect(timeout_s=5) as sock:
            sock.sendall(get("/"))
            assert read_response(sock).status == 200
            assert sock.recv(1) == b""  # closed by the server after ~1 s idle
    finally:
        assert server.stop() == 0
