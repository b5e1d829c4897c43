"""File bodies (static mounts, ASGI pathsend, WSGI file_wrapper) through real sockets.

Zero-copy on plain TCP, bounded reads under TLS; every case checks the bytes and that the
worker lets go of the file (no descriptor left on it) when the response ends or the
client leaves.
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import struct
from pathlib import Path

import httpx
import pytest
import trustme

from tests.conftest import ServeFactory
from tests.harness import Server, SocketReader, get, wait_until
from tests.integration.test_memory import Peak, rss

MiB = 1 << 20
KINDS = ["static", "wsgi", "asgi"]


def big_file(folder: Path, size: int, *, sparse: bool = False) -> Path:
    path = folder / "big.bin"
    if sparse:
        with path.open("wb") as fh:
            fh.truncate(size)
    else:
        path.write_bytes(os.urandom(size))
    return path


def start(serve: ServeFactory, kind: str, path: Path, *args: str) -> tuple[Server, str]:
    """A server answering ``target`` with the file at ``path``, the way ``kind`` says."""
    env = {"SERVE_FILE": str(path)}
    if kind == "static":
        return serve("-w", "1", "--static", f"/f={path.parent}", *args), f"/f/{path.name}"
    if kind == "flask":
        return serve("file_apps:flask_app", "--factory", "-w", "1", *args, env=env), "/"
    return serve(f"file_apps:{kind}", "-w", "1", *args, env=env), "/"


def fds_on(server: Server, path: Path) -> int:
    """Descriptors the worker holds on ``path``."""
    (worker,) = server.worker_pids()
    count = 0
    for fd in os.listdir(f"/proc/{worker}/fd"):
        try:
            count += os.readlink(f"/proc/{worker}/fd/{fd}") == str(path)
        except OSError:
            continue
    return count


def fd_count(server: Server) -> int:
    (worker,) = server.worker_pids()
    return len(os.listdir(f"/proc/{worker}/fd"))


@pytest.mark.parametrize(
    ("kind", "loop"),
    [
        ("static", "uvloop"),
        ("static", "asyncio"),  # a second loop: its add_writer and transports differ
        ("wsgi", "uvloop"),
        ("asgi", "uvloop"),
        ("flask", "uvloop"),
    ],
)
def test_a_large_file_arrives_whole_and_the_connection_stays_usable(
    serve: ServeFactory, tmp_path: Path, kind: str, loop: str
) -> None:
    path = big_file(tmp_path, 8 * MiB + 123)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    server, target = start(serve, kind, path, "--loop", loop)
    with server.connect() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # many waits
        reader = SocketReader(sock)
        sock.sendall(get(target) + get(target))  # pipelined: answered in order
        for _ in range(2):
            response = reader.read_response()
            assert response.status == 200
            assert hashlib.sha256(response.body).hexdigest() == digest
        sock.sendall(get(target, headers="Range: bytes=100-199\r\n"))
        ranged = reader.read_response()
        if kind == "static":  # several ranges: literal parts between the file's pieces
            sock.sendall(get(target, headers="Range: bytes=0-9, 5000000-5000009\r\n"))
            multi = reader.read_response()
    if kind == "static":
        assert ranged.status == 206 and ranged.body == path.read_bytes()[100:200]
        data = path.read_bytes()
        assert multi.status == 206 and multi.body.count(b"Content-Range: bytes ") == 2
        assert data[:10] in multi.body and data[5000000:5000010] in multi.body
        assert multi.body.endswith(b"--\r\n") and len(multi.body) == int(
            multi.header("content-length") or 0
        )
    assert wait_until(lambda: fds_on(server, path) == 0, 10), "the file is still open"


def test_wsgi_file_wrapper_starts_where_the_app_seeked_and_stops_at_its_length(
    serve: ServeFactory, tmp_path: Path
) -> None:
    path = big_file(tmp_path, 300_000)
    server, _ = start(serve, "wsgi", path)
    response = httpx.get(server.url + "/?skip=1000&length=5000")
    assert response.content == path.read_bytes()[1000:6000]
    assert response.headers["content-length"] == "5000"
    rest = httpx.get(server.url + "/?skip=299990")
    assert rest.content == path.read_bytes()[299990:]
    with pytest.raises(httpx.RemoteProtocolError):  # a length the file cannot fill: cut off
        httpx.get(server.url + "/?length=400000")
    assert wait_until(lambda: fds_on(server, path) == 0, 10)


def stalled_client(server: Server, target: str) -> socket.socket:
    """A client that reads the first bytes of a large response, then stops reading."""
    sock = server.connect()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    sock.sendall(get(target))
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    return sock


@pytest.mark.parametrize("kind", KINDS)
def test_a_client_leaving_mid_file_frees_the_file_and_the_socket(
    serve: ServeFactory, tmp_path: Path, kind: str
) -> None:
    path = big_file(tmp_path, 64 * MiB, sparse=True)
    server, target = start(serve, kind, path)
    baseline = 0
    for attempt in range(2):  # the first one also lets the worker make its lazy things
        sock = stalled_client(server, target)
        assert wait_until(lambda: fds_on(server, path) == 1, 10), "no file being sent"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # a reset, mid-file
        assert wait_until(lambda: fds_on(server, path) == 0, 10), "the file stayed open"
        if attempt == 0:
            baseline = fd_count(server)
    assert fd_count(server) <= baseline, "a descriptor leaked (the socket's duplicate?)"
    with server.connect() as sock:  # the worker serves on
        sock.sendall(get(target).replace(b"GET", b"HEAD", 1))
        assert SocketReader(sock).read_response(head_request=True).status == 200


def test_slow_static_downloads_leave_the_threads_to_the_app(
    serve: ServeFactory, tmp_path: Path
) -> None:
    """Capacity counts threads: a static file going out holds none, so four stalled
    downloads on a worker with two threads must not stop it accepting."""
    path = big_file(tmp_path, 64 * MiB, sparse=True)
    server, target = start(serve, "static", path, "--threads", "2")
    clients = [stalled_client(server, target) for _ in range(4)]
    try:
        assert wait_until(lambda: fds_on(server, path) == 4, 10)
        assert httpx.get(server.url + "/", timeout=10).text == "Hello, world!"
    finally:
        for sock in clients:
            sock.close()


def test_a_client_that_stops_reading_is_dropped_after_the_write_timeout(
    serve: ServeFactory, tmp_path: Path
) -> None:
    path = big_file(tmp_path, 256 * MiB, sparse=True)
    server, target = start(serve, "static", path, "--timeout-write", "1")
    with stalled_client(server, target):
        assert wait_until(lambda: fds_on(server, path) == 1, 10)
        # Nothing from the client: the worker's sweep gives up on it by itself.
        assert wait_until(lambda: fds_on(server, path) == 0, 15), "a stalled client kept it"


@pytest.mark.parametrize("kind", ["static"])
def test_a_slow_reader_of_a_large_file_keeps_memory_flat(
    serve: ServeFactory, tmp_path: Path, kind: str
) -> None:
    size = 256 * MiB  # buffering it would show; streaming it keeps to the socket buffers
    path = big_file(tmp_path, size, sparse=True)
    server, target = start(serve, kind, path)
    (worker,) = server.worker_pids()
    baseline = rss(worker)
    peak = Peak(worker)
    received = 0
    with server.connect(timeout_s=60) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
        sock.sendall(get(target))
        while received < size:
            data = sock.recv(MiB)
            if not data:
                break
            received += len(data)
    growth = peak.stop() - baseline
    assert received > size  # the body and its head
    assert growth < 10 * MiB, f"RSS grew {growth >> 20} MiB"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    folder = tmp_path_factory.mktemp("certs")
    paths = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    return paths


@pytest.mark.parametrize("kind", ["static", "wsgi"])
def test_tls_falls_back_to_bounded_reads(
    serve: ServeFactory, tmp_path: Path, certs: dict[str, Path], kind: str
) -> None:
    path = big_file(tmp_path, 3 * MiB + 7)
    tls = ("--certfile", str(certs["cert"]), "--keyfile", str(certs["key"]))
    server, target = start(serve, kind, path, *tls)
    context = ssl.create_default_context(cafile=str(certs["ca"]))
    with httpx.Client(verify=context) as client:
        assert client.get(server.url + target).content == path.read_bytes()
        if kind == "static":
            ranged = client.get(server.url + target, headers={"Range": "bytes=-5"})
            assert ranged.status_code == 206 and ranged.content == path.read_bytes()[-5:]
    assert wait_until(lambda: fds_on(server, path) == 0, 10)
