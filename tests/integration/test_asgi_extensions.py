"""ASGI extensions through the real CLI: http.response.trailers and http.response.pathsend."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import ServeFactory
from tests.harness import SocketReader, get


def test_trailers_only_for_clients_that_accept_them(serve: ServeFactory, tmp_path: Path) -> None:
    server = serve("ext_app:app", "-w", "1", env={"PATHSEND_FILE": str(tmp_path / "x")})
    with server.connect() as sock:
        reader = SocketReader(sock)
        sock.sendall(get("/extensions", headers="TE: trailers\r\n"))
        assert json.loads(reader.read_response().body) == [
            "http.response.pathsend",
            "http.response.trailers",
        ]
        sock.sendall(get("/trailers", headers="TE: trailers\r\n"))
        response = reader.read_response()
        assert response.body == b"part one,part two"
        assert response.trailers == [("x-checksum", "abc123")]
        sock.sendall(get("/extensions"))
        assert json.loads(reader.read_response().body) == ["http.response.pathsend"]
        sock.sendall(get("/trailers"))
        plain = reader.read_response()
        assert plain.body == b"part one,part two"
        assert plain.trailers == []


def test_pathsend_streams_the_file(serve: ServeFactory, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and a bit: several pieces
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    server = serve("ext_app:app", "-w", "1", env={"PATHSEND_FILE": str(path)})
    with server.connect() as sock:
        reader = SocketReader(sock)
        sock.sendall(get("/file"))
        response = reader.read_response()
        assert response.header("content-length") == str(len(data))
        assert response.body == data
        sock.sendall(get("/file"))  # the connection is still good for the next request
        assert reader.read_response().body == data


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_streamed_chunks_reach_the_client_as_they_are_made(
    serve: ServeFactory, interface: str
) -> None:
    """SSE-style: each chunk is flushed when produced, not held until the end."""
    server = serve("--interface", interface, "-w", "1")
    with server.connect() as sock:
        sock.sendall(get("/stream?chunks=3&size=5&interval_ms=400"))
        started = time.monotonic()
        first = sock.recv(65536)
        first_s = time.monotonic() - started
        rest = b""
        while not rest.endswith(b"0\r\n\r\n"):
            rest += sock.recv(65536)
        total_s = time.monotonic() - started
    assert b"xxxxx" in first
    assert first_s < 0.3
    assert total_s > 0.7
