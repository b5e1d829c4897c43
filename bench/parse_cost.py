"""Per-request cost of the sans-IO layer, by backend and request shape (no sockets).

    .venv/bin/python bench/parse_cost.py [--n 20000]

Feeds each request whole to a ServerConnection, answers it, and starts the next cycle, as
the worker does; prints CPU microseconds per request (best of 5 runs; CPU time, so other
processes on a busy machine disturb it less). Used to price what
issue #11 added on the fast path: the head rules, a method llhttp does not know (handed
to it as GET), and chunk extensions (walked and dropped before the backend).
"""

from __future__ import annotations

import argparse
import time

from hybridserve.config_groups import Limits
from hybridserve.sansio.connection import ServerConnection

DATE = b"Date: Thu, 01 Jan 2026 00:00:00 GMT\r\n"
HEADERS = b"Host: example.com\r\nUser-Agent: bench/1\r\nAccept: */*\r\n"
SHAPES = {
    "GET": b"GET /plaintext HTTP/1.1\r\n" + HEADERS + b"\r\n",
    "PROPFIND (llhttp knows it)": b"PROPFIND /dav HTTP/1.1\r\n" + HEADERS + b"\r\n",
    "FROB (llhttp does not)": b"FROB /dav HTTP/1.1\r\n" + HEADERS + b"\r\n",
    "POST 64 B": b"POST /p HTTP/1.1\r\n" + HEADERS + b"Content-Length: 64\r\n\r\n" + b"x" * 64,
    "POST chunked": b"POST /p HTTP/1.1\r\n"
    + HEADERS
    + b"Transfer-Encoding: chunked\r\n\r\n40\r\n"
    + b"x" * 64
    + b"\r\n0\r\n\r\n",
    "POST chunked + ext": b"POST /p HTTP/1.1\r\n"
    + HEADERS
    + b"Transfer-Encoding: chunked\r\n\r\n40; a=b\r\n"
    + b"x" * 64
    + b"\r\n0\r\n\r\n",
}


def per_request_us(backend: str, request: bytes, n: int) -> float:
    best = float("inf")
    for _ in range(5):
        conn = ServerConnection(Limits(), backend)
        start = time.process_time()
        for _ in range(n):
            conn.receive(request)
            conn.send_head(200, [], body=b"ok", end=True, date_line=DATE)
            conn.next_cycle()
        best = min(best, time.process_time() - start)
    return best / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    n = parser.parse_args().n
    print(f"{'request':28} {'h11 µs':>8} {'httptools µs':>13}")  # noqa: T201
    for name, request in SHAPES.items():
        h11, fast = (per_request_us(b, request, n) for b in ("h11", "httptools"))
        print(f"{name:28} {h11:8.2f} {fast:13.2f}")  # noqa: T201


if __name__ == "__main__":
    main()
