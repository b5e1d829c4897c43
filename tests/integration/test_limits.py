"""Limits and timeouts through real sockets: slow, greedy and odd clients."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx

from tests.conftest import ServeFactory
from tests.harness import SocketReader, get, read_response, read_until_close


def test_slow_head_gets_408(serve: ServeFactory) -> None:
    server = serve("-w", "1", "--timeout-request-head", "1")
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")
        started = time.monotonic()
        raw = read_until_close(sock)
    assert raw.startswith(b"HTTP/1.1 408 ")
    assert 0.9 < time.monotonic() - started < 3.5


def test_stalled_body_gets_408(serve: ServeFactory) -> None:
    server = serve("-w", "1", "--timeout-body-read", "1")
    with server.connect() as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789")
        started = time.monotonic()
        raw = read_until_close(sock)
    assert raw.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 3.5
    assert httpx.get(server.url + "/").status_code == 200  # the thread was given back


def test_client_that_stops_reading_is_dropped(serve: ServeFactory) -> None:
    server = serve("-w", "1", "--timeout-write", "1", "--log-level", "debug")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.connect((server.host, server.port))
    with sock:
        sock.sendall(get("/bytes?n=200000000"))
        # Never reading: the server's send buffer fills and stays full until it gives up.
        server.wait_for("stopped reading; dropping it")
        sock.settimeout(10)
        received = 0
        try:
            while data := sock.recv(1 << 20):
                received += len(data)
        except ConnectionResetError:
            pass
    assert received < 200_000_000
    assert httpx.get(server.url + "/").status_code == 200


def test_limit_concurrency_answers_503_to_the_excess(serve: ServeFactory) -> None:
    server = serve("announce_app:asgi", "-w", "1", "--limit-concurrency", "1")
    with server.connect() as idle:
        idle.sendall(get("/"))
        assert read_response(idle).status == 200
        slow = threading.Thread(target=lambda: httpx.get(server.url + "/delay?ms=1500", timeout=10))
        slow.start()
        server.wait_entered("/delay?ms=1500")
        idle.sendall(get("/"))
        assert read_response(idle).status == 503
        slow.join(10)
    assert httpx.get(server.url + "/").status_code == 200


def test_limit_connections_holds_the_rest_in_the_backlog(serve: ServeFactory) -> None:
    server = serve("-w", "1", "--limit-connections", "2", "--interface", "asgi")
    first, second = server.connect(), server.connect()
    for sock in (first, second):
        sock.sendall(get("/"))
        assert read_response(sock).status == 200
    third = server.connect(timeout_s=0.7)
    third.sendall(get("/"))
    try:
        third.recv(1)
        raise AssertionError("a third connection was served beyond --limit-connections")
    except TimeoutError:
        pass
    first.close()
    third.settimeout(5)
    assert SocketReader(third).read_response().status == 200
    second.close()
    third.close()


def test_proxy_protocol_header_gives_the_client(serve: ServeFactory) -> None:
    server = serve("scheme_app:wsgi", "-w", "1", "--proxy-protocol")
    header = b"PROXY TCP4 203.0.113.5 10.0.0.1 40000 80\r\n"
    with server.connect() as sock:
        sock.sendall(header[:10])
        time.sleep(0.05)  # pacing under test: the PROXY header comes in two reads
        sock.sendall(header[10:] + get("/", headers="X-Forwarded-For: 6.6.6.6\r\n"))
        body = json.loads(read_response(sock).body)
    assert body == {"scheme": "http", "client": "203.0.113.5"}  # and its XFF is not believed
    assert server.exchange(get("/")) == b""  # no PROXY header: closed without an answer


def test_silent_and_slow_connections_do_not_shut_accept(serve: ServeFactory) -> None:
    """Slowloris: 20 clients that connect and dribble, on 1 worker with 2 threads."""
    server = serve("-w", "1", "--threads", "2")
    loris = [server.connect() for _ in range(20)]
    for i, sock in enumerate(loris):
        if i % 2:
            sock.sendall(b"GET / HTTP/1.1\r\nHo")
    # No wait needed: the backlog is first in, first out, so the worker has accepted all 20
    # (their bytes already in their buffers) before it accepts the request below.
    started = time.monotonic()
    assert httpx.get(server.url + "/", timeout=5).status_code == 200
    assert time.monotonic() - started < 1
    for sock in loris:
        sock.close()


def test_body_limit_answers_413_and_closes(serve: ServeFactory) -> None:
    server = serve("-w", "1", "--limit-request-body", "10")
    declared = server.exchange(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n01234567890" + get("/")
    )
    assert declared.startswith(b"HTTP/1.1 413 ")
    assert declared.count(b"HTTP/1.1") == 1
    chunked = server.exchange(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"6\r\n012345\r\n6\r\n678901\r\n0\r\n\r\n"
    )
    assert chunked.startswith(b"HTTP/1.1 413 ")
    ok = server.exchange(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n"
        b"Connection: close\r\n\r\n0123456789"
    )
    assert ok.startswith(b"HTTP/1.1 200 ")
