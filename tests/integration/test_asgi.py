"""ASGI 3 ``http`` through the real CLI: scope, receive, send, failures, Starlette."""

from __future__ import annotations

import json
import re
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ServeFactory
from tests.harness import Server, SocketReader, get, read_response

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def asgi() -> Iterator[Server]:
    server = Server("asgi_apps:app", "-w", "1", "--lifespan", "off").start()
    yield server
    assert server.stop() == 0, server.log


@pytest.fixture(scope="module")
def starlette() -> Iterator[Server]:
    server = Server("starlette_app:app", "-w", "1", "--interface", "auto", "--root-path", "/api")
    server.start()
    yield server
    assert server.stop() == 0, server.log


def events(server: Server, key: str, *, until: int = 0, timeout_s: float = 5) -> list[str]:
    """What the app recorded under ``key``; waits until there are ``until`` entries."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen: list[str] = httpx.get(f"{server.url}/events?id={key}").json()
        if len(seen) >= until or time.monotonic() > deadline:
            return seen
        time.sleep(0.02)  # the poll interval of this bounded wait


def worker_pid(server: Server) -> str:
    return httpx.get(server.url + "/pid").text


# -- scope ---------------------------------------------------------------------------
def test_scope_keys_types_and_values(asgi: Server) -> None:
    with asgi.connect() as sock:
        sock.sendall(
            b"GET /caf%C3%A9/a%2Fb?x=1&y=%20 HTTP/1.1\r\nHost: example.test\r\n"
            b"X-Dup: one\r\nX-Dup: two\r\nX-Case: MiXeD\r\n\r\n"
        )
        scope: dict[str, Any] = json.loads(read_response(sock).body)[1]
        client_port = sock.getsockname()[1]
    assert scope["type"] == ["str", "http"]
    assert scope["asgi"] == ["dict", {"version": ["str", "3.0"], "spec_version": ["str", "2.4"]}]
    assert scope["http_version"] == ["str", "1.1"]
    assert scope["method"] == ["str", "GET"]
    assert scope["scheme"] == ["str", "http"]
    assert scope["path"] == ["str", "/caf\u00e9/a/b"]  # percent-decoded, then UTF-8
    assert scope["raw_path"] == ["bytes", "/caf%C3%A9/a%2Fb"]
    assert scope["query_string"] == ["bytes", "x=1&y=%20"]
    assert scope["root_path"] == ["str", ""]
    kind, headers = scope["headers"]
    assert kind == "list"
    assert [[n[1], v[1]] for _, (n, v) in headers] == [
        ["host", "example.test"],
        ["x-dup", "one"],  # repeated headers stay separate, in order
        ["x-dup", "two"],
        ["x-case", "MiXeD"],  # names lower-cased, values as sent
    ]
    assert all(n[0] == v[0] == "bytes" for _, (n, v) in headers)
    assert scope["client"] == ["tuple", [["str", "127.0.0.1"], ["int", client_port]]]
    assert scope["server"] == ["tuple", [["str", "127.0.0.1"], ["int", asgi.port]]]
    assert scope["state"] == ["dict", {}]


def test_http10_scope(asgi: Server) -> None:
    raw = asgi.exchange(b"GET /scope HTTP/1.0\r\n\r\n")
    scope = json.loads(raw.partition(b"\r\n\r\n")[2])[1]
    assert scope["http_version"] == ["str", "1.0"]
    assert scope["headers"] == ["list", []]


# -- receive -------------------------------------------------------------------------
def test_receive_hands_out_a_large_body_in_pieces(asgi: Server) -> None:
    def body() -> Iterator[bytes]:
        for _ in range(8):
            yield b"b" * MIB

    report = httpx.post(asgi.url + "/body", content=body(), timeout=30).json()
    pieces = report["pieces"]
    assert report["total"] == 8 * MIB
    assert len(pieces) > 1
    assert [more for _, more in pieces] == [True] * (len(pieces) - 1) + [False]


def test_receive_without_a_body_is_one_empty_message(asgi: Server) -> None:
    assert httpx.get(asgi.url + "/body").json() == {"pieces": [[0, False]], "total": 0}


def test_receive_of_a_chunked_body(asgi: Server) -> None:
    raw = (
        b"POST /body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
    )
    with asgi.connect() as sock:
        sock.sendall(raw)
        report = json.loads(read_response(sock).body)
    assert report["total"] == 7
    assert report["pieces"][-1][1] is False


def long_poll(server: Server, key: str) -> socket.socket:
    """Start a long poll and wait until the app is in ``receive()`` after the body."""
    sock = server.connect()
    sock.sendall(b"POST /long-poll?id=%b HTTP/1.1\r\nHost: t\r\n" % key.encode())
    sock.sendall(b"Content-Length: 2\r\n\r\nhi")
    assert events(server, key, until=1) == ["waiting"]
    return sock


def test_long_poll_gets_http_disconnect_on_a_reset(asgi: Server) -> None:
    sock = long_poll(asgi, "poll-reset")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # with SO_LINGER 0: a reset, not a FIN
    assert events(asgi, "poll-reset", until=2) == ["waiting", "http.disconnect"]


def test_long_poll_gets_http_disconnect_on_a_close(serve: ServeFactory) -> None:
    # Its own server: while the bug lasts, the open connection holds up a graceful stop.
    server = serve("asgi_apps:app", "-w", "1", "--lifespan", "off", "--graceful-timeout", "1")
    long_poll(server, "poll-fin").close()
    assert events(server, "poll-fin", until=2, timeout_s=2) == ["waiting", "http.disconnect"]


# -- send ----------------------------------------------------------------------------
def test_streaming_response_with_more_body(asgi: Server) -> None:
    with asgi.connect() as sock:
        sock.sendall(get("/stream?n=4"))
        response = read_response(sock)
    assert response.header("transfer-encoding") == "chunked"
    assert response.body == b"0,1,2,3,end"


def test_head_response_has_headers_but_no_body(asgi: Server) -> None:
    with asgi.connect() as sock:
        reader = SocketReader(sock)
        sock.sendall(b"HEAD /head HTTP/1.1\r\nHost: t\r\n\r\n" + get("/head"))
        head = reader.read_response(head_request=True)
        after = reader.read_response()
    assert (head.status, head.header("content-length"), head.header("x-method")) == (
        200,
        "11",
        "HEAD",
    )
    assert after.body == b"hello world"  # nothing stray between the two responses


# -- failures ------------------------------------------------------------------------
def test_exception_before_start_is_a_500_and_the_worker_lives(asgi: Server) -> None:
    pid = worker_pid(asgi)
    mark = len(asgi.lines)
    response = httpx.get(asgi.url + "/raise-before")
    assert (response.status_code, response.content) == (500, b"Internal Server Error\n")
    asgi.wait_for("Exception in ASGI app", after=mark)
    asgi.wait_for("RuntimeError: boom before the response", after=mark)
    assert worker_pid(asgi) == pid


def test_exception_after_start_closes_the_connection(asgi: Server) -> None:
    pid = worker_pid(asgi)
    mark = len(asgi.lines)
    raw = asgi.exchange(get("/raise-after"))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert body == b"8\r\npartial-\r\n"  # no last chunk: the client knows it was cut
    asgi.wait_for("RuntimeError: boom after the response started", after=mark)
    assert worker_pid(asgi) == pid


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/no-response", "returned without completing the response"),
        ("/bad-header", "invalid response header name b'bad name'"),
        ("/bad-header?in=value", "invalid value for response header 'x-bad'"),
    ],
)
def test_broken_app_contract_is_a_logged_500(asgi: Server, path: str, reason: str) -> None:
    mark = len(asgi.lines)
    with asgi.connect() as sock:  # one connection: it must stay usable after the 500
        reader = SocketReader(sock)
        sock.sendall(get(path) + get("/pid"))
        failed = reader.read_response()
        after = reader.read_response()
    assert (failed.status, failed.body) == (500, b"Internal Server Error\n")
    assert after.status == 200
    asgi.wait_for(re.escape(reason), after=mark)


def test_a_sleeping_app_does_not_delay_other_requests(asgi: Server) -> None:
    with asgi.connect() as sock:
        sock.sendall(get("/sleep?s=1&id=nap"))
        assert events(asgi, "nap", until=1) == ["sleeping"]
        assert worker_pid(asgi)  # answered while the other request sleeps:
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.recv(1)  # ... which is still in flight
        sock.setblocking(True)
        assert read_response(sock).body == b"slept"


# -- Starlette -----------------------------------------------------------------------
def test_starlette_is_detected_as_asgi(starlette: Server) -> None:
    starlette.wait_for(r"Worker \d+ serving asgi, lifespan ")


def test_starlette_routes_and_json(starlette: Server) -> None:
    assert httpx.get(starlette.url + "/").text == "hello from starlette"
    item = httpx.get(starlette.url + "/items/42?q=x").json()
    assert item == {
        "id": 42,
        "q": "x",
        "root_path": "/api",
        "url": f"{starlette.url}/api/items/42?q=x",
    }
    assert httpx.get(starlette.url + "/items/nope").status_code == 404


def test_starlette_request_body(starlette: Server) -> None:
    def body() -> Iterator[bytes]:
        yield b"head-of-body:"
        for _ in range(4):
            yield b"z" * MIB

    response = httpx.post(starlette.url + "/echo", content=body(), timeout=30)
    assert response.json() == {"length": 13 + 4 * MIB, "head": "head-of-body:zzz"}


def test_starlette_streaming_response(starlette: Server) -> None:
    with starlette.connect() as sock:
        sock.sendall(get("/stream?n=3"))
        response = read_response(sock)
    assert response.header("transfer-encoding") == "chunked"
    assert response.body == b"piece 0\npiece 1\npiece 2\n"


def test_starlette_background_task_runs_after_the_response(starlette: Server) -> None:
    assert httpx.get(starlette.url + "/background?name=job1").text == "accepted"
    deadline = time.monotonic() + 5
    while "job1" not in httpx.get(starlette.url + "/done").json():
        assert time.monotonic() < deadline, "the background task never ran"
        time.sleep(0.02)  # the poll interval of this bounded wait
