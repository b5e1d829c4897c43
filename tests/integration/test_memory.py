"""Bounded memory: 1 GB up to a slow app, 1 GB down to a slow client; RSS stays flat."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Server, SocketReader

GB = 1 << 30
LIMIT_BYTES = 64 << 20
CHUNK = 1 << 20


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class Peak:
    """Samples a process's RSS every 20 ms in a thread until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, rss(pid), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss(self.pid))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.peak


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    server = Server(f"memory_app:{request.param}", "-w", "1", "--threads", "2").start()
    yield server
    assert server.stop() == 0


def test_one_gigabyte_upload_to_a_slow_app(server: Server) -> None:
    (worker,) = server.worker_pids()
    baseline = rss(worker)
    peak = Peak(worker)
    started = time.monotonic()
    with server.connect(timeout_s=60) as sock:
        sock.sendall(f"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {GB}\r\n\r\n".encode())
        piece = b"u" * CHUNK
        for _ in range(GB // CHUNK):
            sock.sendall(piece)
        response = SocketReader(sock).read_response()
    growth = peak.stop() - baseline
    assert response.body == str(GB).encode()
    assert growth < LIMIT_BYTES, f"RSS grew {growth >> 20} MiB"
    print(f"1 GB upload: RSS +{growth >> 20} MiB in {time.monotonic() - started:.1f}s")  # noqa: T201


def test_one_gigabyte_download_by_a_slow_client(server: Server) -> None:
    (worker,) = server.worker_pids()
    baseline = rss(worker)
    peak = Peak(worker)
    started = time.monotonic()
    received = 0
    with socket.create_connection((server.host, server.port), timeout=60) as sock:
        sock.sendall(f"GET /download?{GB} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        reads = 0
        while received < GB:
            data = sock.recv(CHUNK)
            if not data:
                break
            received += len(data)
            reads += 1
            if reads % 256 == 0:
                time.sleep(0.02)  # a slow reader: the behaviour under test
    growth = peak.stop() - baseline
    assert received >= GB  # the whole body (plus its head) arrived
    assert growth < LIMIT_BYTES, f"RSS grew {growth >> 20} MiB"
    print(f"1 GB download: RSS +{growth >> 20} MiB in {time.monotonic() - started:.1f}s")  # noqa: T201
