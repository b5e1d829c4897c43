"""Mutated requests, split at random points, against a live server: every one gets an
answer or a close, the worker never dies, and nothing but debug lines is logged."""

from __future__ import annotations

import contextlib
import random
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.harness import Server, read_until_close

SEEDS = [
    b"GET /echo?a=1 HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
]
JUNK = [b"\x00", b"\r", b"\n", b":", b" ", b"\xff", b"0", b"-", b"chunked", b"\r\n\r\n", b";"]


def mutated(rng: random.Random) -> bytes:
    data = bytearray(rng.choice(SEEDS) + rng.choice(SEEDS))
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(data) + 1)
        if rng.random() < 0.5:
            data[at:at] = rng.choice(JUNK)
        else:
            del data[at : at + rng.randint(1, 3)]
    return bytes(data)


@pytest.fixture(scope="module", params=["h11", "httptools"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    server = Server("-w", "1", "--http", request.param, "--timeout-request-head", "2").start()
    yield server
    assert server.stop() == 0


def test_mutated_requests_never_hurt_the_worker(server: Server) -> None:
    rng = random.Random(20261124)
    (worker,) = server.worker_pids()
    deadline = time.monotonic() + 60
    for _ in range(300):  # bounded in count and in time
        assert time.monotonic() < deadline
        data = mutated(rng)
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            cuts = sorted(rng.sample(range(len(data)), k=min(3, len(data))))
            for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
                try:
                    sock.sendall(data[start:end])
                except OSError:
                    break  # the server already answered and closed: fine
            with contextlib.suppress(OSError):  # already closed by the server
                sock.shutdown(socket.SHUT_WR)
            raw = read_until_close(sock)
        assert raw == b"" or raw.startswith(b"HTTP/1.1 "), raw[:80]
    assert server.worker_pids() == [worker]
    assert httpx.get(server.url + "/").status_code == 200
    for bad in ("Traceback", "ERROR", "Exception"):
        assert bad not in server.log
