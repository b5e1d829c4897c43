"""ASGI extensions through the real CLI: http.response.trailers and http.response.pathsend."""

from __future__ import annotations

import json
from pathlib import Path

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
